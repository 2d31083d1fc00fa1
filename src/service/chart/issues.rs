//! Allergies, problems and medications: read and written under OpenEMR's `patients|med`
//! (view to read, write/addonly to add, write to change), ended and reactivated, never deleted.

use std::collections::BTreeMap;

use chrono::NaiveDateTime;
use serde_json::json;

use crate::{
    app::AppState,
    domain::{
        acl::{AclLevel, Aco},
        audit::AuditEntry,
        chart::issues::{self as rules, IssueType},
        encounter::parse_when,
        patient::Pid,
        user::Caller,
        validation::Issues,
        webhook::ChangeEvent,
    },
    service::{
        audit,
        encounters::require_access,
        permission,
        webhooks::{self, Change},
    },
    storage::openemr::{
        audit_log,
        chart::{
            issues::{self as store, Author, IssueRow, IssueValues, MedicationValues},
            list_options,
        },
        encounters, patients,
    },
};

use super::ChartError;

type Result<T, E = ChartError> = std::result::Result<T, E>;

/// The fields a client may set; `None` leaves a field as it is (on create: empty).
#[derive(Default)]
pub struct IssueInput {
    pub title: Option<String>,
    pub begdate: Option<String>,
    pub enddate: Option<String>,
    pub codes: Option<Vec<String>>,
    pub comments: Option<String>,
    pub outcome: Option<String>,
    pub occurrence: Option<String>,
    pub severity: Option<String>,
    pub reaction: Option<String>,
    pub verification: Option<String>,
    pub encounter: Option<i64>,
    pub dosage_instructions: Option<String>,
    pub usage_category: Option<String>,
    pub request_intent: Option<String>,
}

/// PATCH: end the issue (enddate, default now), reactivate it (clear enddate) or just edit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Ended,
    Active,
}

/// An issue with the encounters it is linked to.
pub struct Issue {
    pub kind: IssueType,
    pub row: IssueRow,
    pub encounters: Vec<i64>,
}

fn entry(caller: &Caller, event: &str, kind: IssueType, pid: i64, comments: String) -> AuditEntry {
    AuditEntry::phi(caller, event, kind.audit_category(), Some(pid), comments)
}

async fn require_patient(state: &AppState, pid: Pid) -> Result<()> {
    match patients::get(&state.pool, pid).await? {
        Some(_) => Ok(()),
        None => Err(ChartError::NotFound(format!("no patient with pid {pid}"))),
    }
}

/// An option of an OpenEMR list, by option id; unknown ones name the allowed values.
async fn option(
    state: &AppState,
    issues: &mut Issues,
    field: &str,
    list_id: &str,
    value: &str,
) -> Result<Option<(String, String)>> {
    let options = list_options::active(&state.pool, list_id).await?;
    match options.iter().find(|o| o.option_id == value.trim()) {
        Some(o) => Ok(Some((o.option_id.clone(), o.title.clone()))),
        None => {
            let allowed: Vec<_> = options.iter().map(|o| o.option_id.as_str()).collect();
            issues.add(field, format!("must be one of {} (OpenEMR list {list_id})", allowed.join(", ")));
            Ok(None)
        }
    }
}

fn when(issues: &mut Issues, field: &str, raw: &str) -> Option<NaiveDateTime> {
    let parsed = parse_when(raw);
    if parsed.is_none() {
        issues.add(field, "must be YYYY-MM-DD or YYYY-MM-DDTHH:MM[:SS]");
    }
    parsed
}

fn only_for(issues: &mut Issues, kind: IssueType, want: IssueType, field: &str, given: bool) {
    if given && kind != want {
        issues.add(field, format!("applies to {} issues only", want.db_type()));
    }
}

