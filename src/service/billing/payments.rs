//! Patient payments posted as OpenEMR's front desk posts them (`front_payment.php`): a deposit in
//! `ar_session`, its `ar_activity` lines, the `payments` receipt row. Unlike OpenEMR, the lines'
//! `sequence_no` is allocated under a lock (openemr/openemr#13392), and a client key makes a retry
//! post once. Posting and voiding need `acct|bill` write; reading, `acct|bill` or `acct|rep_a`.

use chrono::NaiveDateTime;
use rust_decimal::Decimal;
use sha2::{Digest, Sha256};
use sqlx::MySqlConnection;

use super::{BillingError, entry, require_reader};
use crate::{
    app::AppState,
    domain::{
        acl::{AclLevel, Aco},
        billing::{
            money,
            payment::{self, FeeLine, PaymentKind, PaymentState},
        },
        patient::Pid,
        user::Caller,
        validation::Issues,
    },
    service::{permission, wall_clock_now},
    storage::{
        StorageError,
        advisory_lock::{self, Held},
        mmt::payments::{self as records, NewRecord, PaymentRecord},
        openemr::{
            audit_log,
            billing::ar::{self, ActivityRow, NewActivity, NewSession, Receipt, SessionRow},
            chart::list_options,
            encounters, patients,
        },
    },
};

type Result<T, E = BillingError> = std::result::Result<T, E>;

/// `idempotency_key` is VARCHAR(64).
const KEY_CHARS: usize = 64;
/// A race with OpenEMR's own unlocked `sequence_no` allocation ends in a duplicate key; retried.
const ATTEMPTS: usize = 5;

pub struct PaymentInput {
    pub pid: i64,
    pub encounter: Option<i64>,
    pub kind: Option<String>,
    pub method: String,
    pub amount: Decimal,
    pub reference: Option<String>,
    pub idempotency_key: Option<String>,
}

pub struct Payment {
    pub session: SessionRow,
    pub kind: PaymentKind,
    pub encounter: Option<i64>,
    pub state: PaymentState,
    pub lines: Vec<ActivityRow>,
    pub record: Option<PaymentRecord>,
    /// What refunds of this payment have given back.
    pub refunded: Decimal,
    /// An earlier request with the same key posted it.
    pub replayed: bool,
}

struct Checked {
    pid: i64,
    encounter: Option<i64>,
    encounter_date: Option<NaiveDateTime>,
    kind: PaymentKind,
    method: String,
    amount: Decimal,
    reference: String,
    key: Option<String>,
    description: String,
}

async fn check(state: &AppState, input: PaymentInput) -> Result<Checked> {
    let mut issues = Issues::default();
    let kind = match input.kind.as_deref() {
        None => Some(if input.encounter.is_some() {
            PaymentKind::InvoiceBalance
        } else {
            PaymentKind::PrePayment
        }),
        Some(raw) => PaymentKind::parse(raw).filter(|k| *k != PaymentKind::Refund).or_else(|| {
            issues.add("kind", "must be invoice_balance, copay or pre_payment");
            None
        }),
    };
    match (kind.map(PaymentKind::needs_encounter), input.encounter) {
        (Some(true), None) => issues.add("encounter", "is required: the visit this payment is for"),
        (Some(false), Some(_)) => {
            issues.add("encounter", "a pre-payment is held on the account, not a visit")
        }
        _ => {}
    }
    let amount = money(&mut issues, "amount", input.amount, false);
    let reference = issues.text("reference", input.reference.as_deref().unwrap_or_default(), 0, 255);
    let visit = async {
        match input.encounter {
            Some(number) => encounters::get_of(&state.pool, input.pid, number).await,
            None => Ok(None),
        }
    };
    let (methods, patient, visit) = tokio::try_join!(
        list_options::active(&state.pool, "payment_method"),
        patients::get(&state.pool, Pid(input.pid)),
        visit,
    )?;
    if !methods.iter().any(|m| m.option_id == input.method) {
        let allowed: Vec<&str> = methods.iter().map(|m| m.option_id.as_str()).collect();
        issues.add("method", format!("must be one of {}", allowed.join(", ")));
    }
    // front_payment.php refuses a check or bank draft without its number.
    if matches!(input.method.as_str(), "check_payment" | "bank_draft") && reference.is_empty() {
        issues.add("reference", "is required for a check or bank draft: its number");
    }
    if let Some(key) = &input.idempotency_key {
        check_key(&mut issues, key);
    }
    if patient.is_none() {
        issues.add("pid", format!("no patient with pid {}", input.pid));
    }
    let mut encounter_date = None;
    if let Some(number) = input.encounter {
        match visit {
            Some(e) => encounter_date = e.date,
            None => issues.add("encounter", format!("pid {} has no encounter {number}", input.pid)),
        }
    }
    let description = patient.map(|p| format!("{} {} {}", p.fname, p.lname, p.mname)).unwrap_or_default();
    let checked = Checked {
        pid: input.pid,
        encounter: input.encounter,
        encounter_date,
        kind: kind.unwrap_or(PaymentKind::InvoiceBalance),
        method: input.method,
        amount,
        reference,
        key: input.idempotency_key,
        description,
    };
    Ok(issues.into_result(checked)?)
}

