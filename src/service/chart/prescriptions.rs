//! Prescriptions under OpenEMR's `patients|rx` (view to read, write/addonly to add, write to
//! change), written as the prescription screen writes them, with the medication list kept in step
//! as Prescription::set_medication does. Audited as `order-*` / `Medication`.

use chrono::NaiveDate;
use serde_json::json;

use crate::{
    app::AppState,
    domain::{
        acl::{AclLevel, Aco},
        audit::AuditEntry,
        catalogue::product::prescribed_as,
        chart::{
            issues::IssueType,
            prescription::{self as rules, DrugList, Substitution},
        },
        patient::Pid,
        user::Caller,
        validation::Issues,
        webhook::ChangeEvent,
    },
    service::{
        audit,
        encounters::require_access,
        permission, wall_clock_now,
        webhooks::{self, Change},
    },
    storage::{
        StorageError,
        mmt::products::{self, ProductRow},
        openemr::{
            audit_log,
            chart::{
                issues::{self as issue_store, Author, IssueValues, MedicationValues},
                list_options,
                prescriptions::{self as store, AustralianExtras, PrescriptionRow, PrescriptionValues},
            },
            encounters, patients, providers,
        },
    },
};

use super::ChartError;

type Result<T, E = ChartError> = std::result::Result<T, E>;

pub const AUDIT_CATEGORY: &str = "Medication";

/// What a client may set; `None` leaves a field as it is (on create: OpenEMR's default).
#[derive(Debug, Default, serde::Serialize)]
pub struct PrescriptionInput {
    pub drug: Option<String>,
    /// A catalogue product: names the drug when `drug` is not given, and a product linked to an
    /// inventory drug is prescribed as it. Create only.
    pub product_id: Option<i64>,
    pub rxnorm_drugcode: Option<String>,
    pub provider_id: Option<i64>,
    pub encounter: Option<i64>,
    pub start_date: Option<String>,
    pub size: Option<String>,
    pub unit: Option<String>,
    pub dosage: Option<String>,
    pub form: Option<String>,
    pub route: Option<String>,
    pub interval: Option<String>,
    pub quantity: Option<String>,
    pub refills: Option<i32>,
    pub per_refill: Option<i32>,
    pub substitution_allowed: Option<bool>,
    pub medication: Option<bool>,
    pub note: Option<String>,
    pub usage_category: Option<String>,
    pub request_intent: Option<String>,
    pub dosage_instructions: Option<String>,
    /// PATCH: false discontinues, true reactivates.
    pub active: Option<bool>,
    pub australian: Option<AustralianExtras>,
}

/// The option lists the coded fields draw from, loaded once per request.
pub struct DrugLists(Vec<(DrugList, Vec<(String, String)>)>);

impl DrugLists {
    pub async fn load(state: &AppState) -> Result<Self> {
        let mut lists = Vec::new();
        for list in DrugList::ALL {
            let options = list_options::active(&state.pool, list.list_id()).await?;
            lists.push((list, options.into_iter().map(|o| (o.option_id, o.title)).collect()));
        }
        Ok(Self(lists))
    }

    fn options(&self, list: DrugList) -> &[(String, String)] {
        self.0.iter().find(|(l, _)| *l == list).map(|(_, o)| o.as_slice()).unwrap_or_default()
    }

    /// The title OpenEMR shows for a stored option id ('' when unset or unknown).
    pub fn title(&self, list: DrugList, stored: Option<&str>) -> String {
        let Some(id) = stored else { return String::new() };
        self.options(list).iter().find(|(o, _)| o == id).map(|(_, t)| t.clone()).unwrap_or_default()
    }

    fn pick(&self, issues: &mut Issues, list: DrugList, given: &str) -> Option<String> {
        match rules::choose(self.options(list), given) {
            Ok((id, _)) => Some(id.clone()),
            Err(allowed) => {
                let message = format!("must be one of {allowed} (OpenEMR list {})", list.list_id());
                issues.add(list.field(), message);
                None
            }
        }
    }
}

/// A prescription with what its response and PDF show beside the row.
pub struct Prescription {
    pub row: PrescriptionRow,
    pub extras: Option<AustralianExtras>,
    /// The catalogue product it was written for.
    pub product_id: Option<i64>,
}