/// Applies the input to `base` (the stored values, or empty ones for a new issue).
async fn merge(
    state: &AppState,
    kind: IssueType,
    input: &IssueInput,
    mut v: IssueValues,
    issues: &mut Issues,
) -> Result<IssueValues> {
    if let Some(t) = &input.title {
        v.title = issues.text("title", t, 2, 255);
    }
    if let Some(raw) = &input.begdate {
        v.begdate = when(issues, "begdate", raw);
    }
    if let Some(raw) = &input.enddate {
        v.enddate = when(issues, "enddate", raw);
    }
    if let (Some(b), Some(e)) = (v.begdate, v.enddate)
        && e < b
    {
        issues.add("enddate", "must not be before begdate");
    }
    if let Some(codes) = &input.codes {
        v.diagnosis = rules::diagnosis(kind, codes, issues);
    }
    if let Some(c) = &input.comments {
        v.comments = issues.prose("comments", c, 0, usize::MAX);
        issues.within_bytes("comments", &v.comments, 65_535);
    }
    if let Some(o) = &input.outcome
        && let Some((id, _)) = option(state, issues, "outcome", "outcome", o).await?
    {
        v.outcome = id.parse().unwrap_or_default();
    }
    if let Some(o) = &input.occurrence
        && let Some((id, _)) = option(state, issues, "occurrence", "occurrence", o).await?
    {
        v.occurrence = id.parse().unwrap_or_default();
    }
    only_for(issues, kind, IssueType::Allergy, "severity", input.severity.is_some());
    only_for(issues, kind, IssueType::Allergy, "reaction", input.reaction.is_some());
    only_for(issues, kind, IssueType::Allergy, "verification", input.verification.is_some());
    if kind == IssueType::Allergy {
        if let Some(s) = &input.severity {
            v.severity_al = option(state, issues, "severity", "severity_ccda", s).await?.map(|(id, _)| id);
        }
        if let Some(r) = &input.reaction {
            v.reaction =
                option(state, issues, "reaction", "reaction", r).await?.map(|(id, _)| id).unwrap_or_default();
        }
        if let Some(r) = &input.verification {
            v.verification = option(state, issues, "verification", "allergyintolerance-verification", r)
                .await?
                .map(|(id, _)| id)
                .unwrap_or_default();
        }
    }
    Ok(v)
}

fn empty_values() -> IssueValues {
    IssueValues {
        title: String::new(),
        begdate: None,
        enddate: None,
        diagnosis: String::new(),
        comments: String::new(),
        outcome: 0,
        occurrence: 0,
        reaction: String::new(),
        verification: String::new(),
        severity_al: None,
    }
}

fn stored_values(row: &IssueRow) -> IssueValues {
    IssueValues {
        title: row.title.clone().unwrap_or_default(),
        begdate: row.begdate,
        enddate: row.enddate,
        diagnosis: row.diagnosis.clone().unwrap_or_default(),
        comments: row.comments.clone().unwrap_or_default(),
        outcome: row.outcome,
        occurrence: row.occurrence.unwrap_or_default(),
        reaction: row.reaction.clone(),
        verification: row.verification.clone(),
        severity_al: row.severity_al.clone(),
    }
}

/// A medication's companion row, from the input over the stored one.
async fn medication(
    state: &AppState,
    input: &IssueInput,
    row: Option<&IssueRow>,
    issues: &mut Issues,
) -> Result<MedicationValues> {
    let pick = |given: &Option<String>, stored: Option<&Option<String>>| {
        given.clone().or_else(|| stored.cloned().flatten()).filter(|s| !s.is_empty())
    };
    let dosage =
        pick(&input.dosage_instructions, row.map(|r| &r.drug_dosage_instructions)).unwrap_or_default();
    issues.within_bytes("dosage_instructions", &dosage, 65_535);
    let mut resolve = async |field: &str, list: &str, value: Option<String>| match value {
        Some(v) => option(state, issues, field, list, &v).await,
        None => Ok(None),
    };
    let usage_category = resolve(
        "usage_category",
        "medication-usage-category",
        pick(&input.usage_category, row.map(|r| &r.usage_category)),
    )
    .await?;
    let request_intent = resolve(
        "request_intent",
        "medication-request-intent",
        pick(&input.request_intent, row.map(|r| &r.request_intent)),
    )
    .await?;
    Ok(MedicationValues { dosage, usage_category, request_intent })
}

/// The encounter to link, which must be the patient's and open to the caller.
async fn check_encounter(
    state: &AppState,
    caller: &Caller,
    pid: Pid,
    encounter: Option<i64>,
    issues: &mut Issues,
) -> Result<()> {
    let Some(number) = encounter else { return Ok(()) };
    match encounters::get(&state.pool, number).await? {
        Some(e) if e.pid == pid.0 => require_access(state, caller, &e, AclLevel::View).await?,
        Some(_) => issues.add("encounter", format!("encounter {number} belongs to another patient")),
        None => issues.add("encounter", format!("no encounter {number}")),
    }
    Ok(())
}