pub(super) fn check_key(issues: &mut Issues, key: &str) {
    if key.is_empty() || key.len() > KEY_CHARS || !key.bytes().all(|b| b.is_ascii_graphic()) {
        issues.add("Idempotency-Key", format!("must be 1 to {KEY_CHARS} printable ASCII characters"));
    }
}

fn request_hash(c: &Checked) -> [u8; 32] {
    let canonical =
        format!("{}|{:?}|{}|{}|{}|{}", c.pid, c.encounter, c.kind.as_str(), c.method, c.amount, c.reference);
    Sha256::digest(canonical.as_bytes()).into()
}

pub async fn post(state: &AppState, caller: &Caller, input: PaymentInput) -> Result<Payment> {
    permission::require_on(state, caller, Aco::ACCT_BILL, AclLevel::Write, input.pid).await?;
    record(state, caller, input).await
}

/// Posts a payment `poster` took; their permission is the caller's to check (a payment taken
/// online is posted as the user who asked for it).
pub(super) async fn record(state: &AppState, poster: &Caller, input: PaymentInput) -> Result<Payment> {
    let caller = poster;
    let c = check(state, input).await?;
    let hash = request_hash(&c);
    let lock = format!("mmt-ar-{}-{}", c.pid, c.encounter.unwrap_or_default());
    let mut held = Held::take(&state.pool, lock, advisory_lock::WRITE_WAIT_SECS).await?;
    let mut posted =
        Err(BillingError::Conflict("OpenEMR kept posting to this visit at the same time; retry".into()));
    for _ in 0..ATTEMPTS {
        posted = post_holding_lock(held.conn(), caller, &c, &hash).await;
        if !matches!(&posted, Err(BillingError::Storage(e)) if e.is_retryable_conflict()) {
            break;
        }
    }
    held.release().await?;
    let (session_id, replayed) = posted?;
    let mut payment = get_payment(state, session_id).await?;
    payment.replayed = replayed;
    Ok(payment)
}

