"""A local stand-in for the parts of Stripe's API the sidecar uses, for tests (stdlib only).

Stripe's documented shapes: form-encoded POSTs with `Authorization: Bearer sk_test_…`, JSON
answers, errors as {"error": {"type", "message", "param"}}, `Idempotency-Key` replays. Every
secret key is its own account (tests run in parallel), with its own webhook endpoint.

    POST /v1/checkout/sessions          create a Checkout Session (validated as Stripe does)
    GET  /v1/checkout/sessions/{id}
    POST /v1/refunds                    refund a payment_intent; then sends charge.refunded

Test controls (same bearer), which play the customer and Stripe's event delivery:

    POST /_test/webhook_endpoint        {"url", "secret"}
    POST /_test/checkout/sessions/{id}/pay      {"signature": mode}  -> checkout.session.completed
    POST /_test/checkout/sessions/{id}/expire   {"signature": mode}  -> checkout.session.expired
    POST /_test/payment_intents/{id}/refund     {"amount"}           -> a dashboard refund
    POST /_test/events/{id}/resend              {"signature": mode}  -> the same event again
    GET  /_test/requests                the API requests received

The session's `url` is a minimal hosted page: GET shows the amount and a Pay button, POST pays
(as the customer would) and delivers the signed event to the account's endpoint.

Signature modes: valid, several (a wrong v1 and v0 before the right v1), forged (another
secret), stale (signed ten minutes ago), tampered (body changed after signing), none.
Deliveries are answered with {"event", "delivery": {"status", "body"}}.
"""

import hashlib
import hmac
import json
import secrets
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

LOCK = threading.Lock()
ACCOUNTS = {}


def account(key):
    with LOCK:
        return ACCOUNTS.setdefault(
            key, {"sessions": {}, "intents": {}, "events": {}, "idempotency": {}, "requests": [], "endpoint": None}
        )


def new_id(prefix):
    return prefix + "_test_" + secrets.token_hex(12)


class Refused(Exception):
    def __init__(self, status, message, param=None, kind="invalid_request_error"):
        super().__init__(message)
        self.status, self.message, self.param, self.kind = status, message, param, kind


def whole(form, name, low=None, high=None):
    raw = form.get(name)
    if raw is None:
        raise Refused(400, f"Missing required param: {name}.", name)
    try:
        value = int(raw)
    except ValueError:
        raise Refused(400, f"Invalid integer: {raw}", name) from None
    if (low is not None and value < low) or (high is not None and value > high):
        raise Refused(400, f"Invalid value for {name}: {raw}", name)
    return value


def create_session(acct, form, host):
    if form.get("mode") not in ("payment", "setup", "subscription"):
        raise Refused(400, "Missing required param: mode.", "mode")
    if not form.get("success_url"):
        raise Refused(400, "Missing required param: success_url.", "success_url")
    prefix = "line_items[0]"
    currency = form.get(prefix + "[price_data][currency]", "")
    if len(currency) != 3 or not currency.isalpha():
        raise Refused(400, "Invalid currency", prefix + "[price_data][currency]")
    amount = whole(form, prefix + "[price_data][unit_amount]", 0, 99999999)
    if not form.get(prefix + "[price_data][product_data][name]"):
        raise Refused(400, "Missing required param: product_data[name].", prefix + "[price_data][product_data][name]")
    quantity = whole(form, prefix + "[quantity]", 1)
    now = int(time.time())
    expires_at = whole(form, "expires_at") if "expires_at" in form else now + 86400
    if expires_at < now + 1800 or expires_at > now + 86400:
        raise Refused(400, "The `expires_at` timestamp must be between 30 minutes and 24 hours from now.", "expires_at")
    sid = new_id("cs")
    metadata = {k[len("metadata["):-1]: v for k, v in form.items() if k.startswith("metadata[")}
    session = {
        "id": sid,
        "object": "checkout.session",
        "amount_subtotal": amount * quantity,
        "amount_total": amount * quantity,
        "cancel_url": form.get("cancel_url"),
        "client_reference_id": form.get("client_reference_id"),
        "created": now,
        "currency": currency.lower(),
        "expires_at": expires_at,
        "livemode": False,
        "metadata": metadata,
        "mode": form["mode"],
        "payment_intent": None,
        "payment_status": "unpaid",
        "status": "open",
        "success_url": form["success_url"],
        "url": f"http://{host}/c/pay/{sid}",
    }
    acct["sessions"][sid] = session
    return session


def charge_of(intent):
    return {
        "id": intent["charge"],
        "object": "charge",
        "amount": intent["amount"],
        "amount_captured": intent["amount"],
        "amount_refunded": intent["amount_refunded"],
        "currency": intent["currency"],
        "paid": True,
        "payment_intent": intent["id"],
        "refunded": intent["amount_refunded"] >= intent["amount"],
        "status": "succeeded",
        "metadata": intent["metadata"],
    }


