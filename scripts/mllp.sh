#!/usr/bin/env bash
# An HL7 v2 MLLP receiver for the tests (tests/mllp/listener.py): python-hl7's MLLP server (PyPI
# `hl7`, pinned) in a venv under target/, keeping what it accepts and answering each with an ACK.
#   scripts/mllp.sh start DIR PORT   messages in DIR/received, log in DIR/mllp.log
#   scripts/mllp.sh stop DIR
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
CMD=${1:?start or stop}
DIR=${2:?a folder for the server}
# shellcheck source=scripts/pyvenv.sh
. "$ROOT/scripts/pyvenv.sh"
VENV="$ROOT/target/mllp-venv"

case "$CMD" in
start)
    PORT=${3:?a port}
    ensure_venv "$VENV" 'import hl7.mllp' hl7==0.4.5
    mkdir -p "$DIR/received"
    nohup "$VENV/bin/python" "$ROOT/tests/mllp/listener.py" "$DIR/received" "$PORT" >"$DIR/mllp.log" 2>&1 &
    echo $! >"$DIR/mllp.pid"
    wait_listening "$PORT" "$DIR/mllp.log"
    ;;
stop)
    [ -f "$DIR/mllp.pid" ] && kill "$(cat "$DIR/mllp.pid")" 2>/dev/null || true
    rm -f "$DIR/mllp.pid"
    ;;
*)
    echo "usage: scripts/mllp.sh start DIR PORT | stop DIR" >&2
    exit 2
    ;;
esac