/// Posts the payment in one transaction on the locked connection; a key seen before returns
/// that payment instead (`true`).
async fn post_holding_lock(
    conn: &mut MySqlConnection,
    caller: &Caller,
    c: &Checked,
    hash: &[u8; 32],
) -> Result<(i64, bool)> {
    let mut tx = sqlx::Connection::begin(conn).await?;
    if let Some(key) = &c.key
        && let Some(earlier) = records::by_key(&mut tx, caller.user_id.0, key).await?
    {
        if earlier.request_hash.as_deref() != Some(&hash[..]) {
            return Err(BillingError::Conflict(
                "this Idempotency-Key was used for a different payment; use a new key".into(),
            ));
        }
        return Ok((i64::from(earlier.session_id), true));
    }
    let now = wall_clock_now();
    let session = NewSession {
        patient_id: c.pid,
        user_id: caller.user_id.0,
        reference: &c.reference,
        pay_total: c.amount,
        description: &c.description,
        adjustment_code: c.kind.adjustment_code(),
        payment_method: &c.method,
        now,
    };
    let session_id = ar::insert_session(&mut tx, &session).await?;
    let receipt_id = ar::insert_receipt(&mut tx, &receipt(c, &caller.username, now)).await?;
    if let Some(encounter) = c.encounter {
        post_lines(&mut tx, caller, c, encounter, session_id, now).await?;
    }
    let record = NewRecord {
        session_id,
        pid: c.pid,
        encounter: c.encounter.unwrap_or_default(),
        kind: c.kind.as_str(),
        refund_of: None,
        receipt_id: Some(receipt_id),
        posted_by: Some(caller.user_id.0),
        key: c.key.as_deref(),
        request_hash: Some(&hash[..]),
        now,
    };
    records::insert(&mut tx, &record).await?;
    let invoice = c.encounter.map_or_else(|| "the account".to_string(), |e| format!("invoice {}-{e}", c.pid));
    let comments = format!(
        "mmt-sidecar posted payment {session_id} ({}, {} {}) to {invoice}",
        c.kind.as_str(),
        c.amount,
        c.method
    );
    audit_log::record(&mut tx, &entry(caller, "patient-record-insert", c.pid, comments)).await?;
    tx.commit().await?;
    Ok((session_id, false))
}

/// `frontPayment()`: money for a visit dated today is `amount1`, anything else `amount2`.
fn receipt<'a>(c: &'a Checked, username: &'a str, at: NaiveDateTime) -> Receipt<'a> {
    let today = c.encounter_date.is_some_and(|d| d.date() == at.date());
    let (today, earlier) = if today { (c.amount, Decimal::ZERO) } else { (Decimal::ZERO, c.amount) };
    Receipt {
        pid: c.pid,
        encounter: c.encounter.unwrap_or_default(),
        at,
        username,
        method: &c.method,
        source: &c.reference,
        today,
        earlier,
    }
}

/// The payment's lines: a copay against the visit's first fee line, an invoice payment spread over
/// what each fee line still owes.
async fn post_lines(
    tx: &mut MySqlConnection,
    caller: &Caller,
    c: &Checked,
    encounter: i64,
    session_id: i64,
    now: NaiveDateTime,
) -> Result<(), StorageError> {
    let owed: Vec<FeeLine> = ar::owed(tx, c.pid, encounter)
        .await?
        .into_iter()
        .map(|o| FeeLine {
            code_type: o.code_type,
            code: o.code,
            modifier: o.modifier,
            fee: o.fee,
            paid: o.paid,
            adjusted: o.adjusted,
        })
        .collect();
    let shares = match c.kind {
        PaymentKind::Copay => {
            vec![payment::Share { line: (!owed.is_empty()).then_some(0), amount: c.amount }]
        }
        _ => payment::distribute(c.amount, ar::copays(tx, c.pid, encounter).await?, &owed),
    };
    for share in shares {
        let line = share.line.and_then(|i| owed.get(i));
        let sequence_no = ar::next_sequence(tx, c.pid, encounter).await?;
        let activity = NewActivity {
            pid: c.pid,
            encounter,
            sequence_no,
            code_type: line.map_or("", |l| l.code_type.as_str()),
            code: line.map_or("", |l| l.code.as_str()),
            modifier: line.map_or("", |l| l.modifier.as_str()),
            post_user: caller.user_id.0,
            session_id,
            pay_amount: share.amount,
            account_code: c.kind.account_code(),
            memo: "",
            now,
        };
        ar::insert_activity(tx, &activity).await?;
    }
    Ok(())
}

