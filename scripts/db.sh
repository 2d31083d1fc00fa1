#!/usr/bin/env bash
# A private, throwaway MariaDB for the demo and the tests. It only ever touches the data directory it
# created itself (marked with a .mmt-private file) and talks to its own socket and port.
#
#   scripts/db.sh start  DIR PORT   initialise DIR if new, start mariadbd, create user mmt/mmt
#   scripts/db.sh load   DIR DB     (re)create database DB from schema/ and openemr-fixtures/
#   scripts/db.sh sql    DIR DB [ARGS]  run the SQL on standard input in database DB (ARGS: mariadb options)
#   scripts/db.sh stop   DIR        stop the server started in DIR
#   scripts/db.sh status DIR        exit 0 when the server in DIR answers
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cmd=${1:-}
dir=${2:-}
[ -n "$cmd" ] && [ -n "$dir" ] || { echo "usage: $0 start|load|stop|status DIR [PORT|DB]" >&2; exit 2; }

ensure_mariadb() {
    command -v mariadbd >/dev/null 2>&1 || [ -x /usr/sbin/mariadbd ] && return 0
    echo "mariadb-server is not installed; installing it with apt-get" >&2
    if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; else SUDO=; fi
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends mariadb-server mariadb-client >/dev/null
    # Debian starts a system server after installing; this script never uses it.
}

mariadbd_bin() { command -v mariadbd 2>/dev/null || echo /usr/sbin/mariadbd; }

client() { mariadb --socket="$dir/mysqld.sock" -uroot "$@"; }

guard_private() {
    [ -f "$dir/.mmt-private" ] || { echo "refusing: $dir was not created by scripts/db.sh" >&2; exit 3; }
}

start() {
    local port=${1:?port}
    ensure_mariadb
    if [ -e "$dir" ] && [ ! -f "$dir/.mmt-private" ] && [ -n "$(ls -A "$dir" 2>/dev/null)" ]; then
        echo "refusing: $dir exists and was not created by scripts/db.sh" >&2; exit 3
    fi
    mkdir -p "$dir"
    dir=$(cd "$dir" && pwd)
    touch "$dir/.mmt-private"
    if [ ! -d "$dir/data/mysql" ]; then
        mariadb-install-db --no-defaults --datadir="$dir/data" --user="$(id -un)" \
            --auth-root-authentication-method=normal --skip-test-db >"$dir/install.log" 2>&1 \
            || { cat "$dir/install.log" >&2; exit 1; }
    fi
    if client -e 'SELECT 1' >/dev/null 2>&1; then return 0; fi
    "$(mariadbd_bin)" --no-defaults --datadir="$dir/data" --socket="$dir/mysqld.sock" \
        --port="$port" --bind-address=127.0.0.1 --pid-file="$dir/mysqld.pid" \
        --user="$(id -un)" --skip-name-resolve --innodb-buffer-pool-size=256M \
        --innodb-flush-log-at-trx-commit=2 --max-connections=500 \
        --character-set-server=utf8mb4 --collation-server=utf8mb4_general_ci \
        --log-error="$dir/error.log" >/dev/null 2>&1 &
    for _ in $(seq 1 300); do
        client -e 'SELECT 1' >/dev/null 2>&1 && break
        sleep 0.2
    done
    client -e 'SELECT 1' >/dev/null 2>&1 || { tail -20 "$dir/error.log" >&2; exit 1; }
    client -e "CREATE USER IF NOT EXISTS 'mmt'@'127.0.0.1' IDENTIFIED VIA mysql_native_password USING PASSWORD('mmt');
               CREATE USER IF NOT EXISTS 'mmt'@'localhost' IDENTIFIED VIA mysql_native_password USING PASSWORD('mmt');
               GRANT ALL PRIVILEGES ON *.* TO 'mmt'@'127.0.0.1' WITH GRANT OPTION;
               GRANT ALL PRIVILEGES ON *.* TO 'mmt'@'localhost' WITH GRANT OPTION;"
}

load() {
    local db=${1:?database}
    guard_private
    client -e "DROP DATABASE IF EXISTS \`$db\`; CREATE DATABASE \`$db\` CHARACTER SET utf8mb4;"
    cat "$ROOT"/schema/*.sql "$ROOT"/openemr-fixtures/*.sql | client "$db"
}

stop() {
    guard_private
    [ -f "$dir/mysqld.pid" ] || return 0
    local pid
    pid=$(cat "$dir/mysqld.pid")
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 150); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    kill -9 "$pid" 2>/dev/null || true
    rm -f "$dir/mysqld.pid"
}

case "$cmd" in
    start) start "${3:-}" ;;
    load) load "${3:-}" ;;
    sql) guard_private; client "${3:?database}" "${@:4}" ;;
    stop) stop ;;
    status) guard_private; client -e 'SELECT 1' >/dev/null 2>&1 ;;
    *) echo "unknown command: $cmd" >&2; exit 2 ;;
esac
