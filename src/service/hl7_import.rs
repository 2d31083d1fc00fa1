//! HL7 v2 into the chart: lab results (`ORU`) into OpenEMR's procedure tables, documents (`MDM`)
//! into its documents with a message to the clinician, registrations (`ADT`) into `patient_data`.
//! Every message is kept sealed and answered with an ACK; a resend is answered as before and never
//! filed twice; a message whose patient is unclear waits for a person (OpenEMR would create a
//! skeleton patient or ask whoever is polling).

use std::collections::HashMap;

use crate::{
    app::AppState,
    domain::{
        acl::{AclLevel, Aco},
        audit::AuditEntry,
        hl7::{self, AckCode, Answered},
        hl7_import::{
            self, AdtEvent, Body, DocumentNotice, Encapsulated, Header, Identity, Inbound, LabReport,
            MessageState, Registration, Results,
        },
        messaging::message::MessageInput,
        patient::{DemographicsInput, Pid},
        user::{Caller, SignInMethod},
        validation::Issues,
    },
    service::{
        acl::AclError,
        audit,
        documents::records::{self, DocumentError, UploadForm},
        messaging::messages::{self, MessageError},
        patient_access,
        patients::{self, PatientError},
        permission, sign_in, wall_clock_now,
    },
    storage::{
        StorageError,
        advisory_lock::{self, Held},
        mmt::hl7_messages::{self as store, MessageRow, NewMessage, Settled},
        openemr::{
            audit_log,
            documents::rows as document_rows,
            encounters, globals,
            patients::{self as patient_rows, MatchKeys},
            procedures::{self, Filer, NewOrder, NewReport, NewResult},
            users,
        },
    },
};

