//! Online payment of bookings end to end against the local Stripe stand-in (scripts/stripe.sh):
//! Checkout Sessions as Stripe's API takes them, webhooks signed as Stripe signs them (and forged,
//! stale, tampered, replayed), the booking hold, the payment and refunds in OpenEMR's A/R.

use chrono::{Datelike, Days, Local, NaiveDate, Weekday};
use poem::http::{Method, StatusCode};
use serde_json::{Value, json};

use crate::{
    auth::tokens,
    helpers::{RunningServer, TestDb},
    patients::send,
};

const GARCIA: i64 = 2;
const OKAFOR: i64 = 3;

fn standin_url() -> String {
    std::env::var("MMT_TEST_STRIPE_URL").expect(
        "MMT_TEST_STRIPE_URL is not set: run the tests with scripts/test.sh, which starts the Stripe stand-in",
    )
}

/// A practice taking payments online: its own Stripe test account at the stand-in, a sidecar on a
/// real socket for Stripe's webhooks, and an administrator's token.
struct Shop {
    db: TestDb,
    env: Vec<(&'static str, String)>,
    token: String,
    stripe: reqwest::Client,
    key: String,
    _server: RunningServer,
}

impl Shop {
    async fn open() -> Self {
        let db = TestDb::migrated().await;
        let id = uuid::Uuid::new_v4().simple().to_string();
        let (key, secret) = (format!("sk_test_{id}"), format!("whsec_{id}"));
        let env = vec![
            ("STRIPE_SECRET_KEY", key.clone()),
            ("STRIPE_WEBHOOK_SECRET", secret.clone()),
            ("MMT_STRIPE_API_BASE", standin_url()),
            ("MMT_STRIPE_SUCCESS_URL", "https://clinic.example/paid".into()),
            ("MMT_STRIPE_CANCEL_URL", "https://clinic.example/cancelled".into()),
        ];
        let pairs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let server = RunningServer::start(db.state_with(&pairs)).await;
        let (token, _) = tokens(&db, crate::auth::ADMIN).await;
        let shop = Self { db, env, token, stripe: reqwest::Client::new(), key, _server: server };
        let endpoint = json!({"url": shop._server.url("/api/webhooks/stripe/"), "secret": secret});
        shop.control("POST", "/_test/webhook_endpoint", endpoint).await;
        let prices = json!({"rules": [{"category_id": 5, "patient_kind": "new", "amount": "80.00"},
            {"category_id": 5, "patient_kind": "returning", "amount": "50.00"}]});
        let (status, body) = shop.call("PUT", "/api/billing/prices/", Some(prices)).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        shop
    }

    async fn call(&self, method: &str, path: &str, body: Option<Value>) -> (StatusCode, Value) {
        let pairs: Vec<(&str, &str)> = self.env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        send(&self.db, &pairs, Some(&self.token), Method::from_bytes(method.as_bytes()).unwrap(), path, body)
            .await
    }

    /// A test control of the stand-in: plays the customer and Stripe's event delivery.
    async fn control(&self, method: &str, path: &str, body: Value) -> Value {
        let req = self
            .stripe
            .request(Method::from_bytes(method.as_bytes()).unwrap(), format!("{}{path}", standin_url()));
        let resp = req.bearer_auth(&self.key).json(&body).send().await.unwrap();
        assert!(resp.status().is_success(), "{path}");
        resp.json().await.unwrap()
    }

    async fn stripe_requests(&self, path: &str) -> Vec<Value> {
        let all = self.control("GET", "/_test/requests", json!({})).await;
        all.as_array().unwrap().iter().filter(|r| r["path"] == path).cloned().collect()
    }

    /// A held booking with drgarcia on a Tuesday a few weeks ahead.
    async fn hold(&self, pid: i64, time: &str) -> i64 {
        self.hold_with(pid, (GARCIA, 3), time).await
    }

    async fn hold_with(&self, pid: i64, (provider, facility): (i64, i64), time: &str) -> i64 {
        let body = json!({"pid": pid, "provider_id": provider, "facility_id": facility, "category_id": 5,
            "start": format!("{}T{time}", tuesday_ahead()), "hold": true});
        let (status, out) = self.call("POST", "/api/appointments/", Some(body)).await;
        assert_eq!(status, StatusCode::CREATED, "{out}");
        out["id"].as_i64().unwrap()
    }

