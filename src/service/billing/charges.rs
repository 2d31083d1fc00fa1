//! Charges on an encounter's fee sheet, under OpenEMR's coding permission (`encounters|coding`
//! for the caller's own encounters, `coding_a` for anyone's). Prices come from the catalogue at
//! the patient's price level; only `acct|disc` or `acct|bill` may name another price, as OpenEMR's
//! `pricesAuthorized()` allows. Every write carries the visit's fee-sheet checksum forward, so a
//! fee sheet open in OpenEMR refuses its stale save and a client's stale `If-Match` gets a 412.

use rust_decimal::Decimal;
use sqlx::MySqlConnection;

use super::{BillingError, entry};
use crate::{
    app::AppState,
    domain::{
        acl::{AclLevel, Aco},
        billing::{
            MAX_MONEY,
            charge::{self, LineState},
            money,
        },
        user::Caller,
        validation::Issues,
    },
    service::{audit, permission, wall_clock_now},
    storage::{
        advisory_lock,
        openemr::{
            audit_log,
            billing::{
                charges::{self as store, ChargeChange, ChargeRow, NewCharge},
                codes::{self, CodeType},
            },
            encounters::{self, EncounterRow},
            providers, users,
        },
    },
};

type Result<T, E = BillingError> = std::result::Result<T, E>;

#[derive(Default)]
pub struct ChargeInput {
    pub code_type: String,
    pub code: String,
    pub modifiers: Vec<String>,
    pub units: Option<i64>,
    pub price: Option<Decimal>,
    pub justify: Vec<String>,
    pub provider_id: Option<i64>,
}

#[derive(Default)]
pub struct ChargeEdit {
    pub modifiers: Option<Vec<String>>,
    pub units: Option<i64>,
    pub price: Option<Decimal>,
    pub justify: Option<Vec<String>>,
    pub provider_id: Option<i64>,
}

/// The visit's live lines and the checksum they add up to.
pub struct VisitCharges {
    pub pid: i64,
    pub encounter: i64,
    pub checksum: u32,
    pub lines: Vec<ChargeRow>,
}

/// One line after a write, with the visit's new checksum.
pub struct Written {
    pub charge: ChargeRow,
    pub checksum: u32,
}

/// OpenEMR's fee-sheet permission for this encounter: `coding_a` reaches every encounter,
/// `coding` the caller's own.
async fn require_coding(state: &AppState, caller: &Caller, e: &EncounterRow, level: AclLevel) -> Result<()> {
    let permissions = state.acl.permissions(&caller.username).await?;
    let own = e.provider_id.map(i64::from) == Some(caller.user_id.0);
    let aco = if own && !permissions.allows(Aco::ENCOUNTERS_CODING_A, level) {
        Aco::ENCOUNTERS_CODING
    } else {
        Aco::ENCOUNTERS_CODING_A
    };
    Ok(permission::require_on(state, caller, aco, level, e.pid).await?)
}

async fn visit(state: &AppState, caller: &Caller, number: i64, level: AclLevel) -> Result<EncounterRow> {
    let e = encounters::get(&state.pool, number)
        .await?
        .ok_or_else(|| BillingError::NotFound(format!("no encounter number {number}")))?;
    require_coding(state, caller, &e, level).await?;
    Ok(e)
}

async fn require_pricing(state: &AppState, caller: &Caller) -> Result<()> {
    let permissions = state.acl.permissions(&caller.username).await?;
    if !permissions.allows(Aco::ACCT_BILL, AclLevel::Write) {
        permission::require(state, caller, Aco::ACCT_DISC, AclLevel::Write).await?;
    }
    Ok(())
}

pub async fn list(state: &AppState, caller: &Caller, number: i64) -> Result<VisitCharges> {
    let e = visit(state, caller, number, AclLevel::View).await?;
    let mut conn = state.pool.acquire().await?;
    let lines = store::for_encounter(&mut conn, e.pid, number).await?;
    let checksum = store::checksum(&mut conn, e.pid, number).await?;
    let ids: Vec<String> = lines.iter().map(|l| l.id.to_string()).collect();
    let comments = format!("mmt-sidecar read charges of encounter {number}: [{}]", ids.join(","));
    audit::record(state, &entry(caller, "patient-record-select", e.pid, comments)).await?;
    Ok(VisitCharges { pid: e.pid, encounter: number, checksum, lines })
}

/// The line's code, looked up in the catalogue: a billable code with its price at the patient's
/// level, or a diagnosis with its description.
struct Coded {
    code_type: CodeType,
    code: String,
    code_text: String,
    price: Decimal,
    pricelevel: String,
}