pub enum Created {
    New(Prescription),
    Replayed(Prescription),
}

fn entry(caller: &Caller, event: &str, pid: i64, comments: String) -> AuditEntry {
    AuditEntry::phi(caller, event, AUDIT_CATEGORY, Some(pid), comments)
}

fn stored_code(v: Option<i32>) -> Option<String> {
    v.map(|n| n.to_string())
}

fn values_of(row: &PrescriptionRow) -> PrescriptionValues {
    PrescriptionValues {
        provider_id: row.provider_id.unwrap_or_default(),
        encounter: row.encounter,
        start_date: row.start_date.unwrap_or_else(|| wall_clock_now().date()),
        drug: row.drug.clone().unwrap_or_default(),
        drug_id: row.drug_id,
        rxnorm_drugcode: row.rxnorm_drugcode.clone(),
        form: row.form,
        dosage: row.dosage.clone().unwrap_or_default(),
        quantity: row.quantity.clone().unwrap_or_default(),
        size: row.size.clone(),
        unit: row.unit,
        route: row.route.clone(),
        interval: row.interval,
        substitute: row.substitute,
        refills: row.refills.unwrap_or_default(),
        per_refill: row.per_refill.unwrap_or_default(),
        medication: row.medication == Some(1),
        note: row.note.clone(),
        active: row.active,
        usage_category: (row.usage_category.clone().unwrap_or_default(), String::new()),
        request_intent: (row.request_intent.clone().unwrap_or_default(), String::new()),
        drug_dosage_instructions: row.drug_dosage_instructions.clone(),
    }
}

/// The UI's defaults for a new prescription (Prescription::__construct, C_Prescription).
fn new_values(caller: &Caller) -> PrescriptionValues {
    PrescriptionValues {
        provider_id: caller.user_id.0,
        encounter: None,
        start_date: wall_clock_now().date(),
        drug: String::new(),
        drug_id: 0,
        rxnorm_drugcode: None,
        form: None,
        dosage: String::new(),
        quantity: String::new(),
        size: None,
        unit: None,
        route: None,
        interval: None,
        substitute: None,
        refills: 0,
        per_refill: 0,
        medication: false,
        note: None,
        active: rules::ACTIVE,
        usage_category: ("outpatient".into(), String::new()),
        request_intent: ("order".into(), String::new()),
        drug_dosage_instructions: None,
    }
}

/// form, unit and interval are int columns holding the option id.
fn numeric(code: Option<String>) -> Option<i32> {
    code.and_then(|c| c.parse().ok())
}

fn digits(issues: &mut Issues, field: &str, value: &Option<String>, lengths: &[usize]) -> Option<String> {
    let v = value.as_deref().map(str::trim).filter(|v| !v.is_empty())?;
    if !v.chars().all(|c| c.is_ascii_digit()) || !lengths.contains(&v.len()) {
        let lens: Vec<String> = lengths.iter().map(usize::to_string).collect();
        issues.add(field, format!("must be {} digits", lens.join(" or ")));
    }
    Some(v.to_string())
}

fn australian(issues: &mut Issues, given: &AustralianExtras) -> AustralianExtras {
    let schedule = given.controlled_schedule.as_deref().map(str::trim).filter(|s| !s.is_empty());
    if let Some(s) = schedule
        && !matches!(s.to_ascii_uppercase().as_str(), "S4" | "S4D" | "S8")
    {
        issues.add("australian.controlled_schedule", "must be S4, S4D or S8");
    }
    AustralianExtras {
        prescriber_number: digits(issues, "australian.prescriber_number", &given.prescriber_number, &[6, 7]),
        prescriber_hpii: digits(issues, "australian.prescriber_hpii", &given.prescriber_hpii, &[16]),
        medicare_number: digits(issues, "australian.medicare_number", &given.medicare_number, &[10, 11]),
        ihi: digits(issues, "australian.ihi", &given.ihi, &[16]),
        pbs: given.pbs,
        controlled_schedule: schedule.map(str::to_ascii_uppercase),
    }
}

