//! The practice's visit prices: set by administrators, quoted for a patient and a visit category
//! (new or returning patient) when a booking needs payment.

use rust_decimal::Decimal;

use super::BillingError;
use crate::{
    app::AppState,
    domain::{
        acl::{AclLevel, Aco},
        audit::AuditEntry,
        billing::{
            money,
            pricing::{self, PatientKind, PriceRule},
        },
        patient::Pid,
        scheduling::status::Phase,
        user::Caller,
        validation::Issues,
    },
    service::{audit, permission, scheduling::Statuses, wall_clock_now},
    storage::{
        mmt::visit_prices::{self as store, PriceRow},
        openemr::{patients, scheduling::categories},
    },
};

type Result<T, E = BillingError> = std::result::Result<T, E>;

pub struct PriceInput {
    pub category_id: Option<i64>,
    pub patient_kind: String,
    pub amount: Decimal,
}

pub struct Quote {
    pub pid: i64,
    pub category_id: i64,
    pub patient_kind: PatientKind,
    /// None: no rule prices this visit.
    pub rule: Option<PriceRule>,
}

fn rule_of(row: &PriceRow) -> Option<PriceRule> {
    Some(PriceRule {
        category_id: (row.category_id != 0).then_some(i64::from(row.category_id)),
        kind: PatientKind::parse(&row.patient_kind)?,
        amount: row.amount,
    })
}

/// The rules; anyone who may take payments or administer may read them.
pub async fn rules(state: &AppState, caller: &Caller) -> Result<Vec<PriceRow>> {
    permission::require(state, caller, Aco::ACCT_BILL, AclLevel::View).await?;
    Ok(store::all(&state.pool).await?)
}

/// Replaces the whole price list; administrators only (`admin|super`).
pub async fn replace(state: &AppState, caller: &Caller, inputs: Vec<PriceInput>) -> Result<Vec<PriceRow>> {
    permission::require(state, caller, Aco::ADMIN_SUPER, AclLevel::Write).await?;
    let known = categories::all(&state.pool).await?;
    let mut issues = Issues::default();
    let mut rules = Vec::new();
    for (i, input) in inputs.into_iter().enumerate() {
        let kind = PatientKind::parse(&input.patient_kind);
        if kind.is_none() {
            issues.add(&format!("rules[{i}].patient_kind"), "must be new or returning");
        }
        let amount = money(&mut issues, &format!("rules[{i}].amount"), input.amount, true);
        if let Some(id) = input.category_id
            && !known.iter().any(|c| i64::from(c.pc_catid) == id && c.pc_cattype == categories::PATIENT)
        {
            issues.add(&format!("rules[{i}].category_id"), format!("{id} is not a patient visit category"));
        }
        if let Some(kind) = kind {
            rules.push((i, PriceRule { category_id: input.category_id, kind, amount }));
        }
    }
    pricing::check_unique(&mut issues, &rules);
    issues.into_result(())?;
    let rows: Vec<(i64, &str, Decimal)> =
        rules.iter().map(|(_, r)| (r.category_id.unwrap_or(0), r.kind.as_str(), r.amount)).collect();
    let mut tx = state.pool.begin().await?;
    store::replace(&mut tx, &rows, caller.user_id.0, wall_clock_now()).await?;
    tx.commit().await?;
    let comments = format!("mmt-sidecar set {} visit price rules", rows.len());
    audit::record(state, &AuditEntry::phi(caller, "other", "Billing", None, comments)).await?;
    Ok(store::all(&state.pool).await?)
}

/// What this patient pays for a visit of this category: returning once they have had a visit
/// (an encounter, or a fulfilled appointment) or missed one (a no-show).
pub async fn quote(state: &AppState, caller: &Caller, pid: i64, category_id: i64) -> Result<Quote> {
    permission::require_on(state, caller, Aco::PATIENTS_APPT, AclLevel::View, pid).await?;
    if patients::get(&state.pool, Pid(pid)).await?.is_none() {
        return Err(BillingError::NotFound(format!("no patient with pid {pid}")));
    }
    let (patient_kind, rule) = price(state, pid, category_id).await?;
    // Whether the patient has been seen before is read from their chart.
    let comments =
        format!("mmt-sidecar quoted a category {category_id} visit for pid {pid}: {}", patient_kind.as_str());
    audit::record(state, &AuditEntry::phi(caller, "patient-record-select", "Billing", Some(pid), comments))
        .await?;
    Ok(Quote { pid, category_id, patient_kind, rule })
}

/// The patient's kind and the rule pricing their visit of this category; the caller audits the
/// chart read it takes.
pub(super) async fn price(
    state: &AppState,
    pid: i64,
    category_id: i64,
) -> Result<(PatientKind, Option<PriceRule>)> {
    let (statuses, visited) = store::history(&state.pool, pid, wall_clock_now()).await?;
    let known = Statuses::load(state).await?;
    let returning =
        visited || statuses.iter().any(|s| matches!(known.phase(s), Phase::Fulfilled | Phase::NoShow));
    let patient_kind = if returning { PatientKind::Returning } else { PatientKind::New };
    let rules: Vec<PriceRule> = store::all(&state.pool).await?.iter().filter_map(rule_of).collect();
    Ok((patient_kind, pricing::pick(&rules, category_id, patient_kind).cloned()))
}