    async fn checkout(&self, eid: i64) -> Value {
        let (status, out) = self.call("POST", &format!("/api/appointments/{eid}/checkout/"), None).await;
        assert_eq!(status, StatusCode::CREATED, "{out}");
        out
    }

    /// The customer pays; Stripe delivers `checkout.session.completed` signed as `signature` says.
    async fn pay(&self, checkout: &Value, signature: &str) -> Value {
        let session = self
            .db
            .scalar_text(&format!("SELECT stripe_session FROM mmt_checkouts WHERE id = {}", checkout["id"]))
            .await;
        self.control(
            "POST",
            &format!("/_test/checkout/sessions/{session}/pay"),
            json!({"signature": signature}),
        )
        .await
    }

    async fn resend(&self, event: &Value, signature: &str) -> Value {
        let path = format!("/_test/events/{}/resend", event.as_str().unwrap());
        self.control("POST", &path, json!({"signature": signature})).await
    }

    async fn appointment(&self, eid: i64) -> Value {
        let (status, out) = self.call("GET", &format!("/api/appointments/{eid}/"), None).await;
        assert_eq!(status, StatusCode::OK, "{out}");
        out
    }

    async fn card_sessions(&self, intent: &str) -> Vec<(String, String, String)> {
        sqlx::query_as(
            "SELECT CAST(pay_total AS CHAR), payment_method, adjustment_code FROM ar_session WHERE reference LIKE ? \
             ORDER BY session_id",
        )
        .bind(format!("%{intent}%"))
        .fetch_all(&self.db.pool)
        .await
        .unwrap()
    }
}

fn tuesday_ahead() -> NaiveDate {
    let mut day = Local::now().date_naive() + Days::new(21);
    while day.weekday() != Weekday::Tue {
        day = day + Days::new(1);
    }
    day
}

/// A patient registered just now, with no visits: the new-patient price applies.
async fn new_patient(shop: &Shop) -> i64 {
    let body = json!({"first_name": "Nova", "last_name": "Quinn", "dob": "1990-04-02", "sex": "Female"});
    let (status, out) = shop.call("POST", "/api/patients/", Some(body)).await;
    assert_eq!(status, StatusCode::CREATED, "{out}");
    out["pid"].as_i64().unwrap()
}

#[tokio::test]
async fn a_checkout_holds_the_booking_and_its_payment_confirms_it_and_posts_a_card_payment_once() {
    let shop = Shop::open().await;
    let pid = new_patient(&shop).await;
    let eid = shop.hold(pid, "10:00").await;
    let path = format!("/api/appointments/{eid}/checkout/");
    let asks = (0..8).map(|_| shop.call("POST", &path, None));
    let answers = futures_util::future::join_all(asks).await;
    let created: Vec<&Value> =
        answers.iter().filter(|(s, _)| *s == StatusCode::CREATED).map(|(_, b)| b).collect();
    assert_eq!(created.len(), 1, "one session however many ask at once: {answers:?}");
    assert!(answers.iter().all(|(s, b)| s.is_success() && b["id"] == created[0]["id"]), "{answers:?}");
    let checkout = created[0].clone();
    assert_eq!(
        (checkout["amount"].as_str(), checkout["patient_kind"].as_str()),
        (Some("80.00"), Some("new"))
    );
    assert_eq!(checkout["state"], "open");
    let sent = shop.stripe_requests("/v1/checkout/sessions").await;
    assert_eq!(sent.len(), 1, "{sent:?}");
    let form = &sent[0]["form"];
    assert_eq!(form["mode"], "payment");
    assert_eq!(form["line_items[0][price_data][unit_amount]"], "8000");
    assert_eq!(form["line_items[0][price_data][currency]"], "usd");
    assert_eq!(form["metadata[appointment]"], eid.to_string());
    assert!(sent[0]["idempotency_key"].as_str().is_some_and(|k| !k.is_empty()));
    let session = shop
        .db
        .scalar_text(&format!("SELECT stripe_session FROM mmt_checkouts WHERE id = {}", checkout["id"]))
        .await;
    assert_eq!(checkout["url"], format!("{}/c/pay/{session}", standin_url()));
    let held = shop.appointment(eid).await;
    assert_eq!(held["status"], "^");
    assert_eq!(
        held["hold_expires_at"].as_str().map(|t| &t[..16]),
        checkout["expires_at"].as_str().map(|t| &t[..16]),
        "the hold lasts as long as the checkout"
    );

    let paid = shop.pay(&checkout, "several").await;
    assert_eq!(paid["delivery"]["status"], 200, "{paid}");
    let intent = paid["object"]["payment_intent"].as_str().unwrap().to_string();
    let confirmed = shop.appointment(eid).await;
    assert_eq!(confirmed["status"], "*");
    assert!(confirmed.get("hold_expires_at").is_none(), "{confirmed}");
    let posted = shop.card_sessions(&intent).await;
    assert_eq!(posted, [("80.00".into(), "credit_card".into(), "pre_payment".into())]);
    let (status, list) = shop.call("GET", &format!("/api/appointments/{eid}/checkout/"), None).await;
    assert_eq!(status, StatusCode::OK, "{list}");
    assert_eq!(list[0]["state"], "paid");
    let payment = list[0]["payment_id"].as_i64().unwrap();
    let (status, view) = shop.call("GET", &format!("/api/payments/{payment}/"), None).await;
    assert_eq!((status, view["reference"].as_str()), (StatusCode::OK, Some(intent.as_str())));

    let replay = shop.resend(&paid["event"], "valid").await;
    assert_eq!(replay["delivery"]["status"], 200, "{replay}");
    let receipt: Value = serde_json::from_str(replay["delivery"]["body"].as_str().unwrap()).unwrap();
    assert_eq!(receipt["duplicate"], true, "{receipt}");
    assert_eq!(shop.card_sessions(&intent).await.len(), 1, "a replayed event posts nothing again");
    let (status, again) = shop.call("POST", &format!("/api/appointments/{eid}/checkout/"), None).await;
    assert_eq!(status, StatusCode::CONFLICT, "a confirmed booking takes no second payment: {again}");
}

#[tokio::test]
async fn forged_stale_tampered_and_unsigned_webhooks_are_refused_audited_and_change_nothing() {
    let shop = Shop::open().await;
    let pid = new_patient(&shop).await;
    let eid = shop.hold(pid, "11:00").await;
    let checkout = shop.checkout(eid).await;
    let forged = shop.pay(&checkout, "forged").await;
    assert_eq!(forged["delivery"]["status"], 400, "{forged}");
    for mode in ["stale", "tampered", "none"] {
        let refused = shop.resend(&forged["event"], mode).await;
        assert_eq!(refused["delivery"]["status"], 400, "{mode}: {refused}");
        let problem: Value = serde_json::from_str(refused["delivery"]["body"].as_str().unwrap()).unwrap();
        assert!(problem["detail"].as_str().is_some_and(|d| !d.is_empty()), "{problem}");
    }
    assert_eq!(shop.appointment(eid).await["status"], "^", "nothing acted on");
    let audited = shop
        .db
        .scalar("SELECT COUNT(*) FROM log WHERE success = 0 AND FROM_BASE64(comments) LIKE '%refused a Stripe webhook%'")
        .await;
    assert_eq!(audited, 4, "each refusal is in OpenEMR's log");
    let genuine = shop.resend(&forged["event"], "valid").await;
    assert_eq!(genuine["delivery"]["status"], 200, "refusals claimed nothing: {genuine}");
    assert_eq!(shop.appointment(eid).await["status"], "*");
}

#[tokio::test]
async fn an_expired_checkout_frees_the_slot() {
    let shop = Shop::open().await;
    let pid = new_patient(&shop).await;
    let eid = shop.hold(pid, "13:00").await;
    let checkout = shop.checkout(eid).await;
    let session = shop
        .db
        .scalar_text(&format!("SELECT stripe_session FROM mmt_checkouts WHERE id = {}", checkout["id"]))
        .await;
    let expired =
        shop.control("POST", &format!("/_test/checkout/sessions/{session}/expire"), json!({})).await;
    assert_eq!(expired["delivery"]["status"], 200, "{expired}");
    let released = shop.appointment(eid).await;
    assert_eq!(released["status"], "x");
    assert!(released.get("hold_expires_at").is_none(), "{released}");
    let (_, list) = shop.call("GET", &format!("/api/appointments/{eid}/checkout/"), None).await;
    assert_eq!(list[0]["state"], "expired");
    let body = json!({"pid": pid, "provider_id": GARCIA, "facility_id": 3, "category_id": 5,
        "start": format!("{}T13:00", tuesday_ahead())});
    let (status, out) = shop.call("POST", "/api/appointments/", Some(body)).await;
    assert_eq!(status, StatusCode::CREATED, "the slot is free again: {out}");
}

#[tokio::test]
async fn a_payment_after_the_hold_lapsed_rebooks_a_free_slot_and_refunds_a_taken_one_and_tells_the_booker() {
    let shop = Shop::open().await;
    let pid = new_patient(&shop).await;
    let (free, taken) = (shop.hold(pid, "14:00").await, shop.hold(pid, "15:00").await);
    let (free_checkout, taken_checkout) = (shop.checkout(free).await, shop.checkout(taken).await);
    sqlx::query("UPDATE mmt_appointment_holds SET expires_at = NOW() - INTERVAL 1 MINUTE")
        .execute(&shop.db.pool)
        .await
        .unwrap();
    let lapsed = mmt_sidecar::service::scheduling::holds::expire_holds(&shop.db.state()).await.unwrap();
    assert_eq!(lapsed, 2);
    let other = new_patient(&shop).await;
    let body = json!({"pid": other, "provider_id": GARCIA, "facility_id": 3, "category_id": 5,
        "start": format!("{}T15:00", tuesday_ahead())});
    let (status, out) = shop.call("POST", "/api/appointments/", Some(body)).await;
    assert_eq!(status, StatusCode::CREATED, "{out}");

    let paid = shop.pay(&free_checkout, "valid").await;
    assert_eq!(paid["delivery"]["status"], 200, "{paid}");
    assert_eq!(shop.appointment(free).await["status"], "*", "its slot was still free: booked again");
    assert_eq!(shop.card_sessions(paid["object"]["payment_intent"].as_str().unwrap()).await.len(), 1);

    let late = shop.pay(&taken_checkout, "valid").await;
    assert_eq!(late["delivery"]["status"], 200, "{late}");
    let intent = late["object"]["payment_intent"].as_str().unwrap();
    assert_eq!(shop.appointment(taken).await["status"], "x", "someone else has the slot");
    let refunds = shop.stripe_requests("/v1/refunds").await;
    assert_eq!(refunds.len(), 1, "{refunds:?}");
    assert_eq!(refunds[0]["form"]["payment_intent"], intent);
    assert!(shop.card_sessions(intent).await.is_empty(), "money that went straight back is not posted");
    let (_, list) = shop.call("GET", &format!("/api/appointments/{taken}/checkout/"), None).await;
    assert_eq!((list[0]["state"].as_str(), list[0]["refunded"].as_str()), (Some("refunded"), Some("80.00")));
    let told = shop
        .db
        .scalar("SELECT COUNT(*) FROM mmt_notifications WHERE kind = 'payment.refunded' AND user_id = 1")
        .await;
    assert_eq!(told, 1, "whoever opened the checkout is told");
}

/// What the refunds of a payment gave back, by the rows OpenEMR keeps.
async fn refunded_total(db: &TestDb, payment: i64) -> String {
    db.scalar_text(&format!(
        "SELECT CAST(COALESCE(-SUM(s.pay_total), 0) AS CHAR) FROM ar_session s JOIN mmt_payments p \
         ON p.session_id = s.session_id WHERE p.refund_of = {payment}"
    ))
    .await
}

#[tokio::test]
async fn a_refund_in_stripe_posts_once_and_a_refund_here_goes_back_to_the_card_without_double_posting() {
    let shop = Shop::open().await;
    let pid = new_patient(&shop).await;
    let eid = shop.hold(pid, "09:00").await;
    let checkout = shop.checkout(eid).await;
    let paid = shop.pay(&checkout, "valid").await;
    let intent = paid["object"]["payment_intent"].as_str().unwrap().to_string();
    let (_, list) = shop.call("GET", &format!("/api/appointments/{eid}/checkout/"), None).await;
    let payment = list[0]["payment_id"].as_i64().unwrap();

    let dashboard = shop
        .control("POST", &format!("/_test/payment_intents/{intent}/refund"), json!({"amount": 2000}))
        .await;
    assert_eq!(dashboard["delivery"]["status"], 200, "{dashboard}");
    assert_eq!(refunded_total(&shop.db, payment).await, "20.00");
    let replay = shop.resend(&dashboard["event"], "valid").await;
    assert_eq!(replay["delivery"]["status"], 200);
    assert_eq!(refunded_total(&shop.db, payment).await, "20.00", "a replayed charge.refunded posts nothing");

    let (status, refund) = shop
        .call("POST", &format!("/api/payments/{payment}/refund/"), Some(json!({"amount": "30.00"})))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{refund}");
    assert_eq!((refund["amount"].as_str(), refund["kind"].as_str()), (Some("-30.00"), Some("refund")));
    let sent = shop.stripe_requests("/v1/refunds").await;
    assert_eq!(sent.last().unwrap()["form"]["amount"], "3000", "{sent:?}");
    // Stripe then sends charge.refunded for the whole 50.00; it finds both refunds posted.
    for _ in 0..100 {
        let events = shop.control("GET", "/_test/events", json!({})).await;
        let done = events
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["type"] == "charge.refunded")
            .all(|e| !e["deliveries"].as_array().unwrap().is_empty());
        if done && events.as_array().unwrap().iter().filter(|e| e["type"] == "charge.refunded").count() == 2 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(refunded_total(&shop.db, payment).await, "50.00");
    let (_, list) = shop.call("GET", &format!("/api/appointments/{eid}/checkout/"), None).await;
    assert_eq!((list[0]["state"].as_str(), list[0]["refunded"].as_str()), (Some("paid"), Some("50.00")));
    let (status, out) = shop
        .call("POST", &format!("/api/payments/{payment}/refund/"), Some(json!({"amount": "30.01"})))
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "never more than is left: {out}");
}