fn kind_of(session: &SessionRow, record: Option<&PaymentRecord>) -> PaymentKind {
    match record.and_then(|r| PaymentKind::parse(&r.kind)) {
        Some(kind) => kind,
        None if session.pay_total.is_sign_negative() => PaymentKind::Refund,
        None if session.adjustment_code == "pre_payment" => PaymentKind::PrePayment,
        None if session.description.as_deref() == Some("COPAY") => PaymentKind::Copay,
        None => PaymentKind::InvoiceBalance,
    }
}

pub(super) async fn get_payment(state: &AppState, id: i64) -> Result<Payment> {
    let mut conn = state.pool.acquire().await?;
    let session = ar::session(&mut conn, id)
        .await?
        .ok_or_else(|| BillingError::NotFound(format!("no payment {id}")))?;
    let lines = ar::for_session(&mut conn, id).await?;
    let record = records::get(&mut conn, id, false).await?;
    let refunded = records::refunded(&mut conn, id).await?;
    let voided = record.as_ref().is_some_and(|r| r.voided_at.is_some());
    let encounter = lines
        .first()
        .map(|l| i64::from(l.encounter))
        .or_else(|| record.as_ref().map(|r| i64::from(r.encounter)).filter(|e| *e != 0));
    Ok(Payment {
        kind: kind_of(&session, record.as_ref()),
        session,
        encounter,
        state: if voided { PaymentState::Voided } else { PaymentState::Posted },
        lines,
        record,
        refunded,
        replayed: false,
    })
}

pub async fn get(state: &AppState, caller: &Caller, id: i64) -> Result<Payment> {
    let payment = get_payment(state, id).await?;
    let pid = payment.session.patient_id;
    require_reader(state, caller, Some(pid)).await?;
    let comments = format!("mmt-sidecar read payment {id}");
    crate::service::audit::record(state, &entry(caller, "patient-record-select", pid, comments)).await?;
    Ok(payment)
}

/// Voids a payment as OpenEMR does: its lines stay, stamped `deleted`, so the invoice owes again;
/// the receipt row goes. Once only.
pub async fn void(state: &AppState, caller: &Caller, id: i64, reason: Option<String>) -> Result<Payment> {
    let payment = get_payment(state, id).await?;
    let pid = payment.session.patient_id;
    permission::require_on(state, caller, Aco::ACCT_BILL, AclLevel::Write, pid).await?;
    let mut issues = Issues::default();
    let reason = reason.map(|r| issues.text("reason", &r, 1, 255));
    issues.into_result(())?;
    let now = wall_clock_now();
    let mut tx = state.pool.begin().await?;
    if records::get(&mut tx, id, true).await?.is_none() {
        let record = NewRecord {
            session_id: id,
            pid,
            encounter: payment.encounter.unwrap_or_default(),
            kind: payment.kind.as_str(),
            refund_of: None,
            receipt_id: None,
            posted_by: None,
            key: None,
            request_hash: None,
            now,
        };
        records::insert(&mut tx, &record).await?;
    }
    let record = records::get(&mut tx, id, true)
        .await?
        .ok_or_else(|| BillingError::NotFound(format!("no payment {id}")))?;
    let current = if record.voided_at.is_some() { PaymentState::Voided } else { PaymentState::Posted };
    current.void().map_err(|why| BillingError::Conflict(why.into()))?;
    if !records::refunds_of(&mut tx, id).await?.is_empty() {
        return Err(BillingError::Conflict(
            "part of this payment was refunded; void its refunds first".into(),
        ));
    }
    ar::void_lines(&mut tx, id, now).await?;
    if let Some(receipt) = record.receipt_id {
        ar::delete_receipt(&mut tx, receipt).await?;
    }
    records::void(&mut tx, id, caller.user_id.0, reason.as_deref(), now).await?;
    let comments =
        format!("mmt-sidecar voided payment {id}{}", reason.map(|r| format!(": {r}")).unwrap_or_default());
    audit_log::record(&mut tx, &entry(caller, "patient-record-update", pid, comments)).await?;
    tx.commit().await?;
    get_payment(state, id).await
}
