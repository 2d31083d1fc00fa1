#!/usr/bin/env bash
# Runs every test against a private, throwaway MariaDB that this script starts and removes.
#   scripts/test.sh [extra cargo test arguments]
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"

command -v cargo >/dev/null || { echo "cargo is required (https://rustup.rs)" >&2; exit 1; }
DIR=$(mktemp -d "${TMPDIR:-/tmp}/mmt-test-db.XXXXXX")
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cleanup() { bash scripts/db.sh stop "$DIR" >/dev/null 2>&1 || true; rm -rf "$DIR"; }
trap cleanup EXIT

bash scripts/db.sh start "$DIR" "$PORT"
export MMT_TEST_SERVER_URL="mysql://mmt:mmt@127.0.0.1:$PORT"
if [ -f "$ROOT/../shared/openemr-schema/database.sql" ]; then
    export OPENEMR_REAL_SCHEMA="$ROOT/../shared/openemr-schema/database.sql"
fi
echo "private MariaDB on 127.0.0.1:$PORT (data in $DIR)"
cargo test --lib --bins --tests "$@"
