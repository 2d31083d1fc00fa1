#!/usr/bin/env bash
# Starts mmt-sidecar on a demo OpenEMR database: a private MariaDB in .dev/ (never the system one),
# loaded fresh from schema/ and openemr-fixtures/. Ctrl-C stops both.
#   scripts/demo.sh            (PORT=8001 DB_PORT=33306 to change ports)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
PORT=${PORT:-8001}
DB_PORT=${DB_PORT:-33306}
DIR="$ROOT/.dev/mariadb"

cargo build --release --quiet
bash scripts/db.sh start "$DIR" "$DB_PORT"
trap 'bash scripts/db.sh stop "$DIR"' EXIT
bash scripts/db.sh load "$DIR" openemr

cat <<MSG

  mmt-sidecar demo
  explorer:  http://localhost:$PORT/api/docs/
  spec:      http://localhost:$PORT/api/openapi.json
  health:    http://localhost:$PORT/api/health/
  database:  mysql://mmt:mmt@127.0.0.1:$DB_PORT/openemr (private, in .dev/)

$(sed -n '/^| username/,/^$/p' openemr-fixtures/LOGINS.md)

MSG
DATABASE_URL="mysql://mmt:mmt@127.0.0.1:$DB_PORT/openemr" LISTEN_ADDR="0.0.0.0:$PORT" \
    LOG_FORMAT=${LOG_FORMAT:-pretty} ./target/release/mmt-sidecar serve --migrate
