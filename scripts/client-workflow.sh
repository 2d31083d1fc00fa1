#!/usr/bin/env bash
# End-to-end check that clients generated from the OpenAPI spec in two ecosystems can sign in and
# run the whole transcription workflow: Python (openapi-python-client) and TypeScript
# (openapi-typescript + openapi-fetch, on Node); then FHIR clients validate what /fhir/r4 serves.
#
#   scripts/client-workflow.sh            (MMT_SIDECAR_BIN=path/to/mmt-sidecar to skip the build)
#
# Builds the binary (debug profile: CI has just built the same dependencies for `cargo test`, so this
# is an incremental link of one binary instead of a full optimised build), starts a private
# throwaway MariaDB (scripts/db.sh, on a free port, in a temp dir) loaded with the demo fixtures,
# starts `mmt-sidecar serve --migrate` on another free port, fetches /api/openapi.json from it,
# generates a Python client with a pinned openapi-python-client in a venv under
# target/client-workflow/, and runs clients/workflow_test.py against the server using only the
# generated client. Then the same workflow in TypeScript: `npm ci` in clients/typescript/ (versions
# pinned in its package-lock.json), openapi-typescript turns the fetched spec into
# clients/typescript/generated/schema.d.ts, tsc type-checks clients/typescript/workflow.ts against it
# (a spec whose types do not fit the workflow fails here) and Node runs the result through
# openapi-fetch. Needs Node 20+ with npm. Everything it started is stopped and removed on exit.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"

GENERATOR_VERSION=${OPENAPI_PYTHON_CLIENT_VERSION:-0.29.1}
PYTHON=${PYTHON:-python3}
START=$(date +%s)
say() { echo "==> [$(( $(date +%s) - START ))s] $*"; }

command -v cargo >/dev/null || { echo "cargo is required (https://rustup.rs)" >&2; exit 1; }
command -v "$PYTHON" >/dev/null || { echo "$PYTHON is required" >&2; exit 1; }
# Node 20+ (native fetch) and npm run the TypeScript client; checked before anything is started.
NODE_HINT="install Node.js 20+ with npm: https://nodejs.org/en/download (on Debian/Ubuntu the NodeSource \
packages, https://github.com/nodesource/distributions; Debian 12's own nodejs is 18, too old)"
command -v node >/dev/null && command -v npm >/dev/null \
    || { echo "node and npm are required for the TypeScript client: $NODE_HINT" >&2; exit 1; }
node -e 'process.exit(Number(process.versions.node.split(".")[0]) < 20 ? 1 : 0)' \
    || { echo "Node $(node --version) is too old for the TypeScript client: $NODE_HINT" >&2; exit 1; }
# openapi-python-client 0.29 needs Python 3.11+ (the generated code imports typing.Self).
"$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
    || { echo "Python 3.11+ is required (set PYTHON=python3.11)" >&2; exit 1; }
if ! "$PYTHON" -c 'import ensurepip, venv' 2>/dev/null; then
    echo "python venv support is missing; installing python3-venv with apt-get" >&2
    if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; else SUDO=; fi
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends python3-venv >/dev/null
fi

