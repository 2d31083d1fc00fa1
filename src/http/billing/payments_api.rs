use chrono::{NaiveDate, NaiveDateTime};
use poem::web::Data;
use poem_openapi::{ApiResponse, Object, OpenApi, param::Header, param::Path, payload::Json};

use crate::{
    app::AppState,
    http::{ApiTags, auth::Auth, billing::Money, problem::ApiError},
    service::billing::{
        payments::{self, Payment, PaymentInput},
        refunds::{self, RefundInput},
    },
};

/// A patient payment, as OpenEMR's front desk takes it.
#[derive(Object)]
#[oai(deny_unknown_fields)]
pub struct PaymentCreate {
    pub pid: i64,
    /// The visit paid for; leave out for a pre-payment held on the account.
    pub encounter: Option<i64>,
    /// `invoice_balance` (the default with an encounter: spread over the visit's open charge lines),
    /// `copay`, or `pre_payment` (the default without one).
    pub kind: Option<String>,
    /// From OpenEMR's `payment_method` list: `cash`, `check_payment`, `credit_card`, `bank_draft`, `electronic`.
    pub method: String,
    pub amount: Money,
    /// Check or reference number; required for `check_payment` and `bank_draft`.
    pub reference: Option<String>,
}

#[derive(Object)]
#[oai(deny_unknown_fields)]
pub struct PaymentVoid {
    /// Why it is voided; kept with the void and in OpenEMR's audit log.
    pub reason: Option<String>,
}

#[derive(Object)]
#[oai(deny_unknown_fields)]
pub struct PaymentRefund {
    /// How much goes back; all that is left of the payment when left out.
    pub amount: Option<Money>,
    /// Reference kept on the refund (`ar_session.reference`); `Refund of payment N` by default.
    pub reference: Option<String>,
}

/// A line of the payment put against one charge code of the invoice (`ar_activity`).
#[derive(Object)]
pub struct PaymentLine {
    pub encounter: i32,
    pub sequence_no: u32,
    pub code_type: String,
    /// Empty: claim level.
    pub code: String,
    pub modifier: String,
    /// `PP` patient payment, `PCP` copay.
    pub account_code: String,
    pub amount: Money,
    /// When it was voided, if it was.
    pub voided_at: Option<NaiveDateTime>,
}

/// A payment (OpenEMR `ar_session`), its lines and state.
#[derive(Object)]
pub struct PaymentView {
    /// ar_session.session_id
    pub id: u32,
    pub pid: i64,
    pub encounter: Option<i64>,
    pub kind: String,
    pub method: String,
    pub amount: Money,
    pub reference: String,
    /// users.id of whoever posted it.
    pub posted_by: i32,
    pub posted_on: NaiveDate,
    /// `posted` or `voided`.
    pub status: String,
    /// What refunds of this payment gave back.
    pub refunded: Money,
    /// For a refund: the payment it gives back.
    pub refund_of: Option<u32>,
    pub void_reason: Option<String>,
    pub lines: Vec<PaymentLine>,
}

fn view(p: Payment) -> PaymentView {
    PaymentView {
        id: p.session.session_id,
        pid: p.session.patient_id,
        encounter: p.encounter,
        kind: p.kind.as_str().into(),
        method: p.session.payment_method,
        amount: p.session.pay_total.into(),
        reference: p.session.reference,
        posted_by: p.session.user_id,
        posted_on: p.session.post_to_date,
        status: p.state.as_str().into(),
        refunded: p.refunded.into(),
        refund_of: p.record.as_ref().and_then(|r| r.refund_of),
        void_reason: p.record.and_then(|r| r.void_reason),
        lines: p
            .lines
            .into_iter()
            .map(|l| PaymentLine {
                encounter: l.encounter,
                sequence_no: l.sequence_no,
                code_type: l.code_type,
                code: l.code,
                modifier: l.modifier,
                account_code: l.account_code,
                amount: l.pay_amount.into(),
                voided_at: l.deleted,
            })
            .collect(),
    }
}

