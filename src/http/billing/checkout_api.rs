use chrono::{DateTime, NaiveDateTime, Utc};
use poem::web::Data;
use poem_openapi::{
    ApiResponse, Object, OpenApi, param::Header, param::Path, payload::Binary, payload::Json,
};

use crate::{
    app::AppState,
    http::{ApiTags, auth::Auth, billing::Money, problem::ApiError},
    service::billing::checkout,
    storage::mmt::checkouts::CheckoutRow,
};

fn utc(t: NaiveDateTime) -> DateTime<Utc> {
    t.and_utc()
}

/// Online payment of a booking: a Stripe Checkout Session and what became of it. Times are UTC.
#[derive(Object)]
pub struct Checkout {
    pub id: u64,
    /// The appointment (pc_eid) paid for.
    pub appointment_id: u32,
    pub pid: i64,
    /// `open`, `paid`, `expired` or `refunded`.
    pub state: String,
    pub amount: Money,
    pub currency: String,
    /// The price applied: `new` or `returning` patient.
    pub patient_kind: String,
    /// Stripe's hosted payment page; send the patient here.
    pub url: String,
    /// The booking stays held until then.
    pub expires_at: DateTime<Utc>,
    /// The payment posted in OpenEMR (`ar_session`), once paid.
    pub payment_id: Option<u32>,
    pub refunded: Money,
    /// What the payment did to the booking.
    pub outcome: Option<String>,
    pub created_at: DateTime<Utc>,
}

impl From<CheckoutRow> for Checkout {
    fn from(c: CheckoutRow) -> Self {
        Self {
            id: c.id,
            appointment_id: c.pc_eid,
            pid: c.pid,
            state: c.state,
            amount: c.amount.into(),
            currency: c.currency,
            patient_kind: c.patient_kind,
            url: c.url,
            expires_at: utc(c.expires_at),
            payment_id: c.ar_session_id,
            refunded: c.refunded.into(),
            outcome: c.outcome,
            created_at: utc(c.created_at),
        }
    }
}

#[derive(Object)]
pub struct WebhookReceipt {
    pub received: bool,
    pub event_id: String,
    /// This event was processed before; nothing was done again.
    pub duplicate: bool,
    pub outcome: String,
}

#[derive(ApiResponse)]
pub enum Opened {
    /// A new Checkout Session; the booking is held until it expires.
    #[oai(status = 201)]
    Created(Json<Checkout>),
    /// The checkout already open for this booking.
    #[oai(status = 200)]
    Existing(Json<Checkout>),
}

#[derive(ApiResponse)]
pub enum Checkouts {
    #[oai(status = 200)]
    Ok(Json<Vec<Checkout>>),
}

#[derive(ApiResponse)]
pub enum Receipt {
    #[oai(status = 200)]
    Ok(Json<WebhookReceipt>),
}

#[derive(Default)]
pub struct CheckoutApi;

#[OpenApi(tag = "ApiTags::Billing")]
impl CheckoutApi {
    /// Take payment for a pending booking online (Stripe Checkout).
    ///
    /// Prices the visit as `GET /billing/prices/quote/` does (new or returning patient), creates a
    /// Checkout Session and answers its `url`; the booking stays held (pending) until the session
    /// expires (`MMT_CHECKOUT_MINUTES`). Asking again while one is open answers that one. Paid,
    /// the booking is confirmed and the payment posted to OpenEMR as a credit-card pre-payment.
    /// Needs `patients|appt` (wsome). 503 when Stripe is not configured or unreachable.
    #[oai(path = "/appointments/:id/checkout/", method = "post", operation_id = "appointment_checkout")]
    async fn open(&self, state: Data<&AppState>, auth: Auth, id: Path<u32>) -> Result<Opened, ApiError> {
        let (row, created) = checkout::start(&state, &auth.0, id.0).await?;
        Ok(if created { Opened::Created(Json(row.into())) } else { Opened::Existing(Json(row.into())) })
    }

    /// The booking's online payments, newest first. Read with `acct|bill` or `acct|rep_a`.
    #[oai(path = "/appointments/:id/checkout/", method = "get", operation_id = "appointment_checkouts")]
    async fn list(&self, state: Data<&AppState>, auth: Auth, id: Path<u32>) -> Result<Checkouts, ApiError> {
        let rows = checkout::of_appointment(&state, &auth.0, id.0).await?;
        Ok(Checkouts::Ok(Json(rows.into_iter().map(Checkout::from).collect())))
    }

    /// Stripe's webhook endpoint (no sign-in: the `Stripe-Signature` header is the credential).
    ///
    /// The raw body is checked as Stripe documents (`t=…,v1=…`: HMAC-SHA256 of `t.body` with
    /// `STRIPE_WEBHOOK_SECRET`, any of several `v1`, the timestamp within
    /// `MMT_STRIPE_WEBHOOK_TOLERANCE_SECS`); a bad signature is 400 and audited. Acts once per
    /// event id on `checkout.session.completed` (and `async_payment_succeeded`),
    /// `checkout.session.expired` and `charge.refunded`; a replay answers the first outcome. A
    /// failure answers 5xx so Stripe retries.
    #[oai(path = "/webhooks/stripe/", method = "post", operation_id = "stripe_webhook")]
    async fn stripe(
        &self,
        state: Data<&AppState>,
        #[oai(name = "Stripe-Signature")] signature: Header<Option<String>>,
        body: Binary<Vec<u8>>,
    ) -> Result<Receipt, ApiError> {
        let got = checkout::receive(&state, signature.0.as_deref(), &body.0).await?;
        Ok(Receipt::Ok(Json(WebhookReceipt {
            received: true,
            event_id: got.event_id,
            duplicate: got.duplicate,
            outcome: got.outcome,
        })))
    }
}