WORK=$(mktemp -d "${TMPDIR:-/tmp}/mmt-client-workflow.XXXXXX")
DB_DIR="$WORK/db"
SERVER_PID=
cleanup() {
    local rc=$?
    if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
        kill "$SERVER_PID" 2>/dev/null || true
        for _ in $(seq 1 50); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$SERVER_PID" 2>/dev/null || true
    fi
    if [ "$rc" -ne 0 ] && [ -f "$WORK/server.log" ]; then
        echo "---- last lines of the sidecar log ----" >&2
        tail -40 "$WORK/server.log" >&2 || true
    fi
    # db.sh stop refuses any directory it did not create, so this never touches another database.
    [ -d "$DB_DIR" ] && bash scripts/db.sh stop "$DB_DIR" >/dev/null 2>&1 || true
    rm -rf "$WORK"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if [ -n "${MMT_SIDECAR_BIN:-}" ]; then
    BIN=$MMT_SIDECAR_BIN   # a prebuilt binary, e.g. target/release/mmt-sidecar
else
    say "building mmt-sidecar (debug)"
    cargo build --quiet --bin mmt-sidecar
    BIN="$ROOT/target/debug/mmt-sidecar"
fi

# Both sockets stay open until both ports are chosen, so the two ports differ.
read -r DB_PORT HTTP_PORT < <("$PYTHON" -c 'import socket
s=[socket.socket() for _ in range(2)]
[x.bind(("127.0.0.1",0)) for x in s]
print(*[x.getsockname()[1] for x in s])')

say "private MariaDB on 127.0.0.1:$DB_PORT (data in $DB_DIR)"
bash scripts/db.sh start "$DB_DIR" "$DB_PORT"
bash scripts/db.sh load "$DB_DIR" openemr

say "starting mmt-sidecar on 127.0.0.1:$HTTP_PORT"
# A throwaway master key: this run's encrypted data dies with its database; documents go to a
# private site folder.
mkdir -p "$WORK/site/documents"
MMT_MASTER_KEY=$(head -c 32 /dev/urandom | base64) OPENEMR_SITE_DIR="$WORK/site" MMT_FHIR_EXPORT_DIR="$WORK/fhir-export" \
    DATABASE_URL="mysql://mmt:mmt@127.0.0.1:$DB_PORT/openemr" LISTEN_ADDR="127.0.0.1:$HTTP_PORT" \
    MMT_COOKIE_SECURE=false LOG_FORMAT=json RUST_LOG=${RUST_LOG:-info} \
    "$BIN" serve --migrate >"$WORK/server.log" 2>&1 &
SERVER_PID=$!
BASE="http://127.0.0.1:$HTTP_PORT"

# Python venv with the pinned generator (kept under target/ so repeated local runs reuse it); set up
# while the server starts.
VENV="$ROOT/target/client-workflow/venv-$GENERATOR_VERSION"
if ! "$VENV/bin/openapi-python-client" --version 2>/dev/null | grep -q "$GENERATOR_VERSION"; then
    say "installing openapi-python-client==$GENERATOR_VERSION into $VENV"
    rm -rf "$VENV"
    "$PYTHON" -m venv "$VENV"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check "openapi-python-client==$GENERATOR_VERSION"
fi
"$VENV/bin/openapi-python-client" --version

health() {
    "$VENV/bin/python" - "$BASE/api/health/" <<'PY'
import sys, httpx
try:
    sys.exit(0 if httpx.get(sys.argv[1], timeout=2).status_code == 200 else 1)
except httpx.HTTPError:
    sys.exit(1)
PY
}
say "waiting for GET /api/health/ = 200"
for _ in $(seq 1 300); do
    kill -0 "$SERVER_PID" 2>/dev/null || { echo "mmt-sidecar exited during start-up" >&2; exit 1; }
    health && break
    sleep 0.2
done
health || { echo "mmt-sidecar did not become healthy within 60 s" >&2; exit 1; }

say "fetching $BASE/api/openapi.json and generating the client"
"$VENV/bin/python" - "$BASE/api/openapi.json" "$WORK/openapi.json" <<'PY'
import sys, httpx
r = httpx.get(sys.argv[1], timeout=10)
r.raise_for_status()
open(sys.argv[2], "wb").write(r.content)
PY
# ruff (a dependency of the generator) must be on PATH for the generator's post-processing. The
# generator has no model for PDF or HL7 v2 bodies, for files returned in the type they were stored
# with (`*/*`), or for audio uploads (it omits those downloads, the HL7 receiving operation, which
# HL7 senders call, and the audio upload, which the Flutter client makes, and warns); any other
# warning fails the run.
PATH="$VENV/bin:$PATH" "$VENV/bin/openapi-python-client" generate --path "$WORK/openapi.json" \
    --output-path "$WORK/client/mmt_sidecar_client" --meta none 2>&1 | tee "$WORK/generate.log"
python3 - "$WORK/generate.log" <<'PY'
import re, sys
blocks = re.split(r"^(?=WARNING)", open(sys.argv[1]).read(), flags=re.M)[1:]
known = re.compile(r"Unsupported content[_ ]type (application/(pdf|hl7-v2)|\*/\*|audio/)")
other = [b.splitlines()[0] for b in blocks if not known.search(b)]
if other:
    sys.exit(f"the generator warned about more than the body types it has no model for: {other}")
PY

say "running clients/workflow_test.py"
PYTHONPATH="$WORK/client" "$VENV/bin/python" clients/workflow_test.py "$BASE/api"

# The same workflow through a second, independent client: TypeScript types generated from the same
# spec by openapi-typescript, requests made with openapi-fetch. npx --no-install runs only the
# versions npm ci installed from the lock file.
TS_DIR="$ROOT/clients/typescript"
say "npm ci in clients/typescript ($(node --version), npm $(npm --version))"
(cd "$TS_DIR" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
say "generating clients/typescript/generated/schema.d.ts from the spec with openapi-typescript"
rm -rf "$TS_DIR/generated"
(cd "$TS_DIR" && npx --no-install openapi-typescript "$WORK/openapi.json" -o generated/schema.d.ts)
say "type-checking and compiling clients/typescript/workflow.ts against it (tsc)"
(cd "$TS_DIR" && npx --no-install tsc -p .) || {
    echo "tsc rejected clients/typescript/workflow.ts against the types generated from the spec (errors above)" >&2
    exit 1
}
say "running clients/typescript/workflow.ts with Node"
node "$TS_DIR/generated/dist/workflow.js" "$BASE/api"

# FHIR conformance, judged by fhir.resources 6.1 (R4 4.0.1 models; it needs pydantic 1) and fhirpy.
FHIR_VENV="$ROOT/target/client-workflow/venv-fhir-6.1.0"
if ! "$FHIR_VENV/bin/python" -c 'import fhir.resources, fhirpy, requests' 2>/dev/null; then
    say "installing fhir.resources 6.1.0 and fhirpy into $FHIR_VENV"
    rm -rf "$FHIR_VENV"
    "$PYTHON" -m venv "$FHIR_VENV"
    "$FHIR_VENV/bin/pip" install --quiet --disable-pip-version-check \
        "fhir.resources==6.1.0" "pydantic<2" "fhirpy==2.0.15" "requests>=2.31,<3"
fi
say "running clients/fhir_conformance.py"
"$FHIR_VENV/bin/python" clients/fhir_conformance.py "$BASE"

say "client workflow finished"