async fn option_with_title(
    state: &AppState,
    issues: &mut Issues,
    field: &str,
    list_id: &str,
    value: &str,
) -> Result<(String, String)> {
    // Rows OpenEMR wrote before these columns existed hold none; they stay empty.
    if value.is_empty() {
        return Ok(Default::default());
    }
    let options = list_options::active(&state.pool, list_id).await?;
    let pairs: Vec<(String, String)> = options.into_iter().map(|o| (o.option_id, o.title)).collect();
    match rules::choose(&pairs, value) {
        Ok(found) => Ok(found.clone()),
        Err(allowed) => {
            issues.add(field, format!("must be one of {allowed} (OpenEMR list {list_id})"));
            Ok((value.to_string(), String::new()))
        }
    }
}

/// Applies the input over `v` (stored or default values), collecting every field problem.
async fn merge(
    state: &AppState,
    caller: &Caller,
    pid: Pid,
    lists: &DrugLists,
    input: &PrescriptionInput,
    mut v: PrescriptionValues,
    issues: &mut Issues,
) -> Result<PrescriptionValues> {
    if let Some(d) = &input.drug {
        v.drug = issues.text("drug", d, 1, 150);
    }
    if let Some(c) = &input.rxnorm_drugcode {
        v.rxnorm_drugcode = Some(issues.text("rxnorm_drugcode", c, 0, 25)).filter(|c| !c.is_empty());
    }
    if let Some(d) = &input.dosage {
        v.dosage = issues.text("dosage", d, 1, 100);
    }
    if let Some(q) = &input.quantity {
        v.quantity = issues.text("quantity", q, 1, 31);
    }
    if let Some(s) = &input.size {
        let size = rules::clean_size(s);
        if size.chars().count() > 25 {
            issues.add("size", "must be at most 25 characters");
        }
        v.size = Some(size).filter(|s| !s.is_empty());
    }
    if let Some(raw) = &input.start_date {
        match NaiveDate::parse_from_str(raw.trim(), "%Y-%m-%d") {
            Ok(d) => v.start_date = d,
            Err(_) => issues.add("start_date", "must be YYYY-MM-DD"),
        }
    }
    for (list, given) in [
        (DrugList::Form, &input.form),
        (DrugList::Unit, &input.unit),
        (DrugList::Route, &input.route),
        (DrugList::Interval, &input.interval),
    ] {
        let Some(given) = given else { continue };
        let code = if given.trim().is_empty() { None } else { lists.pick(issues, list, given) };
        match list {
            DrugList::Form => v.form = numeric(code),
            DrugList::Unit => v.unit = numeric(code),
            DrugList::Interval => v.interval = numeric(code),
            DrugList::Route => v.route = code,
        }
    }
    if let Some(r) = input.refills {
        if !(0..=20).contains(&r) {
            issues.add("refills", "must be 0 to 20");
        }
        v.refills = r;
    }
    if let Some(r) = input.per_refill {
        if r < 0 {
            issues.add("per_refill", "must not be negative");
        }
        v.per_refill = r;
    }
    if let Some(allowed) = input.substitution_allowed {
        v.substitute = Some(Substitution::from_allowed(allowed).db());
    }
    if let Some(m) = input.medication {
        v.medication = m;
    }
    if let Some(n) = &input.note {
        let note = issues.prose("note", n, 0, usize::MAX);
        issues.within_bytes("note", &note, 65_535);
        v.note = Some(note).filter(|n| !n.is_empty());
    }
    if let Some(d) = &input.dosage_instructions {
        let text = issues.prose("dosage_instructions", d, 0, usize::MAX);
        issues.within_bytes("dosage_instructions", &text, 65_535);
        v.drug_dosage_instructions = Some(text).filter(|t| !t.is_empty());
    }
    let usage = input.usage_category.clone().unwrap_or_else(|| v.usage_category.0.clone());
    v.usage_category =
        option_with_title(state, issues, "usage_category", "medication-usage-category", &usage).await?;
    let intent = input.request_intent.clone().unwrap_or_else(|| v.request_intent.0.clone());
    v.request_intent =
        option_with_title(state, issues, "request_intent", "medication-request-intent", &intent).await?;
    if let Some(active) = input.active {
        v.active = if active { rules::ACTIVE } else { rules::DISCONTINUED };
    }
    if let Some(provider) = input.provider_id {
        if providers::get(&state.pool, provider).await?.is_none() {
            issues.add("provider_id", format!("no active provider with id {provider}"));
        }
        v.provider_id = provider;
    }
    if let Some(number) = input.encounter {
        match encounters::get(&state.pool, number).await? {
            Some(e) if e.pid == pid.0 => require_access(state, caller, &e, AclLevel::View).await?,
            Some(_) => issues.add("encounter", format!("encounter {number} belongs to another patient")),
            None => issues.add("encounter", format!("no encounter {number}")),
        }
        v.encounter = Some(number);
    }
    Ok(v)
}

