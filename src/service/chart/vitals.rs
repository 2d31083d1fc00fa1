//! Vitals: recorded into an encounter as OpenEMR's vitals form records them, under the
//! encounter's access rules (`encounters|notes` or `notes_a`, plus its sensitivity).

use std::collections::BTreeMap;

use chrono::NaiveDateTime;
use serde_json::json;

use crate::{
    app::AppState,
    domain::{
        acl::AclLevel,
        audit::AuditEntry,
        chart::vitals::{self, Measure, Measurements, UnitSystem},
        encounter::parse_when,
        patient::Pid,
        user::{Caller, UserId},
        validation::Issues,
        webhook::ChangeEvent,
    },
    service::{
        audit,
        encounters::{require_access, scope},
        webhooks::{self, Change},
    },
    storage::{
        StorageError,
        openemr::{
            audit_log,
            chart::{
                list_options,
                vitals::{self as store, Author, Interpretation, VitalsRow, VitalsValues},
            },
            encounters::{self, EncounterRow},
            globals, users,
        },
    },
};

use super::ChartError;

type Result<T, E = ChartError> = std::result::Result<T, E>;

/// A vitals body as the client sent it; values are in `units`.
#[derive(Default)]
pub struct VitalsInput {
    pub units: Option<String>,
    pub date: Option<String>,
    pub values: Vec<(Measure, f64)>,
    pub temp_method: Option<String>,
    pub note: Option<String>,
    /// Column → `vitals-interpretation` option id; an empty id clears it.
    pub interpretations: BTreeMap<String, String>,
}

/// One stored reading and its interpretations (column → (option id, title)).
pub struct Reading {
    pub row: VitalsRow,
    pub interpretations: BTreeMap<String, (String, String)>,
}

fn entry(caller: &Caller, event: &str, category: &str, pid: i64, comments: String) -> AuditEntry {
    AuditEntry::phi(caller, event, category, Some(pid), comments)
}

/// The unit system of answers: the caller's choice, else OpenEMR's `units_of_measurement`.
pub async fn answer_units(state: &AppState, requested: Option<&str>) -> Result<UnitSystem> {
    if let Some(raw) = requested {
        return UnitSystem::parse(raw).ok_or_else(|| {
            let mut issues = Issues::default();
            issues.add("units", "must be us or metric");
            issues.into()
        });
    }
    let global = globals::value(&state.pool, "units_of_measurement").await?;
    Ok(UnitSystem::from_global(global.as_deref()))
}

async fn encounter(state: &AppState, caller: &Caller, number: i64, level: AclLevel) -> Result<EncounterRow> {
    let row = encounters::get(&state.pool, number)
        .await?
        .ok_or_else(|| ChartError::NotFound(format!("no encounter number {number}")))?;
    require_access(state, caller, &row, level).await?;
    Ok(row)
}

struct Checked {
    date: Option<NaiveDateTime>,
    given: Measurements,
    temp_method: Option<String>,
    note: Option<String>,
    interpretations: Vec<(String, Option<(String, String)>)>,
}

async fn check(state: &AppState, input: VitalsInput) -> Result<Checked> {
    let mut issues = Issues::default();
    let units = match input.units.as_deref() {
        None => UnitSystem::Us,
        Some(raw) => UnitSystem::parse(raw).unwrap_or_else(|| {
            issues.add("units", "must be us or metric");
            UnitSystem::Us
        }),
    };
    let given = Measurements::from_input(input.values, units, &mut issues);
    let date = input.date.as_deref().and_then(|raw| {
        let parsed = parse_when(raw);
        if parsed.is_none() {
            issues.add("date", "must be YYYY-MM-DD or YYYY-MM-DDTHH:MM[:SS]");
        }
        parsed
    });
    let temp_method = input.temp_method.map(|t| issues.text("temp_method", &t, 0, 255));
    let note = input.note.map(|t| issues.text("note", &t, 0, 255));
    let options = list_options::active(&state.pool, "vitals-interpretation").await?;
    let mut interpretations = Vec::new();
    for (column, option) in input.interpretations {
        let field = format!("interpretations.{column}");
        if !vitals::interpretable(&column) {
            issues.add(&field, "is not a vitals measurement");
        } else if option.is_empty() {
            interpretations.push((column, None));
        } else if let Some(o) = options.iter().find(|o| o.option_id == option) {
            interpretations.push((column, Some((o.option_id.clone(), o.title.clone()))));
        } else {
            let allowed: Vec<_> = options.iter().map(|o| o.option_id.as_str()).collect();
            issues.add(&field, format!("must be one of {}", allowed.join(", ")));
        }
    }
    issues.into_result(Checked { date, given, temp_method, note, interpretations }).map_err(Into::into)
}

async fn author_of(state: &AppState, caller: &Caller) -> Result<bool> {
    Ok(users::by_id(&state.pool, UserId(caller.user_id.0)).await?.is_some_and(|u| u.authorized))
}

