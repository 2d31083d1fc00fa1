#!/usr/bin/env bash
# A local stand-in for Stripe's API (tests/stripe/standin.py, Python standard library only):
# Checkout Sessions, Refunds, and signed webhook deliveries the tests trigger.
#   scripts/stripe.sh start DIR PORT   log in DIR/stripe.log
#   scripts/stripe.sh stop DIR
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
CMD=${1:?start or stop}
DIR=${2:?a folder for the server}

case "$CMD" in
start)
    PORT=${3:?a port}
    mkdir -p "$DIR"
    nohup python3 "$ROOT/tests/stripe/standin.py" "$PORT" >"$DIR/stripe.log" 2>&1 &
    echo $! >"$DIR/stripe.pid"
    for _ in $(seq 1 100); do
        python3 -c 'import socket, sys; socket.create_connection(("127.0.0.1", int(sys.argv[1])), 1)' "$PORT" \
            2>/dev/null && exit 0
        sleep 0.1
    done
    cat "$DIR/stripe.log" >&2
    exit 1
    ;;
stop)
    [ -f "$DIR/stripe.pid" ] && kill "$(cat "$DIR/stripe.pid")" 2>/dev/null || true
    rm -f "$DIR/stripe.pid"
    ;;
*)
    echo "usage: scripts/stripe.sh start DIR PORT | stop DIR" >&2
    exit 2
    ;;
esac