def create_refund(acct, form):
    pid = form.get("payment_intent")
    intent = acct["intents"].get(pid)
    if intent is None:
        raise Refused(400, f"No such payment_intent: '{pid}'", "payment_intent", "invalid_request_error")
    left = intent["amount"] - intent["amount_refunded"]
    amount = whole(form, "amount", 1) if "amount" in form else left
    if left <= 0:
        raise Refused(400, f"Charge {intent['charge']} has already been refunded.", None, "invalid_request_error")
    if amount > left:
        raise Refused(400, f"Refund amount ({amount}) is greater than unrefunded amount on charge ({left})", "amount")
    intent["amount_refunded"] += amount
    refund = {
        "id": new_id("re"),
        "object": "refund",
        "amount": amount,
        "charge": intent["charge"],
        "created": int(time.time()),
        "currency": intent["currency"],
        "payment_intent": pid,
        "reason": form.get("reason"),
        "status": "succeeded",
    }
    return refund


def event(acct, kind, obj):
    evt = {
        "id": new_id("evt"),
        "object": "event",
        "api_version": "2024-06-20",
        "created": int(time.time()),
        "data": {"object": obj},
        "livemode": False,
        "pending_webhooks": 1,
        "request": {"id": None, "idempotency_key": None},
        "type": kind,
        "deliveries": [],
    }
    acct["events"][evt["id"]] = evt
    return evt


def sign(secret, ts, body):
    return hmac.new(secret.encode(), f"{ts}.".encode() + body, hashlib.sha256).hexdigest()