#[derive(ApiResponse)]
pub enum Posted {
    /// Posted: `ar_session`, its `ar_activity` lines and the `payments` receipt row.
    #[oai(status = 201)]
    Created(Json<PaymentView>, #[oai(header = "Location")] String),
    /// This `Idempotency-Key` posted the same payment before: that payment, nothing posted again.
    #[oai(status = 200)]
    Existing(Json<PaymentView>, #[oai(header = "Location")] String),
}

#[derive(ApiResponse)]
pub enum PaymentResponse {
    #[oai(status = 200)]
    Ok(Json<PaymentView>),
}

#[derive(Default)]
pub struct PaymentsApi;

#[OpenApi(tag = "ApiTags::Billing")]
impl PaymentsApi {
    /// Take a patient payment as OpenEMR's front desk does.
    ///
    /// An invoice payment is spread over the visit's charge lines by what each still owes (copays
    /// counting against the first), any excess on the last; a copay goes against the first fee
    /// line; a pre-payment stays on the account. Send an `Idempotency-Key` to make retries post
    /// once. Needs OpenEMR `acct|bill` (write).
    #[oai(path = "/payments/", method = "post", operation_id = "payments_create")]
    async fn create(
        &self,
        state: Data<&AppState>,
        auth: Auth,
        #[oai(name = "Idempotency-Key")] idempotency_key: Header<Option<String>>,
        body: Json<PaymentCreate>,
    ) -> Result<Posted, ApiError> {
        let b = body.0;
        let input = PaymentInput {
            pid: b.pid,
            encounter: b.encounter,
            kind: b.kind,
            method: b.method,
            amount: b.amount.0,
            reference: b.reference,
            idempotency_key: idempotency_key.0,
        };
        let payment = payments::post(&state, &auth.0, input).await?;
        let location = format!("/api/payments/{}/", payment.session.session_id);
        Ok(if payment.replayed {
            Posted::Existing(Json(view(payment)), location)
        } else {
            Posted::Created(Json(view(payment)), location)
        })
    }

    /// Refund a payment, or part of it, as OpenEMR posts money given back.
    ///
    /// A negative payment (`ar_session`) whose lines take back, memo `Pt refund`, what the
    /// payment put on each charge code, the last first, so the invoice owes again. A payment taken
    /// online is refunded to the card through Stripe first. Never more than is left; refunds are
    /// not refunded. `Idempotency-Key` refunds once. Needs OpenEMR `acct|bill` (write).
    #[oai(path = "/payments/:id/refund/", method = "post", operation_id = "payment_refund")]
    async fn refund(
        &self,
        state: Data<&AppState>,
        auth: Auth,
        id: Path<i64>,
        #[oai(name = "Idempotency-Key")] idempotency_key: Header<Option<String>>,
        body: Json<PaymentRefund>,
    ) -> Result<Posted, ApiError> {
        let input = RefundInput {
            amount: body.0.amount.map(|m| m.0),
            reference: body.0.reference,
            idempotency_key: idempotency_key.0,
        };
        let refund = refunds::refund(&state, &auth.0, id.0, input).await?;
        let location = format!("/api/payments/{}/", refund.session.session_id);
        Ok(if refund.replayed {
            Posted::Existing(Json(view(refund)), location)
        } else {
            Posted::Created(Json(view(refund)), location)
        })
    }

    /// One payment with its lines.
    #[oai(path = "/payments/:id/", method = "get", operation_id = "payment_get")]
    async fn get(
        &self,
        state: Data<&AppState>,
        auth: Auth,
        id: Path<i64>,
    ) -> Result<PaymentResponse, ApiError> {
        Ok(PaymentResponse::Ok(Json(view(payments::get(&state, &auth.0, id.0).await?))))
    }

    /// Void a payment: its lines stay in OpenEMR stamped `deleted`, so the invoice owes again, and
    /// its receipt row goes. A second void is 409. Needs OpenEMR `acct|bill` (write).
    #[oai(path = "/payments/:id/void/", method = "post", operation_id = "payment_void")]
    async fn void(
        &self,
        state: Data<&AppState>,
        auth: Auth,
        id: Path<i64>,
        body: Json<PaymentVoid>,
    ) -> Result<PaymentResponse, ApiError> {
        Ok(PaymentResponse::Ok(Json(view(payments::void(&state, &auth.0, id.0, body.0.reason).await?))))
    }
}
