//! Refunds of patient payments, posted as OpenEMR posts money given back: a negative payment
//! (`ar_session.pay_total` below zero) whose `ar_activity` lines take back, with memo `Pt refund`,
//! what the refunded payment's lines put on each charge code. A pre-payment's refund has no lines.
//! Posted under the same per-visit lock as payments, idempotent by a client key.

use rust_decimal::Decimal;
use sha2::{Digest, Sha256};
use sqlx::MySqlConnection;

use super::{
    BillingError, entry,
    payments::{Payment, get_payment},
};
use crate::{
    app::AppState,
    domain::{
        acl::{AclLevel, Aco},
        billing::{
            money,
            payment::{self, PaymentKind, PaymentState},
        },
        user::Caller,
        validation::Issues,
    },
    service::{permission, wall_clock_now},
    storage::{
        advisory_lock::{self, Held},
        mmt::payments::{self as records, NewRecord},
        openemr::{
            audit_log,
            billing::ar::{self, ActivityRow, NewActivity, NewSession},
        },
    },
};

type Result<T, E = BillingError> = std::result::Result<T, E>;

/// `adjreason` option OpenEMR seeds for money given back to a patient.
const MEMO: &str = "Pt refund";

#[derive(Clone)]
pub struct RefundInput {
    /// None: all that is left of the payment.
    pub amount: Option<Decimal>,
    pub reference: Option<String>,
    pub idempotency_key: Option<String>,
}

pub async fn refund(state: &AppState, caller: &Caller, id: i64, input: RefundInput) -> Result<Payment> {
    let original = get_payment(state, id).await?;
    permission::require_on(state, caller, Aco::ACCT_BILL, AclLevel::Write, original.session.patient_id)
        .await?;
    if let Some(posted) = super::checkout::refund_card(state, caller, &original, &input).await? {
        return Ok(posted);
    }
    record(state, caller, &original, input).await
}

/// Posts a refund of `original` as `poster`; the caller has checked their permission.
pub(super) async fn record(
    state: &AppState,
    poster: &Caller,
    original: &Payment,
    input: RefundInput,
) -> Result<Payment> {
    let mut issues = Issues::default();
    let asked = input.amount.map(|a| money(&mut issues, "amount", a, false));
    let reference = input
        .reference
        .map(|r| issues.text("reference", &r, 1, 255))
        .unwrap_or_else(|| format!("Refund of payment {}", original.session.session_id));
    if let Some(key) = &input.idempotency_key {
        super::payments::check_key(&mut issues, key);
    }
    issues.into_result(())?;
    if original.kind == PaymentKind::Refund {
        return Err(BillingError::Conflict("a refund cannot itself be refunded".into()));
    }
    if original.state == PaymentState::Voided {
        return Err(BillingError::Conflict("the payment is voided; there is nothing to refund".into()));
    }
    let ask = Ask { asked, reference, key: input.idempotency_key };
    let lock = format!("mmt-ar-{}-{}", original.session.patient_id, original.encounter.unwrap_or_default());
    let mut held = Held::take(&state.pool, lock, advisory_lock::WRITE_WAIT_SECS).await?;
    let posted = post_holding_lock(held.conn(), poster, original, &ask).await;
    held.release().await?;
    let (refund_id, replayed) = posted?;
    let mut refund = get_payment(state, refund_id).await?;
    refund.replayed = replayed;
    Ok(refund)
}

struct Ask {
    asked: Option<Decimal>,
    reference: String,
    key: Option<String>,
}

fn request_hash(original: i64, ask: &Ask) -> [u8; 32] {
    Sha256::digest(format!("refund|{original}|{:?}|{}", ask.asked, ask.reference).as_bytes()).into()
}

async fn post_holding_lock(
    conn: &mut MySqlConnection,
    poster: &Caller,
    original: &Payment,
    ask: &Ask,
) -> Result<(i64, bool)> {
    let id = i64::from(original.session.session_id);
    let pid = original.session.patient_id;
    let hash = request_hash(id, ask);
    let mut tx = sqlx::Connection::begin(conn).await?;
    if let Some(key) = &ask.key
        && let Some(earlier) = records::by_key(&mut tx, poster.user_id.0, key).await?
    {
        if earlier.request_hash.as_deref() != Some(&hash[..]) {
            return Err(BillingError::Conflict(
                "this Idempotency-Key was used for a different request; use a new key".into(),
            ));
        }
        return Ok((i64::from(earlier.session_id), true));
    }
    let earlier = records::refunds_of(&mut tx, id).await?;
    let refunded = records::refunded(&mut tx, id).await?;
    let amount = payment::refundable(original.session.pay_total, refunded, ask.asked)
        .map_err(BillingError::Conflict)?;
    let now = wall_clock_now();
    let session = NewSession {
        patient_id: pid,
        user_id: poster.user_id.0,
        reference: &ask.reference,
        pay_total: -amount,
        description: original.session.description.as_deref().unwrap_or_default(),
        adjustment_code: &original.session.adjustment_code,
        payment_method: &original.session.payment_method,
        now,
    };
    let refund_id = ar::insert_session(&mut tx, &session).await?;
    let mut taken: Vec<ActivityRow> = Vec::new();
    for earlier_id in earlier {
        taken.extend(ar::for_session(&mut tx, i64::from(earlier_id)).await?);
    }
    let lines: Vec<&ActivityRow> = original.lines.iter().filter(|l| l.deleted.is_none()).collect();
    let held: Vec<Decimal> = lines.iter().map(|l| still_held(l, &taken)).collect();
    for share in payment::take_back(amount, &held) {
        let Some(line) = share.line.and_then(|i| lines.get(i)) else { continue };
        let (pid, encounter) = (i64::from(line.pid), i64::from(line.encounter));
        let activity = NewActivity {
            pid,
            encounter,
            sequence_no: ar::next_sequence(&mut tx, pid, encounter).await?,
            code_type: &line.code_type,
            code: &line.code,
            modifier: &line.modifier,
            post_user: poster.user_id.0,
            session_id: refund_id,
            pay_amount: -share.amount,
            account_code: &line.account_code,
            memo: MEMO,
            now,
        };
        ar::insert_activity(&mut tx, &activity).await?;
    }
    let record = NewRecord {
        session_id: refund_id,
        pid,
        encounter: original.encounter.unwrap_or_default(),
        kind: PaymentKind::Refund.as_str(),
        refund_of: Some(id),
        receipt_id: None,
        posted_by: Some(poster.user_id.0),
        key: ask.key.as_deref(),
        request_hash: Some(&hash[..]),
        now,
    };
    records::insert(&mut tx, &record).await?;
    let comments = format!("mmt-sidecar refunded {amount} of payment {id} as payment {refund_id}");
    audit_log::record(&mut tx, &entry(poster, "patient-record-insert", pid, comments)).await?;
    tx.commit().await?;
    Ok((refund_id, false))
}

/// What a payment line still holds after earlier refunds took back from the same code.
fn still_held(line: &ActivityRow, taken: &[ActivityRow]) -> Decimal {
    let same = |t: &&ActivityRow| {
        t.deleted.is_none()
            && t.encounter == line.encounter
            && t.code_type == line.code_type
            && t.code == line.code
            && t.modifier == line.modifier
    };
    line.pay_amount + taken.iter().filter(same).map(|t| t.pay_amount).sum::<Decimal>()
}