#[tokio::test]
async fn checkout_needs_a_pending_booking_a_price_and_the_right_to_book() {
    let shop = Shop::open().await;
    let pid = new_patient(&shop).await;
    let body = json!({"pid": pid, "provider_id": GARCIA, "facility_id": 3, "category_id": 5,
        "start": format!("{}T16:00", tuesday_ahead()), "status": "*"});
    let (_, booked) = shop.call("POST", "/api/appointments/", Some(body)).await;
    let (status, out) =
        shop.call("POST", &format!("/api/appointments/{}/checkout/", booked["id"]), None).await;
    assert_eq!(status, StatusCode::CONFLICT, "{out}");
    let (status, _) = shop.call("POST", "/api/appointments/999999/checkout/", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let eid = shop.hold(pid, "16:30").await;
    let (status, _) = shop.call("PUT", "/api/billing/prices/", Some(json!({"rules": []}))).await;
    assert_eq!(status, StatusCode::OK);
    let (status, out) = shop.call("POST", &format!("/api/appointments/{eid}/checkout/"), None).await;
    assert_eq!(status, StatusCode::CONFLICT, "no price, no checkout: {out}");
    assert!(shop.stripe_requests("/v1/checkout/sessions").await.is_empty());
    let unconfigured = send(
        &shop.db,
        &[],
        Some(&shop.token),
        Method::POST,
        &format!("/api/appointments/{eid}/checkout/"),
        None,
    )
    .await;
    assert_eq!(unconfigured.0, StatusCode::SERVICE_UNAVAILABLE, "{:?}", unconfigured.1);
}

/// Bookings OpenEMR's calendar made have no flow-board row yet; paid at the same moment, each
/// status change inserts one into the same index gap and InnoDB picks deadlock victims: they are
/// retried, so every payment settles.
#[tokio::test]
async fn payments_for_many_bookings_at_once_all_settle() {
    let shop = Shop::open().await;
    let (one, two) = (new_patient(&shop).await, new_patient(&shop).await);
    let mut checkouts = Vec::new();
    for slot in ["09:00", "09:15", "09:30", "09:45", "10:00", "10:15"] {
        for (pid, provider) in [(one, (GARCIA, 3)), (two, (OKAFOR, 4))] {
            let eid = shop.hold_with(pid, provider, slot).await;
            checkouts.push((eid, shop.checkout(eid).await));
        }
    }
    sqlx::query("DELETE FROM patient_tracker WHERE pid IN (?, ?)")
        .bind(one)
        .bind(two)
        .execute(&shop.db.pool)
        .await
        .unwrap();
    let paid = futures_util::future::join_all(checkouts.iter().map(|(_, c)| shop.pay(c, "valid"))).await;
    for answer in &paid {
        assert_eq!(answer["delivery"]["status"], 200, "{answer}");
    }
    for (eid, _) in &checkouts {
        assert_eq!(shop.appointment(*eid).await["status"], "*", "appointment {eid}");
    }
}