async fn coded(
    conn: &mut MySqlConnection,
    pid: i64,
    input: &ChargeInput,
    modifier: &str,
    issues: &mut Issues,
    code_type: Option<CodeType>,
) -> Result<Option<Coded>> {
    let code = issues.text("code", &input.code, 1, charge::MAX_CODE_CHARS).to_ascii_uppercase();
    let Some(code_type) = code_type else { return Ok(None) };
    if code.is_empty() {
        return Ok(None);
    }
    if code_type.diagnosis() {
        if !input.modifiers.is_empty()
            || input.units.is_some()
            || input.price.is_some()
            || !input.justify.is_empty()
        {
            issues.add("code_type", "a diagnosis line takes no modifiers, units, price or justification");
        }
        let text = if code_type.ct_key == "ICD10" { codes::icd10(conn, &code).await? } else { None };
        return Ok(match text {
            Some(code_text) => {
                Some(Coded { code_type, code, code_text, price: Decimal::ZERO, pricelevel: String::new() })
            }
            None => {
                issues.add("code", format!("{code} is not a {} code valid for coding", code_type.ct_key));
                None
            }
        });
    }
    let level = codes::price_level(conn, pid).await?;
    match codes::fee_code(conn, code_type.ct_id, &code, modifier, &level).await? {
        Some(found) => Ok(Some(Coded {
            code,
            code_text: found.code_text.unwrap_or_default(),
            price: found.price.unwrap_or_default(),
            // As OpenEMR (sql_mode '') stores a longer level: cut to the column.
            pricelevel: level.chars().take(charge::MAX_PRICE_LEVEL_CHARS).collect(),
            code_type,
        })),
        None => {
            issues.add(
                "code",
                format!("{code} is not an active {} code in the fee schedule", code_type.ct_key),
            );
            Ok(None)
        }
    }
}

async fn checked_provider(state: &AppState, issues: &mut Issues, id: Option<i64>) -> Result<Option<i32>> {
    let Some(id) = id else { return Ok(None) };
    if providers::get(&state.pool, id).await?.is_none() {
        issues.add("provider_id", format!("user {id} is not an active, authorized provider"));
    }
    Ok(i32::try_from(id).ok())
}

/// A line's total (nothing for a diagnosis), which must fit `billing.fee`.
fn line_fee(diagnosis: bool, unit_price: Decimal, units: i32) -> Result<Decimal> {
    let fee = if diagnosis { Decimal::ZERO } else { charge::fee(unit_price, units) };
    if fee > MAX_MONEY {
        let mut issues = Issues::default();
        issues.add("units", format!("price × units is {fee}, more than a fee can be ({MAX_MONEY})"));
        return Err(issues.into());
    }
    Ok(fee)
}

/// The diagnoses `justify` names must be live lines of the justifying code type on the visit,
/// each named once, and fit OpenEMR's `justify` column.
fn check_justification(issues: &mut Issues, lines: &[ChargeRow], just_type: &str, codes: &[String]) {
    if charge::justify(just_type, codes).len() > charge::MAX_JUSTIFY_CHARS {
        issues.add(
            "justify",
            format!(
                "names more diagnoses than OpenEMR's justify column holds ({} characters)",
                charge::MAX_JUSTIFY_CHARS
            ),
        );
        return;
    }
    for (i, code) in codes.iter().enumerate() {
        if codes[..i].iter().any(|c| c.eq_ignore_ascii_case(code)) {
            issues.add(&format!("justify[{i}]"), format!("{code} is already named"));
            continue;
        }
        let on_visit = lines.iter().any(|l| {
            l.code_type.as_deref() == Some(just_type)
                && l.code.as_deref().is_some_and(|c| c.eq_ignore_ascii_case(code))
        });
        if !on_visit {
            issues.add(
                &format!("justify[{i}]"),
                format!("{code} is not a {just_type} diagnosis on this encounter; add it first"),
            );
        }
    }
}

/// A write to one visit's lines: queued in the process, then under the encounter's row lock,
/// with the client's `If-Match` checked against the checksum inside the lock.
async fn locked_visit(
    state: &AppState,
    e: &EncounterRow,
    if_match: Option<u32>,
) -> Result<(advisory_lock::Turn, sqlx::Transaction<'static, sqlx::MySql>)> {
    let turn = advisory_lock::turn(
        &state.pool,
        &format!("mmt-visit-{}", e.encounter),
        advisory_lock::WRITE_WAIT_SECS,
    )
    .await?;
    let mut tx = state.pool.begin().await?;
    store::lock_visit(&mut tx, e.encounter).await?;
    if let Some(expected) = if_match {
        let now = store::checksum(&mut tx, e.pid, e.encounter).await?;
        if now != expected {
            return Err(BillingError::Stale(format!(
                "the charges of encounter {} changed since version {expected} was read (now {now}); read them again",
                e.encounter
            )));
        }
    }
    Ok((turn, tx))
}

