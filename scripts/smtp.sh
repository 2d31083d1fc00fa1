#!/usr/bin/env bash
# A local SMTP server that keeps every message it accepts in a Maildir: aiosmtpd (PyPI, pinned) in
# a venv under target/, with the refusals and greylisting of tests/smtp/policy.py.
#   scripts/smtp.sh start DIR PORT   messages in DIR/maildir/new, log in DIR/smtp.log
#   scripts/smtp.sh stop DIR
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
CMD=${1:?start or stop}
DIR=${2:?a folder for the server}
VENV="$ROOT/target/smtp-venv"
listening() {
    python3 -c 'import socket, sys; socket.create_connection(("127.0.0.1", int(sys.argv[1])), 1)' "$1" 2>/dev/null
}

case "$CMD" in
start)
    PORT=${3:?a port}
    if [ ! -x "$VENV/bin/aiosmtpd" ]; then
        if ! python3 -c 'import ensurepip, venv' 2>/dev/null; then
            echo "python venv support is missing; installing python3-venv with apt-get" >&2
            if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; else SUDO=; fi
            $SUDO apt-get update -qq
            DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends python3-venv >/dev/null
        fi
        python3 -m venv "$VENV"
        "$VENV/bin/pip" install -q --disable-pip-version-check aiosmtpd==1.4.6
    fi
    mkdir -p "$DIR"
    PYTHONPATH="$ROOT/tests/smtp" nohup "$VENV/bin/python" -m aiosmtpd -n -l "127.0.0.1:$PORT" \
        -c policy.Policy "$DIR/maildir" >"$DIR/smtp.log" 2>&1 &
    echo $! >"$DIR/smtp.pid"
    for _ in $(seq 1 100); do listening "$PORT" && exit 0; sleep 0.1; done
    cat "$DIR/smtp.log" >&2
    exit 1
    ;;
stop)
    [ -f "$DIR/smtp.pid" ] && kill "$(cat "$DIR/smtp.pid")" 2>/dev/null || true
    rm -f "$DIR/smtp.pid"
    ;;
*)
    echo "usage: scripts/smtp.sh start DIR PORT | stop DIR" >&2
    exit 2
    ;;
esac