async fn write_interpretations(
    conn: &mut sqlx::MySqlConnection,
    form_id: i64,
    list: &[(String, Option<(String, String)>)],
) -> Result<(), StorageError> {
    for (column, option) in list {
        let i = Interpretation {
            column,
            option: option.as_ref().map(|(id, title)| (id.as_str(), title.as_str())),
        };
        store::set_interpretation(conn, form_id, &i).await?;
    }
    Ok(())
}

/// Records a new vitals form into the encounter.
pub async fn record(state: &AppState, caller: &Caller, number: i64, input: VitalsInput) -> Result<Reading> {
    let enc = encounter(state, caller, number, AclLevel::Addonly).await?;
    write(state, caller, enc, input).await
}

/// Records a new vitals form into the encounter OpenEMR knows by `uuid`, which must be the
/// patient's (FHIR names both); nothing about the encounter is told before its rights are checked.
pub async fn record_in(
    state: &AppState,
    caller: &Caller,
    uuid: &[u8; 16],
    pid: Pid,
    input: VitalsInput,
) -> Result<Reading> {
    let unknown = || {
        let mut issues = Issues::default();
        issues.add("encounter", "names no encounter of this patient");
        ChartError::from(issues)
    };
    let number = encounters::number_by_uuid(&state.pool, uuid).await?.ok_or_else(unknown)?;
    let enc = encounter(state, caller, number, AclLevel::Addonly).await?;
    if enc.pid != pid.0 {
        return Err(unknown());
    }
    write(state, caller, enc, input).await
}

async fn write(state: &AppState, caller: &Caller, enc: EncounterRow, input: VitalsInput) -> Result<Reading> {
    let number = enc.encounter;
    let checked = check(state, input).await?;
    if checked.given.0.is_empty() {
        let mut issues = Issues::default();
        issues.add("weight", "at least one measurement is required");
        return Err(issues.into());
    }
    let authorized = author_of(state, caller).await?;
    let author = Author { username: &caller.username, groupname: &caller.auth_group, authorized };
    let values = VitalsValues {
        date: checked.date.unwrap_or_else(crate::service::wall_clock_now),
        measurements: &checked.given,
        temp_method: checked.temp_method.as_deref().unwrap_or_default(),
        note: checked.note.as_deref().unwrap_or_default(),
    };
    let mut tx = state.pool.begin().await?;
    let id = store::insert(&mut tx, Pid(enc.pid), number, &values, &author).await?;
    write_interpretations(&mut tx, id, &checked.interpretations).await?;
    let comments = format!("mmt-sidecar recorded vitals {id} in encounter {number}");
    audit_log::record(&mut tx, &entry(caller, "patient-record-insert", "Vitals", enc.pid, comments.clone()))
        .await?;
    audit_log::record(&mut tx, &entry(caller, "patient-record-insert", "Encounter Form", enc.pid, comments))
        .await?;
    let change = Change {
        event: ChangeEvent::VitalsRecorded,
        pid: Some(enc.pid),
        data: json!({ "vitals": id, "encounter": number }),
    };
    let event = webhooks::record(&mut tx, change).await?;
    tx.commit().await?;
    webhooks::committed(state, event);
    read_one(state, id).await
}

async fn read_one(state: &AppState, id: i64) -> Result<Reading> {
    let row =
        store::get(&state.pool, id).await?.ok_or_else(|| ChartError::NotFound(format!("no vitals {id}")))?;
    Ok(with_interpretations(state, vec![row]).await?.remove(0))
}

async fn with_interpretations(state: &AppState, rows: Vec<VitalsRow>) -> Result<Vec<Reading>> {
    let ids: Vec<i64> = rows.iter().map(|r| r.id).collect();
    let mut found: BTreeMap<i64, BTreeMap<String, (String, String)>> = BTreeMap::new();
    for (form_id, column, option, title) in store::interpretations(&state.pool, &ids).await? {
        found.entry(form_id).or_default().insert(column, (option, title));
    }
    Ok(rows
        .into_iter()
        .map(|row| Reading { interpretations: found.remove(&row.id).unwrap_or_default(), row })
        .collect())
}

fn listed(rows: &[Reading]) -> String {
    rows.iter().map(|r| r.row.id.to_string()).collect::<Vec<_>>().join(",")
}

pub async fn for_encounter(state: &AppState, caller: &Caller, number: i64) -> Result<Vec<Reading>> {
    let enc = encounter(state, caller, number, AclLevel::View).await?;
    let rows = with_interpretations(state, store::for_encounter(&state.pool, number).await?).await?;
    let comments = format!("mmt-sidecar listed vitals of encounter {number}: [{}]", listed(&rows));
    audit::record(state, &entry(caller, "patient-record-select", "Vitals", enc.pid, comments)).await?;
    Ok(rows)
}

/// The form and the encounter it belongs to, once the caller may access that encounter.
async fn readable(state: &AppState, caller: &Caller, id: i64, level: AclLevel) -> Result<VitalsRow> {
    let row =
        store::get(&state.pool, id).await?.ok_or_else(|| ChartError::NotFound(format!("no vitals {id}")))?;
    encounter(state, caller, row.encounter, level).await?;
    Ok(row)
}

