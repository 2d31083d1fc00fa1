#!/usr/bin/env bash
# Starts mmt-sidecar on a demo OpenEMR database: a private MariaDB in .dev/ (never the system one),
# loaded fresh from schema/ and openemr-fixtures/. Ctrl-C stops both.
#   scripts/demo.sh            (PORT=8001 DB_PORT=33306 to change ports; LISTEN_HOST=0.0.0.0 to
#                               serve other machines: the demo's passwords are public, so it
#                               listens on this machine only unless told otherwise)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
PORT=${PORT:-8001}
DB_PORT=${DB_PORT:-33306}
SMTP_PORT=${SMTP_PORT:-2525}
STRIPE_PORT=${STRIPE_PORT:-12111}
HL7_PORT=${HL7_PORT:-2575}
LISTEN_HOST=${LISTEN_HOST:-127.0.0.1}
DIR="$ROOT/.dev/mariadb"

# The same profile as scripts/test.sh, so the two commands share one build.
if [ ! -x target/debug/mmt-sidecar ]; then
    echo "building mmt-sidecar (a first build takes about 10 minutes on 2 cores; progress below)" >&2
fi
cargo build --bin mmt-sidecar
bash scripts/db.sh start "$DIR" "$DB_PORT"
# Prescriptions e-mailed from the demo go to a local SMTP server that keeps them in .dev/mail.
bash scripts/smtp.sh start "$ROOT/.dev/mail" "$SMTP_PORT"
# Online payment goes to a local stand-in for Stripe's API; its checkout pages pay with one click.
bash scripts/stripe.sh start "$ROOT/.dev/stripe" "$STRIPE_PORT"
trap 'bash scripts/db.sh stop "$DIR"; bash scripts/smtp.sh stop "$ROOT/.dev/mail"; bash scripts/stripe.sh stop "$ROOT/.dev/stripe"' EXIT
STRIPE_KEY=sk_test_demo STRIPE_WEBHOOK=whsec_demo
python3 - "$STRIPE_PORT" "$PORT" "$STRIPE_KEY" "$STRIPE_WEBHOOK" <<'PY'
import json, sys, urllib.request
stripe, port, key, secret = sys.argv[1:]
body = json.dumps({"url": f"http://127.0.0.1:{port}/api/webhooks/stripe/", "secret": secret}).encode()
headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
urllib.request.urlopen(urllib.request.Request(f"http://127.0.0.1:{stripe}/_test/webhook_endpoint", body, headers))
PY
bash scripts/db.sh load "$DIR" openemr
# A development master key for encryption at rest, made once and kept with the demo's data.
KEY_FILE="$ROOT/.dev/master.key"
if [ ! -s "$KEY_FILE" ]; then
    (umask 077 && head -c 32 /dev/urandom | base64 > "$KEY_FILE")
fi

cat <<MSG

  mmt-sidecar demo
  explorer:  http://localhost:$PORT/api/docs/
  spec:      http://localhost:$PORT/api/openapi.json
  health:    http://localhost:$PORT/api/health/
  database:  mysql://mmt:mmt@127.0.0.1:$DB_PORT/openemr (private, in .dev/)
  e-mail:    smtp://127.0.0.1:$SMTP_PORT, messages kept in .dev/mail/maildir/new
  payments:  Stripe stand-in on http://127.0.0.1:$STRIPE_PORT (set visit prices first: PUT /api/billing/prices/)
  HL7 v2 in: MLLP on 127.0.0.1:$HL7_PORT (received as drgarcia), or POST /api/hl7/

$(sed -n '/^| username/,/^$/p' openemr-fixtures/LOGINS.md)

MSG
DATABASE_URL="mysql://mmt:mmt@127.0.0.1:$DB_PORT/openemr" LISTEN_ADDR="$LISTEN_HOST:$PORT" MMT_MASTER_KEY_FILE="$KEY_FILE" \
    SMTP_URL="smtp://127.0.0.1:$SMTP_PORT" MMT_MAIL_FROM="${MMT_MAIL_FROM:-Demo Clinic <rx@demo-clinic.example>}" \
    STRIPE_SECRET_KEY=$STRIPE_KEY STRIPE_WEBHOOK_SECRET=$STRIPE_WEBHOOK MMT_STRIPE_API_BASE="http://127.0.0.1:$STRIPE_PORT" \
    MMT_STRIPE_SUCCESS_URL="http://localhost:$PORT/api/docs/" MMT_STRIPE_CANCEL_URL="http://localhost:$PORT/api/docs/" \
    MMT_HL7_LISTEN_ADDR="127.0.0.1:$HL7_PORT" MMT_HL7_LISTEN_USER=drgarcia \
    LOG_FORMAT=${LOG_FORMAT:-pretty} ./target/debug/mmt-sidecar serve --migrate