fn medication_fields_given(input: &IssueInput) -> bool {
    input.dosage_instructions.is_some() || input.usage_category.is_some() || input.request_intent.is_some()
}

pub async fn create(
    state: &AppState,
    caller: &Caller,
    pid: Pid,
    kind: IssueType,
    input: IssueInput,
) -> Result<Issue> {
    permission::require_on(state, caller, Aco::PATIENTS_MED, AclLevel::Addonly, pid.0).await?;
    require_patient(state, pid).await?;
    let mut issues = Issues::default();
    if input.title.is_none() {
        issues.add("title", "is required");
    }
    let values = merge(state, kind, &input, empty_values(), &mut issues).await?;
    only_for(
        &mut issues,
        kind,
        IssueType::Medication,
        "dosage_instructions",
        medication_fields_given(&input),
    );
    let med = match kind {
        IssueType::Medication => Some(medication(state, &input, None, &mut issues).await?),
        _ => None,
    };
    check_encounter(state, caller, pid, input.encounter, &mut issues).await?;
    issues.into_result(())?;
    let author = Author { username: &caller.username, groupname: &caller.auth_group };
    let mut tx = state.pool.begin().await?;
    let id = store::insert(&mut tx, pid, kind, &values, &author, crate::service::wall_clock_now()).await?;
    if let Some(med) = &med {
        store::upsert_medication(&mut tx, id, med).await?;
    }
    store::touch(&mut tx, pid, kind).await?;
    if let Some(number) = input.encounter {
        store::link_encounter(&mut tx, pid, id, number, caller.user_id.0).await?;
    }
    let comments = format!("mmt-sidecar added {} {id}", kind.db_type());
    audit_log::record(&mut tx, &entry(caller, "patient-record-insert", kind, pid.0, comments)).await?;
    let event = webhooks::record(&mut tx, change(ChangeEvent::IssueCreated, kind, id, pid)).await?;
    tx.commit().await?;
    webhooks::committed(state, event);
    load(state, id).await
}

fn change(event: ChangeEvent, kind: IssueType, id: i64, pid: Pid) -> Change {
    Change { event, pid: Some(pid.0), data: json!({ "issue": id, "type": kind.db_type() }) }
}

async fn load(state: &AppState, id: i64) -> Result<Issue> {
    let row = store::get(&state.pool, id).await?;
    let Some((kind, row, pid)) = row
        .and_then(|r| Some((IssueType::from_db(r.kind.as_deref()?)?, r.pid?, r)))
        .map(|(k, p, r)| (k, r, p))
    else {
        return Err(ChartError::NotFound(format!("no allergy, problem or medication {id}")));
    };
    let encounters = store::encounters_of(&state.pool, Pid(pid))
        .await?
        .into_iter()
        .filter(|(l, _)| *l == id)
        .map(|(_, e)| e)
        .collect();
    Ok(Issue { kind, row, encounters })
}

pub async fn list(state: &AppState, caller: &Caller, pid: Pid, kind: IssueType) -> Result<Vec<Issue>> {
    Ok(lists(state, caller, pid, &[kind]).await?.remove(0))
}

/// The patient's allergies, problems and medications in one read.
pub async fn chart(state: &AppState, caller: &Caller, pid: Pid) -> Result<[Vec<Issue>; 3]> {
    let mut found =
        lists(state, caller, pid, &[IssueType::Allergy, IssueType::Problem, IssueType::Medication]).await?;
    let medications = found.pop().unwrap_or_default();
    let problems = found.pop().unwrap_or_default();
    let allergies = found.pop().unwrap_or_default();
    Ok([allergies, problems, medications])
}

