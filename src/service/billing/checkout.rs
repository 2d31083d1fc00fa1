//! Online payment of bookings through Stripe Checkout. A pending booking gets a Checkout Session
//! at the visit's price (new or returning patient) and stays held while it is open; Stripe's
//! signed webhooks then confirm the booking and post the payment into OpenEMR's A/R as a
//! credit-card pre-payment (reference: the PaymentIntent), lapse the hold of an expired checkout,
//! or post a refund made in Stripe. A payment arriving after the hold lapsed books the slot again
//! when it is still free, or else goes straight back to the card and the booker is told.

use chrono::{DateTime, Duration as Span, NaiveDateTime};
use rust_decimal::Decimal;
use secrecy::ExposeSecret;
use serde::Deserialize;

use super::{
    BillingError, entry, payments, pricing,
    refunds::{self, RefundInput},
    stripe::{self, NewCheckout, StripeError},
};
use crate::{
    app::AppState,
    domain::{
        acl::{AclLevel, Aco},
        audit::AuditEntry,
        billing::{
            checkout::{CheckoutState, from_minor, to_minor},
            payment,
        },
        messaging::notification::{NotificationKind, Subject},
        scheduling::status::Phase,
        user::{Caller, SignInMethod, UserId},
        webhook::{self, SignatureError},
    },
    service::{
        audit,
        messaging::notifications,
        permission,
        scheduling::{
            SchedulingError, Statuses,
            holds::{self, Settled},
        },
        sign_in, wall_clock_now, webhooks as outbound,
    },
    storage::{
        advisory_lock::{self, Held},
        mmt::{
            appointments as holds_store,
            checkouts::{self as store, CheckoutRow},
            payments as records,
        },
        openemr::{audit_log, scheduling::events, users},
    },
};

type Result<T, E = BillingError> = std::result::Result<T, E>;

/// A checkout this close to its expiry is not handed out again; a new one is made.
const REUSE_MARGIN_SECS: i64 = 120;
/// Runs of one event that lost a deadlock.
const ATTEMPTS: u32 = 3;

impl From<StripeError> for BillingError {
    fn from(e: StripeError) -> Self {
        Self::Unavailable(e.to_string())
    }
}

fn lock_name(eid: u32) -> String {
    format!("mmt-checkout-{eid}")
}

/// A Checkout Session for a pending booking, or the one already open for it (`false`).
pub async fn start(state: &AppState, caller: &Caller, eid: u32) -> Result<(CheckoutRow, bool)> {
    let row = {
        let mut conn = state.pool.acquire().await?;
        events::get(&mut conn, eid).await?
    };
    let not_found = || BillingError::NotFound(format!("no appointment {eid}"));
    let row = row.ok_or_else(not_found)?;
    let pid = row.patient().ok_or_else(not_found)?.0;
    permission::require_on(state, caller, Aco::PATIENTS_APPT, AclLevel::Wsome, pid).await?;
    if state.config.stripe.secret_key.is_none() {
        return Err(StripeError::NotConfigured.into());
    }
    let statuses = Statuses::load(state).await?;
    if statuses.phase(&row.pc_apptstatus) != Phase::Pending {
        return Err(BillingError::Conflict(format!(
            "appointment {eid} is not a pending booking (status {}); book it with hold to take payment online",
            row.pc_apptstatus
        )));
    }
    let now = wall_clock_now();
    let starts = row.event_date.zip(row.start_time).map(|(d, t)| d.and_time(t));
    if starts.is_none_or(|at| at <= now) {
        return Err(BillingError::Conflict(format!("appointment {eid} has already begun")));
    }
    let category = i64::from(row.pc_catid);
    let (kind, rule) = pricing::price(state, pid, category).await?;
    let rule = rule.ok_or_else(|| {
        BillingError::Conflict(format!(
            "no visit price applies to a category {category} visit of a {} patient; an administrator sets one with PUT /api/billing/prices/",
            kind.as_str()
        ))
    })?;
    let title = row.pc_title.clone().filter(|t| !t.trim().is_empty()).unwrap_or_else(|| "Visit".into());
    let product = format!("{title} ({} patient)", kind.as_str());
    let mut held = Held::take(&state.pool, lock_name(eid), advisory_lock::WRITE_WAIT_SECS).await?;
    let opened =
        open_locked(state, caller, eid, pid, rule.amount, kind.as_str(), &product, held.conn()).await;
    held.release().await?;
    opened
}