#[derive(Debug, thiserror::Error)]
pub enum Hl7Error {
    #[error("{0}")]
    NotHl7(String),
    #[error("no HL7 message {0}")]
    NotFound(u64),
    #[error("the message cannot be filed as asked")]
    Invalid(Issues),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    Unavailable(String),
    #[error(transparent)]
    Acl(#[from] AclError),
    #[error(transparent)]
    Storage(#[from] StorageError),
}

type Result<T> = std::result::Result<T, Hl7Error>;

impl From<PatientError> for Hl7Error {
    fn from(e: PatientError) -> Self {
        match e {
            PatientError::Invalid(issues) => Self::Invalid(issues),
            PatientError::Acl(e) => Self::Acl(e),
            PatientError::Storage(e) => Self::Storage(e),
            other => Self::Conflict(other.to_string()),
        }
    }
}

impl From<DocumentError> for Hl7Error {
    fn from(e: DocumentError) -> Self {
        match e {
            DocumentError::Invalid(issues) => Self::Invalid(issues),
            DocumentError::Acl(e) => Self::Acl(e),
            DocumentError::Storage(e) => Self::Storage(e),
            DocumentError::CategoryDenied(_) => Self::Forbidden(e.to_string()),
            DocumentError::Disk(_) | DocumentError::Unavailable(_) => Self::Unavailable(e.to_string()),
            other => Self::Conflict(other.to_string()),
        }
    }
}

/// What filing a message came to.
#[derive(Debug)]
enum Outcome {
    Filed { pid: i64, filed: String },
    Queued { candidates: Vec<i64>, reason: String },
    Error(String),
    Rejected(String),
}

impl Outcome {
    fn state(&self) -> MessageState {
        match self {
            Self::Filed { .. } => MessageState::Filed,
            Self::Queued { .. } => MessageState::Queued,
            Self::Error(_) => MessageState::Error,
            Self::Rejected(_) => MessageState::Rejected,
        }
    }

    fn code(&self) -> AckCode {
        match self {
            Self::Filed { .. } | Self::Queued { .. } => AckCode::Accepted,
            Self::Error(_) => AckCode::Error,
            Self::Rejected(_) => AckCode::Rejected,
        }
    }

    fn text(&self) -> String {
        match self {
            Self::Filed { filed, .. } => format!("filed: {filed}"),
            Self::Queued { reason, .. } => format!("queued for patient matching: {reason}"),
            Self::Error(why) | Self::Rejected(why) => why.clone(),
        }
    }
}

/// Who a message is filed for.
#[derive(Debug, Clone, Copy)]
enum Target {
    /// The patient PID (or the lab's order) names.
    Match,
    /// The patient a person chose.
    Patient(i64),
    /// A new patient registered from PID, as a person asked.
    New,
}

/// The ACO each kind of message is received under (`addonly` suffices: receiving adds).
const KINDS: [(&str, Aco); 3] =
    [("ORU", Aco::PATIENTS_LAB), ("MDM", Aco::PATIENTS_DOCS), ("ADT", Aco::PATIENTS_DEMO)];

/// Any other kind is judged as results (lab).
fn aco_of(message_type: &str) -> Aco {
    KINDS.iter().find(|(code, _)| *code == message_type).map_or(Aco::PATIENTS_LAB, |(_, aco)| *aco)
}

/// Each message of `body` (one, or a batch), in order: their ACKs, one after another.
pub async fn receive(state: &AppState, caller: &Caller, body: &str) -> Result<String> {
    let messages = hl7_import::split(body);
    if messages.is_empty() {
        return Err(Hl7Error::NotHl7("the body holds no HL7 message".into()));
    }
    let mut acks = Vec::with_capacity(messages.len());
    for raw in messages {
        acks.push(receive_one(state, caller, &raw).await?);
    }
    Ok(acks.join("\r"))
}

async fn receive_one(state: &AppState, caller: &Caller, raw: &str) -> Result<String> {
    let parsed = hl7_import::parse(raw);
    let header = match &parsed {
        Ok(m) => m.header.clone(),
        Err(refused) => refused.header.clone().ok_or_else(|| Hl7Error::NotHl7(refused.reason.clone()))?,
    };
    permission::require(state, caller, aco_of(&header.message_type), AclLevel::Addonly).await?;
    let message_type: String =
        format!("{}^{}", header.message_type, header.trigger).chars().take(15).collect();
    let new = NewMessage {
        sending_application: &header.sending_application,
        sending_facility: &header.sending_facility,
        control_id: &header.control_id,
        message_type: &message_type,
        raw,
        received_by: caller.user_id.0,
        at: chrono::Utc::now().naive_utc(),
    };
    let id = store::keep(&state.pool, &state.vault, &new).await?;
    let held = Held::take(&state.pool, format!("mmt-hl7-{id}"), advisory_lock::WRITE_WAIT_SECS).await?;
    let answered = answer_once(state, caller, id, raw, &header, parsed).await;
    let released = held.release().await;
    let ack = answered?;
    released?;
    Ok(ack)
}

/// The ACK for a message that could not be received at all (answered with `AR` when sending it
/// again cannot help, else `AE`), for senders that need an ACK whatever happens (MLLP).
pub fn failure_ack(raw: &str, err: &Hl7Error) -> String {
    let header = match hl7_import::parse(raw) {
        Ok(m) => Some(m.header),
        Err(refused) => refused.header,
    };
    let header = header.unwrap_or_default();
    let (code, text) = match err {
        Hl7Error::NotHl7(_) | Hl7Error::Acl(_) | Hl7Error::Forbidden(_) => {
            (AckCode::Rejected, err.to_string())
        }
        Hl7Error::Storage(_) | Hl7Error::Unavailable(_) => {
            (AckCode::Error, "the message could not be received just now; send it again".into())
        }
        _ => (AckCode::Error, err.to_string()),
    };
    ack(&header, code, &text)
}

/// What a transport without sign-in (MLLP, a dropped file) received, taken as `username`: the
/// ACKs, or an error only when trying again later may succeed (storage, or no such active user).
pub async fn receive_bytes(state: &AppState, username: &str, bytes: &[u8]) -> Result<String> {
    let Ok(text) = std::str::from_utf8(bytes) else {
        let err = Hl7Error::NotHl7("the message is not UTF-8; send MSH-18 UNICODE UTF-8".into());
        return Ok(failure_ack(&String::from_utf8_lossy(bytes), &err));
    };
    let caller = caller_named(state, username).await?;
    match receive(state, &caller, text).await {
        Err(err @ (Hl7Error::Storage(_) | Hl7Error::Unavailable(_))) => Err(err),
        Err(err) => Ok(failure_ack(text, &err)),
        Ok(acks) => Ok(acks),
    }
}

/// The OpenEMR user a transport without sign-in receives messages as (`MMT_HL7_LISTEN_USER`).
async fn caller_named(state: &AppState, username: &str) -> Result<Caller> {
    match users::by_username(&state.pool, username).await? {
        Some(record) if record.active => Ok(sign_in::caller_from(record, SignInMethod::Password, None)),
        _ => Err(Hl7Error::Unavailable(format!(
            "{username} (MMT_HL7_LISTEN_USER) is not an active OpenEMR user"
        ))),
    }
}

/// Under the message's lock: the stored answer for a resend, else the filing's.
async fn answer_once(
    state: &AppState,
    caller: &Caller,
    id: u64,
    raw: &str,
    header: &Header,
    parsed: std::result::Result<Inbound, hl7_import::Refused>,
) -> Result<String> {
    let row = store::get(&state.pool, id).await?.ok_or(Hl7Error::NotFound(id))?;
    if store::raw(&state.pool, &state.vault, id).await? != raw {
        let text = format!(
            "MSH-10 {} was already used by another message from this sender; send each message with its own control id",
            header.control_id
        );
        return Ok(ack(header, AckCode::Rejected, &text));
    }
    if MessageState::parse(&row.state).is_some_and(MessageState::is_answered) {
        let code = AckCode::parse(&row.ack_code).unwrap_or(AckCode::Accepted);
        return Ok(ack(header, code, &row.ack_text));
    }
    let outcome = match parsed {
        Err(refused) => Outcome::Rejected(refused.reason),
        Ok(inbound) => settled_as_error(process(state, caller, &inbound, Target::Match).await)?,
    };
    let text = outcome.text();
    record(state, caller, id, header, &outcome, &text, None).await?;
    Ok(ack(header, outcome.code(), &text))
}

/// The message's content is at fault (a value OpenEMR refuses, an order that is not there): the
/// sender is told, with `AE`.
fn settled_as_error(result: Result<Outcome>) -> Result<Outcome> {
    match result {
        Err(Hl7Error::Invalid(issues)) => Ok(Outcome::Error(issues.summary())),
        Err(Hl7Error::Conflict(why)) => Ok(Outcome::Error(why)),
        other => other,
    }
}

fn ack(header: &Header, code: AckCode, text: &str) -> String {
    let to = Answered {
        application: &header.sending_application,
        facility: &header.sending_facility,
        trigger: &header.trigger,
        control_id: &header.control_id,
    };
    let ours = uuid::Uuid::new_v4().simple().to_string()[..20].to_string();
    hl7::ack(&to, code, text, &ours, wall_clock_now())
}

/// Stores the outcome; a message kept without filing anything is itself PHI written, so audited.
async fn record(
    state: &AppState,
    caller: &Caller,
    id: u64,
    header: &Header,
    outcome: &Outcome,
    ack_text: &str,
    resolved_by: Option<i64>,
) -> Result<()> {
    let (pid, candidates, filed) = match outcome {
        Outcome::Filed { pid, filed } => (Some(*pid), String::new(), filed.as_str()),
        Outcome::Queued { candidates, .. } => (None, joined(candidates), ""),
        Outcome::Error(_) | Outcome::Rejected(_) => (None, String::new(), ""),
    };
    let settled = Settled {
        state: outcome.state().as_str(),
        ack_code: outcome.code().as_str(),
        ack_text: &ack_text.chars().take(255).collect::<String>(),
        pid,
        candidates: &candidates,
        filed: &filed.chars().take(255).collect::<String>(),
        resolved_by,
        at: chrono::Utc::now().naive_utc(),
    };
    store::settle(&state.pool, id, &settled).await?;
    if pid.is_none() {
        let comments = format!(
            "mmt-sidecar kept HL7 {}^{} message {id} ({})",
            header.message_type,
            header.trigger,
            outcome.state().as_str()
        );
        audit::record(state, &AuditEntry::phi(caller, "other-insert", "", None, comments)).await?;
    }
    Ok(())
}

fn joined(pids: &[i64]) -> String {
    pids.iter().map(i64::to_string).collect::<Vec<_>>().join(",")
}

async fn process(state: &AppState, caller: &Caller, m: &Inbound, target: Target) -> Result<Outcome> {
    match &m.body {
        Body::Results(r) => results(state, caller, &m.header, r, target).await,
        Body::Document(d) => document(state, caller, d, target).await,
        Body::Registration(r) => registration(state, caller, r, target).await,
    }
}

/// The patient a message is about, or why it waits.
enum Chart {
    Found(i64),
    Wait(Outcome),
}

async fn found(state: &AppState, p: &Identity) -> Result<(Vec<i64>, bool)> {
    let keys = MatchKeys {
        ssn: &p.ssn,
        first: &p.given,
        last: &p.family,
        dob: p.birth_date,
        chart: &p.record_number,
    };
    let matching = patient_rows::matching(&state.pool, &keys).await?;
    if !matching.is_empty() {
        return Ok((matching, true));
    }
    Ok((patient_rows::resembling(&state.pool, &keys).await?, false))
}

/// PID's patient when exactly one matches; none or several wait for a person.
async fn chart_of(state: &AppState, caller: &Caller, p: &Identity, target: Target) -> Result<Chart> {
    match target {
        Target::Patient(pid) => Ok(Chart::Found(existing(state, pid).await?)),
        Target::New => Ok(Chart::Found(register(state, caller, p).await?)),
        Target::Match => Ok(decide(found(state, p).await?)),
    }
}

fn decide((pids, exact): (Vec<i64>, bool)) -> Chart {
    let reason = match (pids.len(), exact) {
        (1, true) => return Chart::Found(pids[0]),
        (_, true) => "more than one patient matches PID",
        (0, false) => "no patient matches PID",
        (_, false) => "no patient matches PID exactly; some resemble it",
    };
    Chart::Wait(Outcome::Queued { candidates: pids, reason: reason.into() })
}

async fn existing(state: &AppState, pid: i64) -> Result<i64> {
    match patient_rows::get(&state.pool, Pid(pid)).await? {
        Some(_) => Ok(pid),
        None => {
            let mut issues = Issues::default();
            issues.add("pid", format!("no patient with pid {pid}"));
            Err(Hl7Error::Invalid(issues))
        }
    }
}

fn demographics(p: &Identity, creating: bool) -> DemographicsInput {
    let some = |s: &str| (!s.is_empty()).then(|| s.to_string());
    DemographicsInput {
        first_name: some(&p.given),
        middle_name: some(&p.middle),
        last_name: some(&p.family),
        dob: p.birth_date.map(|d| d.to_string()),
        sex: some(&p.sex),
        pubpid: some(&p.record_number).filter(|_| creating),
        phone_home: some(&p.phone),
        street: some(&p.street),
        city: some(&p.city),
        state: some(&p.state),
        postal_code: some(&p.postal_code),
        ..DemographicsInput::default()
    }
}

async fn register(state: &AppState, caller: &Caller, p: &Identity) -> Result<i64> {
    Ok(patients::create(state, caller, demographics(p, true)).await?.pid)
}

async fn registration(
    state: &AppState,
    caller: &Caller,
    r: &Registration,
    target: Target,
) -> Result<Outcome> {
    let update = |pid: i64| async move {
        patients::update(state, caller, Pid(pid), demographics(&r.patient, false)).await?;
        Ok(Outcome::Filed { pid, filed: format!("patient_data pid {pid} updated") })
    };
    let create = || async {
        let pid = register(state, caller, &r.patient).await?;
        Ok(Outcome::Filed { pid, filed: format!("patient_data pid {pid} registered") })
    };
    match target {
        Target::Patient(pid) => update(existing(state, pid).await?).await,
        Target::New => create().await,
        Target::Match => {
            let (pids, exact) = found(state, &r.patient).await?;
            if pids.is_empty() && r.event == AdtEvent::Register {
                return create().await;
            }
            match decide((pids, exact)) {
                Chart::Found(pid) => update(pid).await,
                Chart::Wait(outcome) => Ok(outcome),
            }
        }
    }
}

/// The global naming a category, else OpenEMR's default.
async fn category(state: &AppState, global: &str) -> Result<i64> {
    let name = globals::value(&state.pool, global).await?.filter(|n| !n.trim().is_empty());
    let name = name.unwrap_or_else(|| "Lab Report".into());
    let rows = document_rows::categories(&state.pool).await?;
    rows.into_iter().find(|c| c.name == name).map(|c| c.id).ok_or_else(|| {
        Hl7Error::Conflict(format!("OpenEMR has no document category {name:?} to file the document in"))
    })
}

/// A file into the patient's documents, as an upload is filed.
async fn file_document(
    state: &AppState,
    caller: &Caller,
    pid: i64,
    category: i64,
    name: String,
    mimetype: &str,
    bytes: Vec<u8>,
) -> Result<i64> {
    let mut upload = records::start_upload(state, caller, pid).await?;
    upload.write(bytes).await?;
    let form = UploadForm {
        category: Some(category),
        encounter: None,
        file_name: Some(name),
        content_type: Some(mimetype.into()),
        has_file: true,
    };
    Ok(records::finish_upload(state, caller, upload, form).await?.row.id)
}

/// `<name>_<YYYYmmddHHMMSS>.<ext>`, as `rhl7FlushMDM` names a document.
fn document_name(name: &str, d: &DocumentNotice, file: Option<&Encapsulated>) -> String {
    let at = d.at.map(|s| s.at).unwrap_or_else(wall_clock_now).format("%Y%m%d%H%M%S");
    let base: String = name.chars().filter(|c| !matches!(c, '/' | '\\')).take(200).collect();
    let base = if base.trim().is_empty() { "document".to_string() } else { base };
    format!("{base}_{at}.{}", file.map_or("txt", |f| f.extension.as_str()))
}

async fn document(state: &AppState, caller: &Caller, d: &DocumentNotice, target: Target) -> Result<Outcome> {
    let pid = match chart_of(state, caller, &d.patient, target).await? {
        Chart::Found(pid) => pid,
        Chart::Wait(outcome) => return Ok(outcome),
    };
    let category = category(state, "gbl_mdm_category_name").await?;
    let name = document_name(&d.name, d, d.file.as_ref());
    let (mimetype, bytes) = match &d.file {
        Some(f) => (f.mimetype, f.data.clone()),
        None => ("text/plain", d.text.clone().into_bytes()),
    };
    let id = file_document(state, caller, pid, category, name, mimetype, bytes).await?;
    let mut filed = format!("document {id}");
    if let Some(note) = tell_provider(state, caller, d, pid, id).await? {
        filed.push_str(&format!("; {note}"));
    }
    Ok(Outcome::Filed { pid, filed })
}

/// The pnote `rhl7FlushMDM` leaves the provider of PV1-8 (else PV1-52); a provider the sidecar
/// cannot reach is said in the answer, the document staying filed.
async fn tell_provider(
    state: &AppState,
    caller: &Caller,
    d: &DocumentNotice,
    pid: i64,
    document: i64,
) -> Result<Option<String>> {
    let mut username = None;
    for c in &d.providers {
        if let Some((_, name)) = users::clinician(&state.pool, &c.id, &c.family, &c.given).await? {
            username = Some(name);
            break;
        }
    }
    let Some(username) = username else { return Ok(None) };
    let input = MessageInput {
        to: vec![username.clone()],
        pid: Some(pid),
        title: Some("New Document".into()),
        text: Some(format!("New scanned document {document}\nElectronic document received")),
        status: Some("New".into()),
    };
    match messages::create(state, caller, input).await {
        Ok(threads) => Ok(threads.first().map(|t| format!("message {} to {username}", t.pnote.summary.id))),
        Err(MessageError::Storage(e)) => Err(e.into()),
        Err(e) => Ok(Some(format!("{username} was not messaged: {e}"))),
    }
}

/// The lab's order (ORC-2/OBR-2) names the patient: PID must agree by family name or birth date.
async fn order_patient(state: &AppState, order: i64, p: &Identity) -> Result<Chart> {
    let mut conn = state.pool.acquire().await.map_err(StorageError::from_sqlx)?;
    let Some(row) = procedures::order_for_update(&mut conn, order).await? else {
        return Ok(Chart::Wait(Outcome::Error(format!(
            "placer order {order} (ORC-2/OBR-2) is not an order in OpenEMR"
        ))));
    };
    let patient = patient_rows::get(&state.pool, Pid(row.patient_id)).await?;
    let agrees = patient.is_some_and(|pt| {
        (!p.family.is_empty() && pt.lname.eq_ignore_ascii_case(&p.family))
            || (p.birth_date.is_some() && pt.dob == p.birth_date)
    });
    Ok(match agrees {
        true => Chart::Found(row.patient_id),
        false => Chart::Wait(Outcome::Error(format!(
            "placer order {order} is another patient's: PID agrees with it neither by family name nor birth date"
        ))),
    })
}

async fn results(
    state: &AppState,
    caller: &Caller,
    header: &Header,
    r: &Results,
    target: Target,
) -> Result<Outcome> {
    let placed = r.reports.iter().find_map(|rep| rep.placer);
    let chart = match (target, placed) {
        (Target::Match, Some(order)) => order_patient(state, order, &r.patient).await?,
        (target, _) => chart_of(state, caller, &r.patient, target).await?,
    };
    let pid = match chart {
        Chart::Found(pid) => pid,
        Chart::Wait(outcome) => return Ok(outcome),
    };
    permission::require_on(state, caller, Aco::PATIENTS_LAB, AclLevel::Addonly, pid).await?;
    let files = result_documents(state, caller, pid, r).await?;
    // Finding or making a results-only order locks a gap of `procedure_order`'s patient index, which
    // concurrent filings for any patients share (the end of the index above all): left to race,
    // they deadlock one another again on every retry. This replica's filings take turns instead.
    let serial = match r.reports.iter().any(|rep| rep.placer.is_none()) {
        true => Some(Held::take(&state.pool, RESULTS_ONLY_LOCK, advisory_lock::WRITE_WAIT_SECS).await?),
        false => None,
    };
    let mut attempt = 1;
    let written = loop {
        match write_results(state, caller, header, pid, r, &files).await {
            // OpenEMR's own screens may still hold such a gap.
            Err(Hl7Error::Storage(e)) if e.is_deadlock() && attempt < WRITE_ATTEMPTS => attempt += 1,
            other => break other,
        }
    };
    let released = match serial {
        Some(held) => held.release().await,
        None => Ok(()),
    };
    if !matches!(written, Ok(Outcome::Filed { .. })) {
        withdraw(state, caller, pid, files.values().copied()).await?;
    }
    released?;
    written
}

/// A transaction that loses a deadlock is run again, this many times at most.
const WRITE_ATTEMPTS: u32 = 5;
/// The advisory lock results-only filings take turns at.
const RESULTS_ONLY_LOCK: &str = "mmt-hl7-results-only";

/// Soft-deletes (as OpenEMR deletes) the documents of results that were not filed: the sidecar's
/// own write taken back, so no `docs_rm` permission is asked of the sender.
async fn withdraw(state: &AppState, caller: &Caller, pid: i64, ids: impl Iterator<Item = i64>) -> Result<()> {
    let mut conn = state.pool.acquire().await.map_err(StorageError::from_sqlx)?;
    for id in ids {
        document_rows::soft_delete(&mut conn, id).await?;
        let comments =
            format!("mmt-sidecar withdrew document {id}: the HL7 results it came with were not filed");
        audit::record(state, &AuditEntry::phi(caller, "other-delete", "", Some(pid), comments)).await?;
    }
    Ok(())
}

/// The `ED` results' files, filed first (a file cannot join the transaction): report and result
/// index to document id. When one cannot be filed, those filed before it are withdrawn.
async fn result_documents(
    state: &AppState,
    caller: &Caller,
    pid: i64,
    r: &Results,
) -> Result<HashMap<(usize, usize), i64>> {
    let mut files = HashMap::new();
    let mut documents = Vec::new();
    for (i, report) in r.reports.iter().enumerate() {
        for (j, result) in report.results.iter().enumerate() {
            if let Some(file) = &result.document {
                documents.push(((i, j), report, result, file));
            }
        }
    }
    if documents.is_empty() {
        return Ok(files);
    }
    let category = category(state, "lab_results_category_name").await?;
    for (at_index, report, result, file) in documents {
        let label = if result.text.is_empty() { &report.procedure_name } else { &result.text };
        let at = report.reported.map(|s| s.at).unwrap_or_else(wall_clock_now).format("%Y%m%d%H%M%S");
        let name = format!("{}_{at}.{}", if label.is_empty() { "lab" } else { label }, file.extension);
        let name = name.replace(['/', '\\'], "-");
        match file_document(state, caller, pid, category, name, file.mimetype, file.data.clone()).await {
            Ok(id) => {
                files.insert(at_index, id);
            }
            Err(e) => {
                withdraw(state, caller, pid, files.values().copied()).await?;
                return Err(e);
            }
        }
    }
    Ok(files)
}

/// Every report and result of the message, or none of them.
async fn write_results(
    state: &AppState,
    caller: &Caller,
    header: &Header,
    pid: i64,
    r: &Results,
    files: &HashMap<(usize, usize), i64>,
) -> Result<Outcome> {
    let filer = users::by_id(&state.pool, caller.user_id).await?;
    let filer = Filer {
        username: &caller.username,
        groupname: &caller.auth_group,
        authorized: filer.is_some_and(|u| u.authorized),
    };
    let mut tx = state.pool.begin().await.map_err(StorageError::from_sqlx)?;
    let mut orders: HashMap<String, i64> = HashMap::new();
    let mut last_line: HashMap<i64, i32> = HashMap::new();
    let mut reports = Vec::new();
    for (i, report) in r.reports.iter().enumerate() {
        let order = match report.placer {
            Some(placer) => match procedures::order_for_update(&mut tx, placer).await? {
                Some(o) if o.patient_id == pid => o.procedure_order_id,
                _ => {
                    return Ok(Outcome::Error(format!(
                        "placer order {placer} (OBR {}) is not an order of this patient in OpenEMR",
                        i + 1
                    )));
                }
            },
            None => results_only_order(state, &mut tx, &mut orders, pid, report, &filer).await?,
        };
        let after = last_line.get(&order).copied().unwrap_or(0);
        let seq = match procedures::order_line(&mut tx, order, &report.procedure_code, after).await? {
            Some(seq) => seq,
            None => {
                procedures::add_order_line(&mut tx, order, &report.procedure_code, &report.procedure_name)
                    .await?
            }
        };
        last_line.insert(order, seq);
        let id = write_report(&mut tx, caller, order, seq, report, |j| files.get(&(i, j)).copied()).await?;
        reports.push(id.to_string());
    }
    let comments = format!(
        "mmt-sidecar filed HL7 {}^{} results as procedure_report {}",
        header.message_type,
        header.trigger,
        reports.join(", ")
    );
    let entry = AuditEntry::phi(caller, "patient-record-insert", "Lab Result", Some(pid), comments);
    audit_log::record(&mut tx, &entry).await?;
    tx.commit().await.map_err(StorageError::from_sqlx)?;
    Ok(Outcome::Filed { pid, filed: format!("procedure_report {}", reports.join(", ")) })
}

async fn write_report(
    tx: &mut sqlx::MySqlConnection,
    caller: &Caller,
    order: i64,
    seq: i32,
    report: &LabReport,
    document_of: impl Fn(usize) -> Option<i64>,
) -> Result<i64> {
    let (collected_tz, reported_tz) = (
        report.collected.map(|s| s.zone()).unwrap_or_default(),
        report.reported.map(|s| s.zone()).unwrap_or_default(),
    );
    let new = NewReport {
        order,
        seq,
        collected: report.collected.map(|s| s.at),
        collected_tz: &collected_tz,
        reported: report.reported.map(|s| s.at),
        reported_tz: &reported_tz,
        source: caller.user_id.0,
        specimen: &report.specimen,
        status: &report.status,
        notes: &report.notes,
    };
    let id = procedures::insert_report(&mut *tx, &new).await?;
    for (j, res) in report.results.iter().enumerate() {
        let row = NewResult {
            report: id,
            data_type: res.data_type,
            code: &res.code,
            text: &res.text,
            date: res.date.map(|s| s.at),
            units: &res.units,
            result: &res.result,
            range: &res.range,
            abnormal: &res.abnormal,
            comments: &res.comments,
            document_id: document_of(j).unwrap_or(0),
            status: &res.status,
        };
        procedures::insert_result(&mut *tx, &row).await?;
    }
    Ok(id)
}

/// Results without an OpenEMR order: the order made for the lab's number earlier, else a new
/// one in the patient's latest encounter of the last 30 days, as OpenEMR's results-only mode does.
async fn results_only_order(
    state: &AppState,
    tx: &mut sqlx::MySqlConnection,
    made: &mut HashMap<String, i64>,
    pid: i64,
    report: &LabReport,
    filer: &Filer<'_>,
) -> Result<i64> {
    if let Some(id) = made.get(&report.filler) {
        return Ok(*id);
    }
    if !report.filler.is_empty()
        && let Some(o) = procedures::order_by_control(&mut *tx, pid, &report.filler).await?
    {
        made.insert(report.filler.clone(), o.procedure_order_id);
        return Ok(o.procedure_order_id);
    }
    let at = report.collected.or(report.reported).map(|s| s.at).unwrap_or_else(wall_clock_now);
    let encounter = encounters::recent_before(&mut *tx, pid, at).await?;
    let o = &report.ordering;
    let ordering = match o.is_empty() {
        true => None,
        false => users::clinician(&state.pool, &o.id, &o.family, &o.given).await?.map(|(id, _)| id),
    };
    let order = NewOrder {
        pid,
        provider_id: ordering.or(encounter.map(|(_, provider)| provider)).unwrap_or(0),
        encounter_id: encounter.map_or(0, |(e, _)| e),
        ordered: report.collected.map(|s| s.at),
        collected: report.collected.map(|s| s.at),
        control_id: &report.filler,
    };
    let id = procedures::insert_order(&mut *tx, &order).await?;
    if encounter.is_some() {
        procedures::list_in_encounter(&mut *tx, &order, id, filer).await?;
    }
    made.insert(report.filler.clone(), id);
    Ok(id)
}

/// A page of kept messages, and the id to continue below when more may follow (rows the caller may
/// not see are left out of a page, so its length does not tell).
pub struct MessagePage {
    pub rows: Vec<MessageRow>,
    pub more_before: Option<u64>,
}

/// Kept messages as listed: only kinds the caller may receive and, of filed ones, only those about
/// patients the caller reaches (a filed message is its patient's record).
pub async fn list(
    state: &AppState,
    caller: &Caller,
    filter: Option<MessageState>,
    before: Option<u64>,
    limit: u32,
) -> Result<MessagePage> {
    let mut codes = Vec::new();
    for (code, aco) in KINDS {
        if !caller.is_guest() && state.acl.require(&caller.username, aco, AclLevel::Addonly).await.is_ok() {
            codes.push(code);
        }
    }
    if codes.is_empty() {
        permission::require(state, caller, Aco::PATIENTS_LAB, AclLevel::Addonly).await?;
    }
    let mut rows = store::list(&state.pool, &codes, filter.map(MessageState::as_str), before, limit).await?;
    let more_before = rows.last().map(|r| r.id).filter(|_| rows.len() == limit as usize);
    patient_access::retain_reachable(state, caller, &mut rows, |r| r.pid).await?;
    let comments = format!("mmt-sidecar listed {} received HL7 messages", rows.len());
    audit::record(state, &AuditEntry::phi(caller, "patient-record-select", "", None, comments)).await?;
    Ok(MessagePage { rows, more_before })
}

/// One kept message and its text as received.
pub async fn get(state: &AppState, caller: &Caller, id: u64) -> Result<(MessageRow, String)> {
    let row = readable(state, caller, id).await?;
    let raw = store::raw(&state.pool, &state.vault, id).await?;
    let comments = format!("mmt-sidecar read received HL7 message {id}");
    audit::record(state, &AuditEntry::phi(caller, "patient-record-select", "", row.pid, comments)).await?;
    Ok((row, raw))
}

async fn readable(state: &AppState, caller: &Caller, id: u64) -> Result<MessageRow> {
    let row = store::get(&state.pool, id).await?.ok_or(Hl7Error::NotFound(id))?;
    let code = row.message_type.split('^').next().unwrap_or_default();
    permission::require(state, caller, aco_of(code), AclLevel::Addonly).await?;
    // A filed message is that patient's record: the assigned-patient policy applies to it.
    if let Some(pid) = row.pid {
        permission::reach(state, caller, pid).await?;
    }
    Ok(row)
}

/// A person says which patient a queued message is about (`None`: register PID as a new
/// patient), and it is filed for them. The sender was answered when it arrived.
pub async fn resolve(state: &AppState, caller: &Caller, id: u64, pid: Option<i64>) -> Result<MessageRow> {
    readable(state, caller, id).await?;
    let held = Held::take(&state.pool, format!("mmt-hl7-{id}"), advisory_lock::WRITE_WAIT_SECS).await?;
    let resolved = resolve_held(state, caller, id, pid).await;
    let released = held.release().await;
    resolved?;
    released?;
    store::get(&state.pool, id).await?.ok_or(Hl7Error::NotFound(id))
}

async fn resolve_held(state: &AppState, caller: &Caller, id: u64, pid: Option<i64>) -> Result<()> {
    let row = store::get(&state.pool, id).await?.ok_or(Hl7Error::NotFound(id))?;
    let at = MessageState::parse(&row.state);
    if !at.is_some_and(MessageState::can_resolve) {
        return Err(Hl7Error::Conflict(format!(
            "message {id} is {}; only a queued message is filed for a chosen patient",
            row.state
        )));
    }
    let raw = store::raw(&state.pool, &state.vault, id).await?;
    let inbound = hl7_import::parse(&raw).map_err(|r| Hl7Error::Conflict(r.reason))?;
    let target = pid.map_or(Target::New, Target::Patient);
    match process(state, caller, &inbound, target).await? {
        outcome @ Outcome::Filed { .. } => {
            record(state, caller, id, &inbound.header, &outcome, &row.ack_text, Some(caller.user_id.0)).await
        }
        other => Err(Hl7Error::Conflict(other.text())),
    }
}