pub async fn add(
    state: &AppState,
    caller: &Caller,
    number: i64,
    input: ChargeInput,
    if_match: Option<u32>,
) -> Result<Written> {
    let e = visit(state, caller, number, AclLevel::Write).await?;
    let mut issues = Issues::default();
    let modifier = charge::modifier(&mut issues, &input.modifiers);
    let units = charge::units(&mut issues, input.units);
    let price = input.price.map(|p| money(&mut issues, "price", p, true));
    let code_type = codes::code_type(&state.pool, input.code_type.trim()).await?;
    match &code_type {
        Some(ct) if ct.billable() || ct.diagnosis() => {}
        Some(ct) => {
            issues.add("code_type", format!("{} is neither a billable nor a diagnosis code type", ct.ct_key))
        }
        None => issues.add("code_type", "must be an active code type such as CPT4, HCPCS or ICD10"),
    }
    let code_type = code_type.filter(|ct| ct.billable() || ct.diagnosis());
    let provider_id = checked_provider(state, &mut issues, input.provider_id).await?;
    if price.is_some() {
        require_pricing(state, caller).await?;
    }
    let authorized = users::by_id(&state.pool, caller.user_id).await?.is_some_and(|u| u.authorized);
    let (turn, mut tx) = locked_visit(state, &e, if_match).await?;
    let found = coded(&mut tx, e.pid, &input, &modifier, &mut issues, code_type).await?;
    if let Some(c) = &found
        && !c.code_type.ct_just.is_empty()
    {
        let lines = store::for_encounter(&mut tx, e.pid, number).await?;
        check_justification(&mut issues, &lines, &c.code_type.ct_just, &input.justify);
    }
    let Some(c) = issues.into_result(found)? else {
        let mut issues = Issues::default();
        issues.add("code", "is required");
        return Err(issues.into());
    };
    let fee = line_fee(c.code_type.diagnosis(), price.unwrap_or(c.price), units)?;
    let justify = charge::justify(&c.code_type.ct_just, &input.justify);
    let new = NewCharge {
        pid: e.pid,
        encounter: number,
        code_type: &c.code_type.ct_key,
        code: &c.code,
        code_text: &c.code_text,
        modifier: &modifier,
        units,
        fee,
        justify: &justify,
        pricelevel: &c.pricelevel,
        provider_id: provider_id.or(e.provider_id),
        user_id: caller.user_id.0,
        groupname: &caller.auth_group,
        authorized,
        now: wall_clock_now(),
    };
    let id = store::insert(&mut tx, &new).await?;
    let comments =
        format!("mmt-sidecar added charge {id} ({} {}) to encounter {number}", c.code_type.ct_key, c.code);
    audit_log::record(&mut tx, &entry(caller, "patient-record-insert", e.pid, comments)).await?;
    finish(tx, turn, &e, id).await
}

async fn finish(
    mut tx: sqlx::Transaction<'static, sqlx::MySql>,
    turn: advisory_lock::Turn,
    e: &EncounterRow,
    id: i64,
) -> Result<Written> {
    let charge = store::get(&mut tx, id, false)
        .await?
        .ok_or_else(|| BillingError::NotFound(format!("no charge {id}")))?;
    let checksum = commit(tx, turn, e).await?;
    Ok(Written { charge, checksum })
}

/// Commits a write to the visit's lines and gives its new checksum, read before the lock goes.
async fn commit(
    mut tx: sqlx::Transaction<'static, sqlx::MySql>,
    turn: advisory_lock::Turn,
    e: &EncounterRow,
) -> Result<u32> {
    let checksum = store::checksum(&mut tx, e.pid, e.encounter).await?;
    tx.commit().await?;
    drop(turn);
    Ok(checksum)
}

/// The line, its encounter, and that the caller may code it at `level`.
async fn line(
    state: &AppState,
    caller: &Caller,
    id: i64,
    level: AclLevel,
) -> Result<(ChargeRow, EncounterRow)> {
    let mut conn = state.pool.acquire().await?;
    let row = store::get(&mut conn, id, false)
        .await?
        .ok_or_else(|| BillingError::NotFound(format!("no charge {id}")))?;
    drop(conn);
    let number = row.encounter.map(i64::from).unwrap_or_default();
    let e = visit(state, caller, number, level).await?;
    Ok((row, e))
}