#[allow(clippy::too_many_arguments)]
async fn open_locked(
    state: &AppState,
    caller: &Caller,
    eid: u32,
    pid: i64,
    amount: Decimal,
    kind: &str,
    product: &str,
    conn: &mut sqlx::MySqlConnection,
) -> Result<(CheckoutRow, bool)> {
    let now = wall_clock_now();
    let earlier = store::for_appointment(&state.pool, eid).await?;
    let reusable = earlier.iter().find(|c| {
        c.state == CheckoutState::Open.as_str() && c.expires_at > now + Span::seconds(REUSE_MARGIN_SECS)
    });
    if let Some(open) = reusable {
        return Ok((open.clone(), false));
    }
    let config = &state.config.stripe;
    // Stripe measures its 30 minutes to 24 hours from when the request reaches it: a minute's slack.
    let ttl = Span::from_std(config.checkout_ttl).unwrap_or(Span::minutes(30)) + Span::minutes(1);
    let expires = now + ttl.clamp(Span::minutes(31), Span::hours(24) - Span::minutes(1));
    let minor = to_minor(amount).ok_or_else(|| BillingError::Conflict("the price is out of range".into()))?;
    let key = format!("mmt-checkout-{eid}-{}", earlier.len());
    let reference = format!("mmt-appointment-{eid}");
    let new = NewCheckout {
        amount_minor: minor,
        product,
        expires_at: expires.and_utc().timestamp(),
        reference: &reference,
        appointment: eid,
        idempotency_key: &key,
    };
    let session = stripe::create_checkout(state, &new).await?;
    let url = session.url.ok_or_else(|| StripeError::Refused("the session has no url".into()))?;
    let expires_at = DateTime::from_timestamp(session.expires_at, 0).map_or(expires, |t| t.naive_utc());
    let mut tx = sqlx::Connection::begin(&mut *conn).await?;
    let row = store::NewCheckout {
        eid,
        pid,
        stripe_session: &session.id,
        url: &url,
        amount,
        currency: &config.currency,
        patient_kind: kind,
        created_by: caller.user_id.0,
        now,
        expires_at,
    };
    let id = store::insert(&mut tx, &row).await?;
    holds_store::hold(&mut tx, eid, expires_at, caller.user_id.0, now).await?;
    let comments = format!("mmt-sidecar opened online payment {id} of {amount} for appointment {eid}");
    audit_log::record(&mut tx, &entry(caller, "patient-record-insert", pid, comments)).await?;
    tx.commit().await?;
    let created = store::by_session(conn, &session.id).await?;
    Ok((created.ok_or_else(|| BillingError::NotFound(format!("no checkout {id}")))?, true))
}

/// The appointment's checkouts, newest first; as readable as the appointment's payments.
pub async fn of_appointment(state: &AppState, caller: &Caller, eid: u32) -> Result<Vec<CheckoutRow>> {
    let row = events::get(&mut *state.pool.acquire().await?, eid).await?;
    let pid = row
        .and_then(|r| r.patient())
        .ok_or_else(|| BillingError::NotFound(format!("no appointment {eid}")))?;
    super::require_reader(state, caller, Some(pid.0)).await?;
    let found = store::for_appointment(&state.pool, eid).await?;
    let comments = format!("mmt-sidecar read online payments of appointment {eid}");
    audit::record(state, &entry(caller, "patient-record-select", pid.0, comments)).await?;
    Ok(found)
}

#[derive(Deserialize)]
struct StripeEvent {
    id: String,
    #[serde(rename = "type")]
    kind: String,
    data: EventData,
}

#[derive(Deserialize)]
struct EventData {
    object: serde_json::Value,
}

/// What happened to a webhook delivery.
pub struct Received {
    pub event_id: String,
    /// Seen before: nothing was done again.
    pub duplicate: bool,
    pub outcome: String,
}