async fn require_patient(state: &AppState, pid: Pid) -> Result<()> {
    match patients::get(&state.pool, pid).await? {
        Some(_) => Ok(()),
        None => Err(ChartError::NotFound(format!("no patient with pid {pid}"))),
    }
}

fn key_of(issues: &mut Issues, key: Option<&str>) -> Option<String> {
    let key = key.map(str::trim).filter(|k| !k.is_empty())?;
    if key.chars().count() > 20 || !key.chars().all(|c| c.is_ascii_graphic()) {
        issues.add("external_id", "must be 1 to 20 printable ASCII characters (prescriptions.external_id)");
    }
    Some(key.to_string())
}

/// A replayed key: the same request gets its prescription, a different one is refused.
async fn replay(
    state: &AppState,
    caller: &Caller,
    pid: Pid,
    fingerprint: &str,
    found: (String, i64, i64),
) -> Result<Created> {
    let (stored, id, key_pid) = found;
    if stored != fingerprint || key_pid != pid.0 {
        return Err(ChartError::Conflict(
            "external_id was already used for a different prescription request".into(),
        ));
    }
    Ok(Created::Replayed(read_audited(state, caller, id).await?))
}

pub async fn create(
    state: &AppState,
    caller: &Caller,
    pid: Pid,
    external_id: Option<&str>,
    input: PrescriptionInput,
) -> Result<Created> {
    permission::require_on(state, caller, Aco::PATIENTS_RX, AclLevel::Addonly, pid.0).await?;
    require_patient(state, pid).await?;
    let mut issues = Issues::default();
    let product = chosen_product(state, input.product_id, &mut issues).await?;
    let named = input.drug.is_some() || product.is_some();
    for (field, given) in
        [("drug", named), ("dosage", input.dosage.is_some()), ("quantity", input.quantity.is_some())]
    {
        if !given {
            issues.add(field, "is required");
        }
    }
    if input.active.is_some() {
        issues.add("active", "is set by PATCH /api/prescriptions/{id}/ only");
    }
    let key = key_of(&mut issues, external_id);
    let lists = DrugLists::load(state).await?;
    let mut values = merge(state, caller, pid, &lists, &input, new_values(caller), &mut issues).await?;
    if let Some(product) = &product {
        if input.drug.is_none() {
            values.drug = prescribed_as(&product.brand, product.product_name.as_deref(), &product.form);
        }
        values.drug_id = product.drug_id.unwrap_or_default();
    }
    let extras = input.australian.as_ref().map(|a| australian(&mut issues, a));
    issues.into_result(())?;
    let fingerprint = rules::fingerprint(&serde_json::to_vec(&input).unwrap_or_default());

    // One connection for GenID (autocommit) and then the transaction; released before the reads
    // that follow, so a burst of creates cannot hold the pool while waiting on it.
    let mut conn = state.pool.acquire().await.map_err(StorageError::from_sqlx)?;
    if let Some(key) = &key
        && let Some(found) = store::claimed_key(&mut conn, key).await?
    {
        drop(conn);
        return replay(state, caller, pid, &fingerprint, found).await;
    }
    let id = store::next_free_id(&mut conn).await?;
    let mut tx = sqlx::Connection::begin(&mut *conn).await.map_err(StorageError::from_sqlx)?;
    if let Some(key) = &key
        && let Some(found) = store::claim_key(&mut tx, key, pid.0, &fingerprint, id).await?
    {
        drop(tx);
        drop(conn);
        return replay(state, caller, pid, &fingerprint, found).await;
    }
    let now = wall_clock_now();
    store::insert(&mut tx, id, pid.0, &values, key.as_deref(), caller.user_id.0, now).await?;
    if let Some(product) = &product {
        products::link_prescription(&mut tx, id, product.id).await?;
    }
    if let Some(extras) = &extras {
        store::save_extras(&mut tx, id, extras).await?;
    }
    if values.medication {
        put_on_medication_list(&mut tx, caller, pid, id, &lists, &values).await?;
    }
    let comments = format!("mmt-sidecar added prescription {id}");
    audit_log::record(&mut tx, &entry(caller, "order-insert", pid.0, comments)).await?;
    let event = webhooks::record(&mut tx, change(ChangeEvent::PrescriptionCreated, id, pid)).await?;
    tx.commit().await.map_err(StorageError::from_sqlx)?;
    drop(conn);
    webhooks::committed(state, event);
    Ok(Created::New(load(state, id).await?))
}

