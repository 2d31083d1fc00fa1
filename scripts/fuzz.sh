#!/usr/bin/env bash
# Runs every cargo-fuzz target in fuzz/ for a bounded time on the stable toolchain.
#   scripts/fuzz.sh [seconds per target, default 45]
# With `--sanitizer none` cargo-fuzz passes no -Z flags, so stable builds it; libFuzzer's C++ needs a
# C++ compiler (g++). A finding fails the run (pipefail) and lands in fuzz/artifacts/<target>/.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT/fuzz"
SECS=${1:-${MMT_FUZZ_SECS:-45}}

command -v cargo-fuzz >/dev/null 2>&1 || cargo +stable install cargo-fuzz --locked
cargo +stable fuzz build --dev --sanitizer none
for target in $(cargo +stable fuzz list); do
    mkdir -p "corpus/$target"
    echo "fuzzing $target for ${SECS}s"
    cargo +stable fuzz run --dev --sanitizer none "$target" "corpus/$target" -- \
        -max_total_time="$SECS" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 2>&1 | tail -15
done