/// A webhook from Stripe: its signature checked as Stripe documents, then acted on once.
pub async fn receive(state: &AppState, signature: Option<&str>, body: &[u8]) -> Result<Received> {
    let config = &state.config.stripe;
    let secret = config.webhook_secret.as_ref().ok_or_else(|| {
        BillingError::Unavailable("Stripe webhooks are not configured (STRIPE_WEBHOOK_SECRET)".into())
    })?;
    let now = chrono::Utc::now().timestamp();
    let tolerance = i64::try_from(config.tolerance.as_secs()).unwrap_or(i64::MAX);
    let checked = signature
        .ok_or(SignatureError::Malformed)
        .and_then(|s| webhook::verify(secret.expose_secret(), s, body, now, tolerance));
    if let Err(why) = checked {
        let comments = format!("mmt-sidecar refused a Stripe webhook: {why}");
        audit::security_failure(state, "mmt-sidecar", &comments).await;
        return Err(BillingError::BadSignature(why.to_string()));
    }
    let event: StripeEvent = serde_json::from_slice(body)
        .map_err(|e| BillingError::BadSignature(format!("the signed body is not a Stripe event: {e}")))?;
    if !store::claim_event(&state.pool, &event.id, &event.kind, wall_clock_now()).await? {
        let outcome = store::event_outcome(&state.pool, &event.id).await?.unwrap_or_default();
        return Ok(Received { event_id: event.id, duplicate: true, outcome });
    }
    match act_retrying(state, &event).await {
        Ok(outcome) => {
            store::event_done(&state.pool, &event.id, &outcome).await?;
            Ok(Received { event_id: event.id, duplicate: false, outcome })
        }
        Err(e) => {
            store::release_event(&state.pool, &event.id).await?;
            Err(e)
        }
    }
}

/// Every step of an event is idempotent (by state, by payment key), so one that lost a deadlock to
/// another event's transaction is run again rather than sent back to Stripe.
async fn act_retrying(state: &AppState, event: &StripeEvent) -> Result<String> {
    let mut attempt = 1;
    loop {
        match act(state, event).await {
            Err(BillingError::Storage(e)) if e.is_deadlock() && attempt < ATTEMPTS => attempt += 1,
            done => return done,
        }
    }
}

async fn act(state: &AppState, event: &StripeEvent) -> Result<String> {
    let object = &event.data.object;
    let text = |name: &str| object.get(name).and_then(|v| v.as_str()).unwrap_or_default().to_string();
    match event.kind.as_str() {
        "checkout.session.completed" | "checkout.session.async_payment_succeeded" => {
            if text("payment_status") != "paid" {
                return Ok("awaiting payment".into());
            }
            let paid = object.get("amount_total").and_then(|v| v.as_i64()).map(from_minor);
            completed(state, &text("id"), &text("payment_intent"), paid).await
        }
        "checkout.session.expired" => expired(state, &text("id")).await,
        "charge.refunded" => {
            let refunded =
                object.get("amount_refunded").and_then(|v| v.as_i64()).map_or(Decimal::ZERO, from_minor);
            refunded_in_stripe(state, &text("payment_intent"), refunded, &event.id).await
        }
        _ => Ok("ignored: not an event this server acts on".into()),
    }
}

async fn checkout_by_session(state: &AppState, session: &str) -> Result<Option<CheckoutRow>> {
    Ok(store::by_session(&mut *state.pool.acquire().await?, session).await?)
}

/// The user who opened the checkout posts what it brought in.
async fn poster(state: &AppState, checkout: &CheckoutRow) -> Result<Caller> {
    let record = users::by_id(&state.pool, UserId(checkout.created_by)).await?.ok_or_else(|| {
        BillingError::Unavailable(format!(
            "user {} who opened checkout {} is gone",
            checkout.created_by, checkout.id
        ))
    })?;
    Ok(sign_in::caller_from(record, SignInMethod::Password, None))
}

async fn completed(state: &AppState, session: &str, intent: &str, paid: Option<Decimal>) -> Result<String> {
    let Some(checkout) = checkout_by_session(state, session).await? else {
        return Ok("ignored: not a checkout of this server".into());
    };
    if intent.is_empty() {
        return Err(BillingError::Invalid(missing("data.object.payment_intent")));
    }
    let mut held =
        Held::take(&state.pool, lock_name(checkout.pc_eid), advisory_lock::WRITE_WAIT_SECS).await?;
    let result = complete_locked(state, &checkout.stripe_session, intent, paid, held.conn()).await;
    held.release().await?;
    result
}

async fn complete_locked(
    state: &AppState,
    session: &str,
    intent: &str,
    paid: Option<Decimal>,
    conn: &mut sqlx::MySqlConnection,
) -> Result<String> {
    let Some(checkout) = store::by_session(conn, session).await? else {
        return Ok("ignored: not a checkout of this server".into());
    };
    if checkout.state != CheckoutState::Open.as_str() {
        return Ok(format!("ignored: checkout {} is {}", checkout.id, checkout.state));
    }
    let settled = holds::settle_paid(state, checkout.pc_eid, checkout.hold_lapsed_at.is_some())
        .await
        .map_err(|e| match e {
            SchedulingError::Storage(e) => BillingError::Storage(e),
            other => BillingError::Unavailable(other.to_string()),
        })?;
    let poster = poster(state, &checkout).await?;
    let amount = paid.unwrap_or(checkout.amount);
    settle_payment(state, &poster, &checkout, settled, intent, amount, conn).await
}