/// One line, with its visit's checksum.
pub async fn get(state: &AppState, caller: &Caller, id: i64) -> Result<Written> {
    let (charge, e) = line(state, caller, id, AclLevel::View).await?;
    let checksum = store::checksum(&mut *state.pool.acquire().await?, e.pid, e.encounter).await?;
    let comments = format!("mmt-sidecar read charge {id} of encounter {}", e.encounter);
    audit::record(state, &entry(caller, "patient-record-select", e.pid, comments)).await?;
    Ok(Written { charge, checksum })
}

fn refuse_unless_open(row: &ChargeRow) -> Result<()> {
    let state = LineState::of(row.billed == Some(1), row.activity == Some(1));
    match state.refuses_change(i64::from(row.id)) {
        Some(why) => Err(BillingError::Conflict(why)),
        None => Ok(()),
    }
}

pub async fn edit(
    state: &AppState,
    caller: &Caller,
    id: i64,
    edit: ChargeEdit,
    if_match: Option<u32>,
) -> Result<Written> {
    let (row, e) = line(state, caller, id, AclLevel::Write).await?;
    let mut issues = Issues::default();
    let modifier = edit.modifiers.as_ref().map(|m| charge::modifier(&mut issues, m));
    let units = edit.units.map(|u| charge::units(&mut issues, Some(u)));
    let price = edit.price.map(|p| money(&mut issues, "price", p, true));
    let provider_id = checked_provider(state, &mut issues, edit.provider_id).await?;
    if price.is_some() {
        require_pricing(state, caller).await?;
    }
    let (turn, mut tx) = locked_visit(state, &e, if_match).await?;
    let row = store::get(&mut tx, id, true).await?.unwrap_or(row);
    refuse_unless_open(&row)?;
    let code_type = codes::code_type(&state.pool, row.code_type.as_deref().unwrap_or_default()).await?;
    let diagnosis = code_type.as_ref().is_some_and(CodeType::diagnosis);
    if diagnosis && (modifier.is_some() || units.is_some() || price.is_some() || edit.justify.is_some()) {
        issues.add("code_type", "a diagnosis line takes no modifiers, units, price or justification");
    }
    let just_type = code_type.map(|ct| ct.ct_just).unwrap_or_default();
    if let Some(justify) = &edit.justify {
        let lines = store::for_encounter(&mut tx, e.pid, e.encounter).await?;
        check_justification(&mut issues, &lines, &just_type, justify);
    }
    issues.into_result(())?;
    let old_units = row.units.unwrap_or(1).max(1);
    let units = units.unwrap_or(old_units);
    let unit_price = price.unwrap_or_else(|| charge::unit_price(row.fee.unwrap_or_default(), old_units));
    let fee = line_fee(diagnosis, unit_price, units)?;
    let justify = match &edit.justify {
        Some(codes) => charge::justify(&just_type, codes),
        None => row.justify.clone().unwrap_or_default(),
    };
    let change = ChargeChange {
        modifier: modifier.as_deref().unwrap_or(row.modifier.as_deref().unwrap_or_default()),
        units,
        fee,
        justify: &justify,
        provider_id: provider_id.or(row.provider_id),
    };
    if !store::update(&mut tx, id, &change).await? {
        return Err(BillingError::Conflict(format!("charge {id} was billed or deleted meanwhile")));
    }
    let comments = format!("mmt-sidecar changed charge {id} on encounter {}", e.encounter);
    audit_log::record(&mut tx, &entry(caller, "patient-record-update", e.pid, comments)).await?;
    finish(tx, turn, &e, id).await
}

/// Deletes an open line as the fee sheet does (`activity = 0`); returns the visit's new checksum.
pub async fn delete(state: &AppState, caller: &Caller, id: i64, if_match: Option<u32>) -> Result<u32> {
    let (row, e) = line(state, caller, id, AclLevel::Write).await?;
    let (turn, mut tx) = locked_visit(state, &e, if_match).await?;
    let row = store::get(&mut tx, id, true).await?.unwrap_or(row);
    refuse_unless_open(&row)?;
    store::deactivate(&mut tx, id).await?;
    let comments = format!("mmt-sidecar deleted charge {id} from encounter {}", e.encounter);
    audit_log::record(&mut tx, &entry(caller, "patient-record-delete", e.pid, comments)).await?;
    commit(tx, turn, &e).await
}
