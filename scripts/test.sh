#!/usr/bin/env bash
# Runs every test against a private, throwaway MariaDB and Redis that this script starts and removes.
#   scripts/test.sh [extra cargo test arguments]
# With MMT_TEST_AGAINST_REAL_SCHEMA=1, every test database takes its OpenEMR tables from the real
# OpenEMR schema (../shared/openemr-schema/database.sql, or OPENEMR_REAL_SCHEMA) instead of schema/.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"

command -v cargo >/dev/null || { echo "cargo is required (https://rustup.rs)" >&2; exit 1; }
DIR=$(mktemp -d "${TMPDIR:-/tmp}/mmt-test-db.XXXXXX")
REDIS_DIR=$(mktemp -d "${TMPDIR:-/tmp}/mmt-test-redis.XXXXXX")
SMTP_DIR=$(mktemp -d "${TMPDIR:-/tmp}/mmt-test-smtp.XXXXXX")
STRIPE_DIR=$(mktemp -d "${TMPDIR:-/tmp}/mmt-test-stripe.XXXXXX")
MLLP_DIR=$(mktemp -d "${TMPDIR:-/tmp}/mmt-test-mllp.XXXXXX")
# The sockets stay open until every port is chosen, so the ports differ.
read -r PORT REDIS_PORT SMTP_PORT STRIPE_PORT MLLP_PORT < <(python3 -c 'import socket
s=[socket.socket() for _ in range(5)]
[x.bind(("127.0.0.1",0)) for x in s]
print(*[x.getsockname()[1] for x in s])')
cleanup() {
    bash scripts/db.sh stop "$DIR" >/dev/null 2>&1 || true
    [ -f "$REDIS_DIR/redis.pid" ] && kill "$(cat "$REDIS_DIR/redis.pid")" 2>/dev/null || true
    bash scripts/smtp.sh stop "$SMTP_DIR" >/dev/null 2>&1 || true
    bash scripts/stripe.sh stop "$STRIPE_DIR" >/dev/null 2>&1 || true
    bash scripts/mllp.sh stop "$MLLP_DIR" >/dev/null 2>&1 || true
    rm -rf "$DIR" "$REDIS_DIR" "$SMTP_DIR" "$STRIPE_DIR" "$MLLP_DIR"
}
trap cleanup EXIT

apt_install() {
    echo "$* not installed; installing with apt-get" >&2
    if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; else SUDO=; fi
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}
# Debian may start a system Redis on 6379 after installing; the tests never use it.
command -v redis-server >/dev/null 2>&1 || apt_install redis-server
# PHP itself writes the rows of the session-table tests.
php -m 2>/dev/null | grep -qx pdo_mysql || apt_install php-cli php-mysql
# The prescription PDF tests read the text back with poppler's pdftotext.
command -v pdftotext >/dev/null 2>&1 || apt_install poppler-utils
# Document text extraction runs Tesseract (English) on scanned pages.
command -v tesseract >/dev/null 2>&1 || apt_install tesseract-ocr tesseract-ocr-eng
redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --save "" --appendonly no --dir "$REDIS_DIR" \
    --pidfile "$REDIS_DIR/redis.pid" --logfile "$REDIS_DIR/redis.log" --daemonize yes
for _ in $(seq 1 50); do
    redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 && break
    sleep 0.1
done
redis-cli -p "$REDIS_PORT" ping >/dev/null || { cat "$REDIS_DIR/redis.log" >&2; exit 1; }
export MMT_TEST_REDIS_URL="redis://127.0.0.1:$REDIS_PORT/0"

# The e-mail tests deliver to a real SMTP server (aiosmtpd, see scripts/smtp.sh).
bash scripts/smtp.sh start "$SMTP_DIR" "$SMTP_PORT"
export MMT_TEST_SMTP_URL="smtp://127.0.0.1:$SMTP_PORT" MMT_TEST_MAILDIR="$SMTP_DIR/maildir"

# The online payment tests talk to a local stand-in for Stripe's API (scripts/stripe.sh).
bash scripts/stripe.sh start "$STRIPE_DIR" "$STRIPE_PORT"
export MMT_TEST_STRIPE_URL="http://127.0.0.1:$STRIPE_PORT"

# Filed notes are sent as HL7 to a real MLLP receiver (python-hl7's server, scripts/mllp.sh).
bash scripts/mllp.sh start "$MLLP_DIR" "$MLLP_PORT"
export MMT_TEST_MLLP_ADDR="127.0.0.1:$MLLP_PORT" MMT_TEST_MLLP_DIR="$MLLP_DIR/received"

bash scripts/db.sh start "$DIR" "$PORT"
export MMT_TEST_SERVER_URL="mysql://mmt:mmt@127.0.0.1:$PORT"
if [ -f "$ROOT/../shared/openemr-schema/database.sql" ]; then
    export OPENEMR_REAL_SCHEMA="$ROOT/../shared/openemr-schema/database.sql"
fi
if [ "${MMT_TEST_AGAINST_REAL_SCHEMA:-}" = 1 ]; then
    [ -n "${OPENEMR_REAL_SCHEMA:-}" ] || { echo "MMT_TEST_AGAINST_REAL_SCHEMA needs the real schema" >&2; exit 1; }
    mariadb --socket="$DIR/mysqld.sock" -uroot -e "CREATE DATABASE mmt_real_template CHARACTER SET utf8mb4"
    mariadb --socket="$DIR/mysqld.sock" -uroot mmt_real_template < "$OPENEMR_REAL_SCHEMA"
    export MMT_TEST_TEMPLATE_DB=mmt_real_template
    echo "test databases take OpenEMR's tables from the real schema in $OPENEMR_REAL_SCHEMA"
fi
echo "private MariaDB on 127.0.0.1:$PORT (data in $DIR), private Redis on 127.0.0.1:$REDIS_PORT, SMTP on 127.0.0.1:$SMTP_PORT, Stripe stand-in on 127.0.0.1:$STRIPE_PORT, MLLP receiver on 127.0.0.1:$MLLP_PORT"
ARGS=("$@")
if [ -z "${OPENEMR_REAL_SCHEMA:-}" ]; then
    [ -n "${CI:-}" ] && { echo "CI must provide the real OpenEMR schema (../shared/openemr-schema/database.sql)" >&2; exit 1; }
    echo "SKIPPED: real_schema:: (no ../shared/openemr-schema/database.sql; set OPENEMR_REAL_SCHEMA to run it)" >&2
    case " $* " in *" -- "*) ARGS+=(--skip real_schema::) ;; *) ARGS+=(-- --skip real_schema::) ;; esac
fi
cargo test --lib --bins --tests "${ARGS[@]}"