async fn settle_payment(
    state: &AppState,
    poster: &Caller,
    checkout: &CheckoutRow,
    settled: Settled,
    intent: &str,
    amount: Decimal,
    conn: &mut sqlx::MySqlConnection,
) -> Result<String> {
    let eid = checkout.pc_eid;
    let now = wall_clock_now();
    let kept = settled != Settled::Lost;
    let state_now = CheckoutState::Open.complete(kept).map_err(|w| BillingError::Conflict(w.into()))?;
    let (payment, refunded, outcome) = if kept {
        let input = payments::PaymentInput {
            pid: checkout.pid,
            encounter: None,
            kind: Some("pre_payment".into()),
            method: "credit_card".into(),
            amount,
            reference: Some(intent.to_string()),
            idempotency_key: Some(format!("stripe-{intent}")),
        };
        let payment = payments::record(state, poster, input).await?;
        let outcome = match settled {
            Settled::Confirmed => format!("appointment {eid} confirmed"),
            Settled::Rebooked => format!("appointment {eid} booked again after its hold lapsed"),
            _ => format!("appointment {eid} already confirmed; payment recorded"),
        };
        (Some(i64::from(payment.session.session_id)), Decimal::ZERO, outcome)
    } else {
        let refund = stripe::refund(state, intent, None, &format!("mmt-late-{}", checkout.id)).await?;
        let outcome = format!("appointment {eid} could not be kept; refunded in Stripe ({})", refund.id);
        (None, from_minor(refund.amount), outcome)
    };
    let mut tx = sqlx::Connection::begin(conn).await?;
    let settle = store::Settled {
        id: checkout.id,
        state: state_now.as_str(),
        payment_intent: Some(intent),
        ar_session_id: payment,
        refunded,
        outcome: &outcome,
        now,
    };
    store::settle(&mut tx, &settle).await?;
    let comments = format!("mmt-sidecar settled online payment {} of {amount}: {outcome}", checkout.id);
    audit_log::record(
        &mut tx,
        &AuditEntry::system("patient-record-update", "Billing", checkout.pid, comments),
    )
    .await?;
    let told = if kept {
        None
    } else {
        let subject = Subject::Appointment(eid.into());
        let kind = NotificationKind::PaymentRefunded;
        Some(notifications::notify(&mut tx, checkout.created_by, kind, &subject, "mmt-sidecar").await?)
    };
    tx.commit().await?;
    if let Some(event) = told {
        outbound::committed(state, event);
    }
    Ok(outcome)
}

async fn expired(state: &AppState, session: &str) -> Result<String> {
    let Some(checkout) = checkout_by_session(state, session).await? else {
        return Ok("ignored: not a checkout of this server".into());
    };
    let current = CheckoutState::parse(&checkout.state).unwrap_or(CheckoutState::Open);
    let Ok(next) = current.expire() else {
        return Ok(format!("ignored: checkout {} is {}", checkout.id, checkout.state));
    };
    let lapsed = holds::lapse(state, checkout.pc_eid, "online payment expired").await?;
    let outcome = if lapsed {
        format!("appointment {} released: its checkout expired unpaid", checkout.pc_eid)
    } else {
        format!("checkout expired; appointment {} was no longer held", checkout.pc_eid)
    };
    let mut tx = state.pool.begin().await?;
    let settle = store::Settled {
        id: checkout.id,
        state: next.as_str(),
        payment_intent: None,
        ar_session_id: None,
        refunded: checkout.refunded,
        outcome: &outcome,
        now: wall_clock_now(),
    };
    store::settle(&mut tx, &settle).await?;
    tx.commit().await?;
    Ok(outcome)
}

/// A refund made in Stripe (the dashboard, or ours): what OpenEMR has not yet been told of is
/// posted as a refund of the checkout's payment. `amount_refunded` is the charge's running total.
async fn refunded_in_stripe(state: &AppState, intent: &str, total: Decimal, event: &str) -> Result<String> {
    let found = store::by_payment_intent(&mut *state.pool.acquire().await?, intent).await?;
    let Some(checkout) = found.filter(|_| !intent.is_empty()) else {
        return Ok("ignored: not a payment of this server".into());
    };
    let mut held =
        Held::take(&state.pool, lock_name(checkout.pc_eid), advisory_lock::WRITE_WAIT_SECS).await?;
    let result = post_stripe_refund(state, &checkout, total, event, held.conn()).await;
    held.release().await?;
    result
}