def deliver(acct, evt, mode="valid"):
    endpoint = acct["endpoint"]
    if endpoint is None:
        return {"status": None, "body": "no webhook endpoint registered"}
    payload = {k: v for k, v in evt.items() if k != "deliveries"}
    body = json.dumps(payload, separators=(",", ":")).encode()
    ts = int(time.time())
    secret = endpoint["secret"]
    if mode == "stale":
        ts -= 600
    if mode == "forged":
        secret = "whsec_" + secrets.token_hex(16)
    header = f"t={ts},v1={sign(secret, ts, body)}"
    if mode == "several":
        header = f"t={ts},v1={secrets.token_hex(32)},v0={secrets.token_hex(32)},v1={sign(secret, ts, body)}"
    if mode == "tampered":
        body = body.replace(b'"livemode":false', b'"livemode":true')
    headers = {"Content-Type": "application/json; charset=utf-8", "User-Agent": "Stripe/1.0 (+https://stripe.com/docs/webhooks)"}
    if mode != "none":
        headers["Stripe-Signature"] = header
    request = urllib.request.Request(endpoint["url"], data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            result = {"status": response.status, "body": response.read().decode()}
    except urllib.error.HTTPError as e:
        result = {"status": e.code, "body": e.read().decode()}
    except OSError as e:
        result = {"status": None, "body": str(e)}
    evt["deliveries"].append(result)
    return result


def pay(acct, sid):
    session = acct["sessions"].get(sid)
    if session is None or session["status"] != "open":
        raise Refused(400, f"No open checkout session: '{sid}'", "id")
    intent = {
        "id": new_id("pi"),
        "charge": new_id("ch"),
        "amount": session["amount_total"],
        "amount_refunded": 0,
        "currency": session["currency"],
        "metadata": session["metadata"],
    }
    acct["intents"][intent["id"]] = intent
    session.update(status="complete", payment_status="paid", payment_intent=intent["id"])
    return event(acct, "checkout.session.completed", dict(session))


def expire(acct, sid):
    session = acct["sessions"].get(sid)
    if session is None or session["status"] != "open":
        raise Refused(400, f"No open checkout session: '{sid}'", "id")
    session.update(status="expired")
    return event(acct, "checkout.session.expired", dict(session))


def refunded_events(acct, refund):
    intent = acct["intents"][refund["payment_intent"]]
    return [event(acct, "refund.created", refund), event(acct, "charge.refunded", charge_of(intent))]


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def answer(self, status, obj):
        body = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Request-Id", "req_" + secrets.token_hex(7))
        self.end_headers()
        self.wfile.write(body)

    def page(self, status, html):
        body = f"<!doctype html><title>Stripe stand-in</title><body style='font-family:sans-serif'>{html}".encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def hosted(self, method, sid):
        with LOCK:
            found = [(a, a["sessions"][sid]) for a in ACCOUNTS.values() if sid in a["sessions"]]
        if not found:
            self.page(404, "<p>No such checkout.</p>")
            return
        acct, session = found[0]
        if method == "POST" and session["status"] == "open":
            with LOCK:
                evt = pay(acct, sid)
            delivery = deliver(acct, evt)
            self.page(200, f"<p>Paid. The clinic answered {delivery['status']}.</p>"
                           f"<p><a href='{session['success_url']}'>Back to the clinic</a></p>")
            return
        amount = f"{session['amount_total'] / 100:.2f} {session['currency'].upper()}"
        button = "<form method='post'><button>Pay</button></form>" if session["status"] == "open" else ""
        self.page(200, f"<h1>{amount}</h1><p>Checkout {sid}: {session['status']}</p>{button}")

    def account(self):
        auth = self.headers.get("Authorization", "")
        key = auth[len("Bearer "):] if auth.startswith("Bearer ") else ""
        if not key.startswith("sk_test_"):
            raise Refused(401, "Invalid API Key provided: " + (key[:7] + "***" if key else "(none)"))
        return account(key)

    def body(self):
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length)

    def do_GET(self):
        self.handle_request("GET")

    def do_POST(self):
        self.handle_request("POST")

    def handle_request(self, method):
        try:
            raw = self.body()
            path = urllib.parse.urlsplit(self.path).path
            parts = [p for p in path.split("/") if p]
            if parts[:2] == ["c", "pay"] and len(parts) == 3:
                self.hosted(method, parts[2])
                return
            acct = self.account()
            if parts[:1] == ["_test"]:
                args = json.loads(raw or b"{}")
                self.answer(200, self.control(acct, method, parts[1:], args))
                return
            form = dict(urllib.parse.parse_qsl(raw.decode(), keep_blank_values=True))
            with LOCK:
                acct["requests"].append({
                    "method": method,
                    "path": path,
                    "idempotency_key": self.headers.get("Idempotency-Key"),
                    "content_type": self.headers.get("Content-Type"),
                    "form": form,
                })
            key = self.headers.get("Idempotency-Key")
            if method == "POST" and key:
                with LOCK:
                    seen = acct["idempotency"].get(key)
                if seen is not None:
                    if seen[0] != (path, form):
                        raise Refused(400, "Keys for idempotent requests can only be used with the same parameters they were first used with.", None, "idempotency_error")
                    self.answer(seen[1], seen[2])
                    return
            status, obj, after = self.api(acct, method, parts, form)
            if method == "POST" and key:
                with LOCK:
                    acct["idempotency"][key] = ((path, form), status, obj)
            self.answer(status, obj)
            for evt in after:
                threading.Thread(target=deliver, args=(acct, evt), daemon=True).start()
        except Refused as e:
            error = {"type": e.kind, "message": e.message}
            if e.param:
                error["param"] = e.param
            self.answer(e.status, {"error": error})

    def api(self, acct, method, parts, form):
        if method == "POST" and parts == ["v1", "checkout", "sessions"]:
            with LOCK:
                return 200, create_session(acct, form, self.headers.get("Host", "stripe.local")), []
        if method == "GET" and parts[:3] == ["v1", "checkout", "sessions"] and len(parts) == 4:
            session = acct["sessions"].get(parts[3])
            if session is None:
                raise Refused(404, f"No such checkout.session: '{parts[3]}'", "id")
            return 200, session, []
        if method == "POST" and parts == ["v1", "refunds"]:
            with LOCK:
                refund = create_refund(acct, form)
                return 200, refund, refunded_events(acct, refund)
        raise Refused(404, f"Unrecognized request URL ({method}: /{'/'.join(parts)}).")

    def control(self, acct, method, parts, args):
        mode = args.get("signature", "valid")
        if parts == ["webhook_endpoint"]:
            acct["endpoint"] = {"url": args["url"], "secret": args["secret"]}
            return {"ok": True}
        if parts == ["requests"]:
            return acct["requests"]
        if len(parts) == 4 and parts[:2] == ["checkout", "sessions"] and parts[3] in ("pay", "expire"):
            with LOCK:
                evt = (pay if parts[3] == "pay" else expire)(acct, parts[2])
            return {"event": evt["id"], "object": evt["data"]["object"], "delivery": deliver(acct, evt, mode)}
        if len(parts) == 3 and parts[0] == "payment_intents" and parts[2] == "refund":
            form = {"payment_intent": parts[1]}
            if "amount" in args:
                form["amount"] = str(args["amount"])
            with LOCK:
                refund = create_refund(acct, form)
                events = refunded_events(acct, refund)
            deliveries = [deliver(acct, evt, mode) for evt in events]
            return {"refund": refund, "event": events[-1]["id"], "delivery": deliveries[-1]}
        if len(parts) == 3 and parts[0] == "events" and parts[2] == "resend":
            evt = acct["events"].get(parts[1])
            if evt is None:
                raise Refused(404, f"No such event: '{parts[1]}'")
            return {"event": evt["id"], "delivery": deliver(acct, evt, mode)}
        if parts == ["events"]:
            return [{"id": e["id"], "type": e["type"], "deliveries": e["deliveries"]} for e in acct["events"].values()]
        raise Refused(404, "no such test control")


if __name__ == "__main__":
    server = ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler)
    server.daemon_threads = True
    server.serve_forever()