pub async fn get(state: &AppState, caller: &Caller, id: i64) -> Result<Reading> {
    let row = readable(state, caller, id, AclLevel::View).await?;
    let comments = format!("mmt-sidecar read vitals {id}");
    audit::record(state, &entry(caller, "patient-record-select", "Vitals", row.pid, comments)).await?;
    read_one(state, id).await
}

/// Changes the given measurements (others are kept) and recomputes BMI, as re-saving the form does.
pub async fn update(state: &AppState, caller: &Caller, id: i64, input: VitalsInput) -> Result<Reading> {
    let row = readable(state, caller, id, AclLevel::Write).await?;
    let checked = check(state, input).await?;
    let mut measurements = row.measurements();
    measurements.0.extend(checked.given.0);
    let authorized = author_of(state, caller).await?;
    let author = Author { username: &caller.username, groupname: &caller.auth_group, authorized };
    let values = VitalsValues {
        date: checked.date.or(row.date).unwrap_or_else(crate::service::wall_clock_now),
        measurements: &measurements,
        temp_method: checked.temp_method.as_deref().or(row.temp_method.as_deref()).unwrap_or_default(),
        note: checked.note.as_deref().or(row.note.as_deref()).unwrap_or_default(),
    };
    let mut tx = state.pool.begin().await?;
    store::update(&mut tx, id, &values, &author).await?;
    write_interpretations(&mut tx, id, &checked.interpretations).await?;
    let comments = format!("mmt-sidecar updated vitals {id}");
    audit_log::record(&mut tx, &entry(caller, "patient-record-update", "Vitals", row.pid, comments)).await?;
    let change = Change {
        event: ChangeEvent::VitalsUpdated,
        pid: Some(row.pid),
        data: json!({ "vitals": id, "encounter": row.encounter }),
    };
    let event = webhooks::record(&mut tx, change).await?;
    tx.commit().await?;
    webhooks::committed(state, event);
    read_one(state, id).await
}

/// Readings of one patient over time, from encounters the caller may see.
pub async fn trend(
    state: &AppState,
    caller: &Caller,
    pid: Pid,
    from: Option<String>,
    to: Option<String>,
) -> Result<Vec<Reading>> {
    let scope = scope(state, caller, AclLevel::View).await?;
    crate::service::permission::reach(state, caller, pid.0).await?;
    let mut issues = Issues::default();
    let mut when = |field: &str, raw: Option<String>| {
        raw.and_then(|r| {
            let parsed = parse_when(&r);
            if parsed.is_none() {
                issues.add(field, "must be YYYY-MM-DD or YYYY-MM-DDTHH:MM[:SS]");
            }
            parsed
        })
    };
    let (from, to) = (when("from", from), when("to", to));
    issues.into_result(())?;
    if crate::storage::openemr::patients::get(&state.pool, pid).await?.is_none() {
        return Err(ChartError::NotFound(format!("no patient with pid {pid}")));
    }
    let rows = store::trend(&state.pool, pid, &scope, from, to, TREND_LIMIT).await?;
    let rows = with_interpretations(state, rows).await?;
    let comments = format!("mmt-sidecar read the vitals trend of pid {pid}: [{}]", listed(&rows));
    audit::record(state, &entry(caller, "patient-record-select", "Vitals", pid.0, comments)).await?;
    Ok(rows)
}

/// The Observation ids of these readings, by form id: each LOINC code with its uuid.
pub async fn observation_ids<'a>(
    state: &AppState,
    rows: impl IntoIterator<Item = &'a VitalsRow>,
) -> Result<BTreeMap<i64, BTreeMap<String, [u8; 16]>>> {
    let by_form: BTreeMap<Vec<u8>, i64> =
        rows.into_iter().filter_map(|r| Some((r.uuid.clone()?, r.id))).collect();
    let forms: Vec<Vec<u8>> = by_form.keys().cloned().collect();
    let mut found: BTreeMap<i64, BTreeMap<String, [u8; 16]>> = BTreeMap::new();
    for (target, path, uuid) in store::observation_ids(&state.pool, &forms).await? {
        let (Some(id), Some(code), Ok(uuid)) =
            (by_form.get(&target), vitals::code_of_resource_path(&path), <[u8; 16]>::try_from(uuid))
        else {
            continue;
        };
        found.entry(*id).or_default().insert(code.to_string(), uuid);
    }
    Ok(found)
}

/// The reading behind an Observation uuid, and that Observation's LOINC code; audited as a read.
pub async fn observation(state: &AppState, caller: &Caller, uuid: &[u8; 16]) -> Result<(Reading, String)> {
    let missing = || ChartError::NotFound("no observation with this id".into());
    let (id, path) = store::observation_target(&state.pool, uuid).await?.ok_or_else(missing)?;
    let code = vitals::code_of_resource_path(&path).ok_or_else(missing)?.to_string();
    Ok((get(state, caller, id).await?, code))
}

/// Enough for years of readings; a longer history is read in date windows.
pub const TREND_LIMIT: u32 = 2000;