/// One list per kind, in the order asked; each kind read is audited under its own category.
async fn lists(state: &AppState, caller: &Caller, pid: Pid, kinds: &[IssueType]) -> Result<Vec<Vec<Issue>>> {
    permission::require_on(state, caller, Aco::PATIENTS_MED, AclLevel::View, pid.0).await?;
    require_patient(state, pid).await?;
    let rows = store::list(&state.pool, pid, kinds).await?;
    let mut links: BTreeMap<i64, Vec<i64>> = BTreeMap::new();
    for (list_id, encounter) in store::encounters_of(&state.pool, pid).await? {
        links.entry(list_id).or_default().push(encounter);
    }
    let mut out: Vec<Vec<Issue>> = kinds.iter().map(|_| Vec::new()).collect();
    for row in rows {
        let Some(slot) = row.kind.as_deref().and_then(|k| kinds.iter().position(|t| t.db_type() == k)) else {
            continue;
        };
        let encounters = links.remove(&row.id).unwrap_or_default();
        out[slot].push(Issue { kind: kinds[slot], encounters, row });
    }
    for (kind, found) in kinds.iter().zip(&out) {
        let ids = found.iter().map(|i| i.row.id.to_string()).collect::<Vec<_>>().join(",");
        let comments = format!("mmt-sidecar listed {} of pid {pid}: [{ids}]", kind.db_type());
        audit::record(state, &entry(caller, "patient-record-select", *kind, pid.0, comments)).await?;
    }
    crate::service::dashboard::recent::viewed(state, caller, pid).await;
    Ok(out)
}

/// The issue, once the caller holds `patients|med` at `level` for its patient.
async fn permitted(state: &AppState, caller: &Caller, id: i64, level: AclLevel) -> Result<Issue> {
    let issue = load(state, id).await?;
    permission::require_on(state, caller, Aco::PATIENTS_MED, level, issue.row.pid.unwrap_or_default())
        .await?;
    Ok(issue)
}

pub async fn get(state: &AppState, caller: &Caller, id: i64) -> Result<Issue> {
    let issue = permitted(state, caller, id, AclLevel::View).await?;
    let pid = issue.row.pid.unwrap_or_default();
    let comments = format!("mmt-sidecar read {} {id}", issue.kind.db_type());
    audit::record(state, &entry(caller, "patient-record-select", issue.kind, pid, comments)).await?;
    Ok(issue)
}

/// The issue OpenEMR's FHIR API knows by `uuid`, if it is of `kind`.
pub async fn get_by_uuid(
    state: &AppState,
    caller: &Caller,
    uuid: &[u8; 16],
    kind: IssueType,
) -> Result<Issue> {
    let missing = || ChartError::NotFound(format!("no {} with this id", kind.db_type()));
    let id = store::id_by_uuid(&state.pool, uuid).await?.ok_or_else(missing)?;
    let issue = get(state, caller, id).await?;
    if issue.kind == kind { Ok(issue) } else { Err(missing()) }
}

pub async fn update(
    state: &AppState,
    caller: &Caller,
    id: i64,
    status: Option<Status>,
    input: IssueInput,
) -> Result<Issue> {
    let issue = permitted(state, caller, id, AclLevel::Write).await?;
    let (kind, pid) = (issue.kind, Pid(issue.row.pid.unwrap_or_default()));
    let mut issues = Issues::default();
    let mut values = merge(state, kind, &input, stored_values(&issue.row), &mut issues).await?;
    match status {
        Some(Status::Ended) if values.enddate.is_none() => {
            values.enddate = Some(crate::service::wall_clock_now())
        }
        Some(Status::Active) if input.enddate.is_some() => {
            issues.add("enddate", "cannot be set when reactivating");
        }
        Some(Status::Active) => values.enddate = None,
        _ => {}
    }
    only_for(
        &mut issues,
        kind,
        IssueType::Medication,
        "dosage_instructions",
        medication_fields_given(&input),
    );
    let med = match kind {
        IssueType::Medication => Some(medication(state, &input, Some(&issue.row), &mut issues).await?),
        _ => None,
    };
    check_encounter(state, caller, pid, input.encounter, &mut issues).await?;
    issues.into_result(())?;
    let mut tx = state.pool.begin().await?;
    store::update(&mut tx, id, &values).await?;
    if let Some(med) = &med {
        store::upsert_medication(&mut tx, id, med).await?;
    }
    if let Some(number) = input.encounter {
        store::link_encounter(&mut tx, pid, id, number, caller.user_id.0).await?;
    }
    let what = match status {
        Some(Status::Ended) => "ended",
        Some(Status::Active) => "reactivated",
        None => "updated",
    };
    let comments = format!("mmt-sidecar {what} {} {id}", kind.db_type());
    audit_log::record(&mut tx, &entry(caller, "patient-record-update", kind, pid.0, comments)).await?;
    let event = webhooks::record(&mut tx, change(ChangeEvent::IssueUpdated, kind, id, pid)).await?;
    tx.commit().await?;
    webhooks::committed(state, event);
    load(state, id).await
}