/// A current catalogue product, or an issue naming why it cannot be prescribed.
async fn chosen_product(
    state: &AppState,
    id: Option<i64>,
    issues: &mut Issues,
) -> Result<Option<ProductRow>> {
    let Some(id) = id else { return Ok(None) };
    match products::get(&state.pool, id).await? {
        Some(p) if p.discontinued_at.is_none() => return Ok(Some(p)),
        Some(_) => issues.add("product_id", format!("product {id} is discontinued by its supplier")),
        None => issues.add("product_id", format!("no product {id}")),
    }
    Ok(None)
}

fn change(event: ChangeEvent, id: i64, pid: Pid) -> Change {
    Change { event, pid: Some(pid.0), data: json!({ "prescription": id }) }
}

/// Prescription::set_medication with medication=1: the patient's matching medication entry
/// (reactivated if inactive) or a new one, and its lists_medication row (gen_lists_medication).
async fn put_on_medication_list(
    conn: &mut sqlx::MySqlConnection,
    caller: &Caller,
    pid: Pid,
    id: i64,
    lists: &DrugLists,
    v: &PrescriptionValues,
) -> Result<()> {
    let author = Author { username: &caller.username, groupname: &caller.auth_group };
    let list_id = match store::medication_entry(conn, pid.0, id, &v.drug).await? {
        Some((list_id, _)) => {
            store::set_medication_activity(conn, list_id, 1, &v.drug, author.username, author.groupname)
                .await?;
            list_id
        }
        None => {
            let now = wall_clock_now();
            let issue = IssueValues {
                title: v.drug.clone(),
                begdate: now.date().and_hms_opt(0, 0, 0),
                enddate: None,
                diagnosis: v.rxnorm_drugcode.as_ref().map(|c| format!("RXCUI:{c}")).unwrap_or_default(),
                comments: String::new(),
                outcome: 0,
                occurrence: 0,
                reaction: String::new(),
                verification: String::new(),
                severity_al: None,
            };
            let list_id = issue_store::insert(conn, pid, IssueType::Medication, &issue, &author, now).await?;
            let comments = format!("mmt-sidecar added medication {list_id} for prescription {id}");
            let audit = AuditEntry::phi(
                caller,
                "patient-record-insert",
                IssueType::Medication.audit_category(),
                Some(pid.0),
                comments,
            );
            audit_log::record(conn, &audit).await?;
            list_id
        }
    };
    let form = lists.title(DrugList::Form, stored_code(v.form).as_deref());
    let interval = lists.title(DrugList::Interval, stored_code(v.interval).as_deref());
    let unit = lists.title(DrugList::Unit, stored_code(v.unit).as_deref());
    let line = rules::dosage_display(&v.dosage, &form, &interval);
    let med = MedicationValues {
        dosage: rules::medication_instructions(v.size.as_deref().unwrap_or_default(), &unit, &line),
        usage_category: Some(v.usage_category.clone()),
        request_intent: Some(v.request_intent.clone()),
    };
    issue_store::upsert_medication(conn, list_id, &med).await?;
    store::link_medication(conn, list_id, id).await?;
    Ok(())
}

pub(super) async fn load(state: &AppState, id: i64) -> Result<Prescription> {
    let row = store::get(&state.pool, id)
        .await?
        .ok_or_else(|| ChartError::NotFound(format!("no prescription {id}")))?;
    let extras = store::extras(&state.pool, id).await?;
    let product_id = products::of_prescription(&state.pool, id).await?;
    Ok(Prescription { row, extras, product_id })
}

