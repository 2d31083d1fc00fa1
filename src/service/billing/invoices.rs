//! The encounter as an invoice (number `pid-encounter`), added up exactly as OpenEMR's
//! `InvoiceSummary` adds it, so the sidecar's balances are the ones OpenEMR's screens show. Read
//! with `acct|bill` or `acct|rep_a`, as OpenEMR's billing reports are.

use chrono::{NaiveDate, NaiveDateTime};

use super::{BillingError, entry, require_reader};
use crate::{
    app::AppState,
    domain::{
        audit::AuditEntry,
        billing::invoice::{self, ActivityLine, ChargeLine, CodeBalance, InvoiceStatus, SaleLine, Totals},
        user::Caller,
        validation::Issues,
    },
    service::{audit, patient_access},
    storage::{
        StorageError,
        openemr::{
            billing::{
                ar::{self, ActivityRow},
                charges::{self, ChargeRow},
                invoices::{self as store, InvoiceFilter, InvoiceRow, Owing},
            },
            encounters,
        },
    },
};

type Result<T, E = BillingError> = std::result::Result<T, E>;

pub struct Invoice {
    pub pid: i64,
    pub encounter: i64,
    pub date: Option<NaiveDateTime>,
    /// The facility of the visit, as its encounter names it.
    pub facility: Option<String>,
    pub charges: Vec<ChargeRow>,
    pub activity: Vec<ActivityRow>,
    pub codes: Vec<CodeBalance>,
    pub totals: Totals,
}

pub struct InvoiceQuery {
    pub patient: Option<i64>,
    pub status: Option<String>,
    pub from: Option<String>,
    pub to: Option<String>,
}

pub struct InvoicePage {
    pub rows: Vec<(InvoiceRow, Totals)>,
    pub total: i64,
}

pub async fn get(state: &AppState, caller: &Caller, pid: i64, number: i64) -> Result<Invoice> {
    require_reader(state, caller, Some(pid)).await?;
    // Independent reads, each on its own connection, so the invoice costs one round trip's wait.
    let lines = async {
        let mut conn = state.pool.acquire().await.map_err(StorageError::from_sqlx)?;
        charges::for_encounter(&mut conn, pid, number).await
    };
    let (e, lines, sales, activity) = tokio::try_join!(
        encounters::get_of(&state.pool, pid, number),
        lines,
        store::sales(&state.pool, pid, number),
        ar::for_encounter(&state.pool, pid, number),
    )?;
    let e = e
        .filter(|e| e.pid == pid)
        .ok_or_else(|| BillingError::NotFound(format!("no invoice {pid}-{number}")))?;
    let charges: Vec<ChargeRow> = lines.into_iter().filter(|l| l.fee.is_some_and(|f| !f.is_zero())).collect();
    let codes = invoice::summarize(
        &charges.iter().map(charge_line).collect::<Vec<_>>(),
        &sales.iter().map(|s| SaleLine { drug_id: i64::from(s.drug_id), fee: s.fee }).collect::<Vec<_>>(),
        &activity.iter().map(activity_line).collect::<Vec<_>>(),
    );
    let totals = Totals::of(&codes);
    let comments = format!("mmt-sidecar read invoice {pid}-{number}");
    audit::record(state, &entry(caller, "patient-record-select", pid, comments)).await?;
    Ok(Invoice {
        pid,
        encounter: number,
        date: e.date,
        facility: e.facility,
        charges,
        activity,
        codes,
        totals,
    })
}

fn charge_line(row: &ChargeRow) -> ChargeLine {
    ChargeLine {
        code_type: row.code_type.clone().unwrap_or_default(),
        code: row.code.clone().unwrap_or_default(),
        modifier: row.modifier.clone().unwrap_or_default(),
        code_text: row.code_text.clone().unwrap_or_default(),
        fee: row.fee.unwrap_or_default(),
    }
}

fn activity_line(row: &ActivityRow) -> ActivityLine {
    ActivityLine {
        code: row.code.clone(),
        modifier: row.modifier.clone(),
        account_code: row.account_code.clone(),
        pay_amount: row.pay_amount,
        adj_amount: row.adj_amount,
    }
}

struct Checked {
    owing: Option<Owing>,
    from: Option<NaiveDate>,
    to: Option<NaiveDate>,
}

fn checked(q: &InvoiceQuery) -> Result<Checked> {
    let mut issues = Issues::default();
    let owing = q.status.as_deref().and_then(|raw| match InvoiceStatus::parse(raw) {
        Some(InvoiceStatus::Open) => Some(Owing::Open),
        Some(InvoiceStatus::Paid) => Some(Owing::Settled),
        None => {
            issues.add("status", "must be open or paid");
            None
        }
    });
    let from = issues.optional_date("from", q.from.clone());
    let to = issues.optional_date("to", q.to.clone());
    if let (Some(from), Some(to)) = (from, to)
        && to < from
    {
        issues.add("to", "must not be before from");
    }
    Ok(issues.into_result(Checked { owing, from, to })?)
}

/// Invoices newest first with their totals; `patient` narrows to one patient's account. Under the
/// assigned-patient policy only the caller's patients are listed, and counted.
pub async fn list(
    state: &AppState,
    caller: &Caller,
    q: InvoiceQuery,
    limit: u32,
    offset: u64,
) -> Result<InvoicePage> {
    require_reader(state, caller, q.patient).await?;
    let c = checked(&q)?;
    let reach = match q.patient {
        Some(_) => None,
        None => patient_access::list_filter(state, caller).await?,
    };
    let filter =
        InvoiceFilter { pid: q.patient, from: c.from, to: c.to, owing: c.owing, reach: reach.as_ref() };
    let total = store::count(&state.pool, &filter).await?;
    let rows = store::list(&state.pool, &filter, limit, offset).await?;
    let numbers: Vec<String> = rows.iter().map(|r| format!("{}-{}", r.pid, r.encounter)).collect();
    let comments = format!("mmt-sidecar listed invoices: [{}]", numbers.join(","));
    let listing = AuditEntry::phi(caller, "patient-record-select", "Billing", q.patient, comments);
    audit::record(state, &listing).await?;
    let rows = rows
        .into_iter()
        .map(|r| {
            let totals = Totals::new(r.charges, r.payments, r.adjustments);
            (r, totals)
        })
        .collect();
    Ok(InvoicePage { rows, total })
}
