#!/usr/bin/env bash
# A local SMTP server that keeps every message it accepts in a Maildir: aiosmtpd (PyPI, pinned) in
# a venv under target/, with the refusals and greylisting of tests/smtp/policy.py.
#   scripts/smtp.sh start DIR PORT   messages in DIR/maildir/new, log in DIR/smtp.log
#   scripts/smtp.sh stop DIR
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
CMD=${1:?start or stop}
DIR=${2:?a folder for the server}
# shellcheck source=scripts/pyvenv.sh
. "$ROOT/scripts/pyvenv.sh"
VENV="$ROOT/target/smtp-venv"

case "$CMD" in
start)
    PORT=${3:?a port}
    ensure_venv "$VENV" 'import aiosmtpd' aiosmtpd==1.4.6
    mkdir -p "$DIR"
    PYTHONPATH="$ROOT/tests/smtp" nohup "$VENV/bin/python" -m aiosmtpd -n -l "127.0.0.1:$PORT" \
        -c policy.Policy "$DIR/maildir" >"$DIR/smtp.log" 2>&1 &
    echo $! >"$DIR/smtp.pid"
    wait_listening "$PORT" "$DIR/smtp.log"
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
