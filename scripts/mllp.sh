#!/usr/bin/env bash
# An HL7 v2 MLLP receiver for the tests (tests/mllp/listener.py): python-hl7's MLLP server (PyPI
# `hl7`, pinned) in a venv under target/, keeping what it accepts and answering each with an ACK.
#   scripts/mllp.sh start DIR PORT   messages in DIR/received, log in DIR/mllp.log
#   scripts/mllp.sh stop DIR
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
CMD=${1:?start or stop}
DIR=${2:?a folder for the server}
VENV="$ROOT/target/mllp-venv"
listening() {
    python3 -c 'import socket, sys; socket.create_connection(("127.0.0.1", int(sys.argv[1])), 1)' "$1" 2>/dev/null
}

case "$CMD" in
start)
    PORT=${3:?a port}
    if ! "$VENV/bin/python" -c 'import hl7.mllp' 2>/dev/null; then
        if ! python3 -c 'import ensurepip, venv' 2>/dev/null; then
            echo "python venv support is missing; installing python3-venv with apt-get" >&2
            if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; else SUDO=; fi
            $SUDO apt-get update -qq
            DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends python3-venv >/dev/null
        fi
        python3 -m venv "$VENV"
        "$VENV/bin/pip" install -q --disable-pip-version-check hl7==0.4.5
    fi
    mkdir -p "$DIR/received"
    nohup "$VENV/bin/python" "$ROOT/tests/mllp/listener.py" "$DIR/received" "$PORT" >"$DIR/mllp.log" 2>&1 &
    echo $! >"$DIR/mllp.pid"
    for _ in $(seq 1 100); do listening "$PORT" && exit 0; sleep 0.1; done
    cat "$DIR/mllp.log" >&2
    exit 1
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