/// The prescription, once the caller holds `patients|rx` at `level` for its patient.
pub async fn permitted(state: &AppState, caller: &Caller, id: i64, level: AclLevel) -> Result<Prescription> {
    let rx = load(state, id).await?;
    permission::require_on(state, caller, Aco::PATIENTS_RX, level, rx.row.patient_id.unwrap_or_default())
        .await?;
    Ok(rx)
}

async fn read_audited(state: &AppState, caller: &Caller, id: i64) -> Result<Prescription> {
    let rx = permitted(state, caller, id, AclLevel::View).await?;
    let pid = rx.row.patient_id.unwrap_or_default();
    audit::record(state, &entry(caller, "order-select", pid, format!("mmt-sidecar read prescription {id}")))
        .await?;
    Ok(rx)
}

pub async fn get(state: &AppState, caller: &Caller, id: i64) -> Result<Prescription> {
    read_audited(state, caller, id).await
}

/// The prescription OpenEMR's FHIR API knows by `uuid`.
pub async fn get_by_uuid(state: &AppState, caller: &Caller, uuid: &[u8; 16]) -> Result<Prescription> {
    let id = store::id_by_uuid(&state.pool, uuid)
        .await?
        .ok_or_else(|| ChartError::NotFound("no prescription with this id".into()))?;
    read_audited(state, caller, id).await
}

pub async fn list(state: &AppState, caller: &Caller, pid: Pid) -> Result<Vec<Prescription>> {
    permission::require_on(state, caller, Aco::PATIENTS_RX, AclLevel::View, pid.0).await?;
    require_patient(state, pid).await?;
    let rows = store::list(&state.pool, pid.0).await?;
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        let extras = store::extras(&state.pool, row.id).await?;
        let product_id = products::of_prescription(&state.pool, row.id).await?;
        out.push(Prescription { row, extras, product_id });
    }
    let ids = out.iter().map(|p| p.row.id.to_string()).collect::<Vec<_>>().join(",");
    let comments = format!("mmt-sidecar listed prescriptions of pid {pid}: [{ids}]");
    audit::record(state, &entry(caller, "order-select", pid.0, comments)).await?;
    Ok(out)
}

pub async fn update(
    state: &AppState,
    caller: &Caller,
    id: i64,
    input: PrescriptionInput,
) -> Result<Prescription> {
    let rx = permitted(state, caller, id, AclLevel::Write).await?;
    let pid = Pid(rx.row.patient_id.unwrap_or_default());
    let lists = DrugLists::load(state).await?;
    let mut issues = Issues::default();
    let was_listed = rx.row.medication == Some(1);
    if input.product_id.is_some() {
        issues.add("product_id", "is chosen when the prescription is written");
    }
    let values = merge(state, caller, pid, &lists, &input, values_of(&rx.row), &mut issues).await?;
    let extras = input.australian.as_ref().map(|a| australian(&mut issues, a));
    issues.into_result(())?;
    let mut tx = state.pool.begin().await?;
    store::update(&mut tx, id, &values, caller.user_id.0, wall_clock_now()).await?;
    if let Some(extras) = &extras {
        store::save_extras(&mut tx, id, extras).await?;
    }
    if values.medication {
        put_on_medication_list(&mut tx, caller, pid, id, &lists, &values).await?;
    } else if was_listed
        && let Some((list_id, 1)) =
            store::medication_entry(&mut tx, pid.0, id, rx.row.drug.as_deref().unwrap_or_default()).await?
    {
        let title = rx.row.drug.clone().unwrap_or_default();
        store::set_medication_activity(&mut tx, list_id, 0, &title, &caller.username, &caller.auth_group)
            .await?;
    }
    let what = match input.active {
        Some(false) => "discontinued",
        Some(true) => "reactivated",
        None => "updated",
    };
    let comments = format!("mmt-sidecar {what} prescription {id}");
    audit_log::record(&mut tx, &entry(caller, "order-update", pid.0, comments)).await?;
    let event = webhooks::record(&mut tx, change(ChangeEvent::PrescriptionUpdated, id, pid)).await?;
    tx.commit().await?;
    webhooks::committed(state, event);
    load(state, id).await
}