async fn post_stripe_refund(
    state: &AppState,
    checkout: &CheckoutRow,
    total: Decimal,
    event: &str,
    conn: &mut sqlx::MySqlConnection,
) -> Result<String> {
    let checkout =
        store::by_session(conn, &checkout.stripe_session).await?.unwrap_or_else(|| checkout.clone());
    let new = total - checkout.refunded;
    let Some(payment) = checkout.ar_session_id.filter(|_| new > Decimal::ZERO) else {
        return Ok(format!("nothing new to post for checkout {}", checkout.id));
    };
    let poster = poster(state, &checkout).await?;
    let original = payments::get_payment(state, i64::from(payment)).await?;
    let input = RefundInput {
        amount: Some(new),
        reference: Some(format!(
            "Stripe refund ({})",
            checkout.payment_intent.as_deref().unwrap_or_default()
        )),
        idempotency_key: Some(format!("stripe-{event}")),
    };
    let refund = refunds::record(state, &poster, &original, input).await?;
    record_refund(conn, &checkout, total, wall_clock_now()).await?;
    Ok(format!("refund of {new} posted as payment {}", refund.session.session_id))
}

async fn record_refund(
    conn: &mut sqlx::MySqlConnection,
    checkout: &CheckoutRow,
    total: Decimal,
    now: NaiveDateTime,
) -> Result<()> {
    let current = CheckoutState::parse(&checkout.state).unwrap_or(CheckoutState::Paid);
    let next = current.refund(total, checkout.amount).map_err(|w| BillingError::Conflict(w.into()))?;
    let outcome = format!("{total} refunded");
    let settle = store::Settled {
        id: checkout.id,
        state: next.as_str(),
        payment_intent: None,
        ar_session_id: None,
        refunded: total,
        outcome: &outcome,
        now,
    };
    store::settle(conn, &settle).await?;
    Ok(())
}

/// A refund asked for here of a payment that came through Stripe goes back to the card first;
/// Stripe's `charge.refunded` that follows finds it already posted. None: not a Stripe payment.
pub(super) async fn refund_card(
    state: &AppState,
    poster: &Caller,
    original: &payments::Payment,
    input: &RefundInput,
) -> Result<Option<payments::Payment>> {
    let id = i64::from(original.session.session_id);
    let Some(checkout) = store::by_payment(&mut *state.pool.acquire().await?, id).await? else {
        return Ok(None);
    };
    let mut held =
        Held::take(&state.pool, lock_name(checkout.pc_eid), advisory_lock::WRITE_WAIT_SECS).await?;
    let result =
        refund_card_locked(state, poster, original, input, &checkout.stripe_session, held.conn()).await;
    held.release().await?;
    result.map(Some)
}

async fn refund_card_locked(
    state: &AppState,
    poster: &Caller,
    original: &payments::Payment,
    input: &RefundInput,
    session: &str,
    conn: &mut sqlx::MySqlConnection,
) -> Result<payments::Payment> {
    if let Some(key) = &input.idempotency_key
        && records::by_key(conn, poster.user_id.0, key).await?.is_some()
    {
        return refunds::record(state, poster, original, input.clone()).await;
    }
    let checkout = store::by_session(conn, session)
        .await?
        .ok_or_else(|| BillingError::NotFound(format!("no checkout {session}")))?;
    let left = checkout.amount - checkout.refunded;
    let amount = payment::refundable(checkout.amount, checkout.refunded, input.amount)
        .map_err(BillingError::Conflict)?;
    let minor =
        to_minor(amount).ok_or_else(|| BillingError::Conflict(format!("at most {left} may be refunded")))?;
    // The same refund retried after a failure reuses its key; the next one has a new running total.
    let key =
        format!("mmt-refund-{}-{}-{minor}", checkout.id, to_minor(checkout.refunded).unwrap_or_default());
    let intent = checkout.payment_intent.clone().unwrap_or_default();
    let refunded = stripe::refund(state, &intent, Some(minor), &key).await?;
    let reference = input.reference.clone().or_else(|| Some(format!("Stripe refund {}", refunded.id)));
    let asked =
        RefundInput { amount: Some(amount), reference, idempotency_key: input.idempotency_key.clone() };
    let posted = refunds::record(state, poster, original, asked).await?;
    record_refund(conn, &checkout, checkout.refunded + amount, wall_clock_now()).await?;
    Ok(posted)
}

fn missing(field: &str) -> crate::domain::validation::Issues {
    let mut issues = crate::domain::validation::Issues::default();
    issues.add(field, "is required");
    issues
}
