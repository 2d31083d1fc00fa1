//! The dictation workflow: create, edit, review and file transcriptions into the OpenEMR chart.
//! Every state change locks the transcription row, so concurrent requests and replicas take turns.

use serde_json::json;
use sha2::{Digest, Sha256};

use crate::{
    app::AppState,
    domain::{
        acl::{AclLevel, Aco},
        messaging::notification::{NotificationKind, Subject, worth_telling},
        patient::Pid,
        transcription::{self, Action, IllegalTransition, Segment, TranscriptionId, TranscriptionStatus},
        user::Caller,
        validation::Issues,
        webhook::ChangeEvent,
    },
    service::{
        acl::AclError,
        audit,
        chart::clinical_notes::{self as notes, NoteKind, PROGRESS_NOTE},
        events,
        messaging::notifications,
        permission,
        webhooks::{self, Change},
    },
    storage::{
        StorageError, advisory_lock,
        mmt::transcriptions::{self as store, Details, ListFilters, RevisionRow, TranscriptionRow},
        openemr::{audit_log, clinical_notes, encounters, patients, users},
    },
};

#[derive(Debug, thiserror::Error)]
pub enum TranscriptionError {
    #[error("no transcription {0}")]
    NotFound(TranscriptionId),
    #[error("invalid transcription")]
    Invalid(Issues),
    #[error("{0}")]
    Conflict(String),
    #[error(transparent)]
    Illegal(#[from] IllegalTransition),
    #[error("the transcription changed since version {presented}; it is now version {current}")]
    Stale { presented: u32, current: u32 },
    #[error("edits must send If-Match with the transcription's current ETag (its version)")]
    PreconditionRequired,
    #[error(transparent)]
    Acl(#[from] AclError),
    #[error(transparent)]
    Storage(#[from] StorageError),
}

impl From<Issues> for TranscriptionError {
    fn from(issues: Issues) -> Self {
        Self::Invalid(issues)
    }
}

impl From<sqlx::Error> for TranscriptionError {
    fn from(e: sqlx::Error) -> Self {
        Self::Storage(StorageError::from_sqlx(e))
    }
}

type Result<T, E = TranscriptionError> = std::result::Result<T, E>;

pub(crate) use super::chart::clinical_notes::entry;

pub struct NewTranscriptionInput {
    pub id: TranscriptionId,
    pub pid: i64,
    pub encounter: Option<i64>,
    pub title: Option<String>,
    pub note_type: Option<String>,
    pub language: Option<String>,
    pub text: Option<String>,
    pub segments: Vec<transcription::SegmentInput>,
}

/// Field shapes of details a client may set, shared by create and edit.
fn check_details(issues: &mut Issues, d: &mut Details) {
    if let Some(t) = d.title.as_mut() {
        *t = issues.text("title", t, 0, 255);
    }
    if let Some(t) = d.language.as_mut() {
        *t = issues.text("language", t, 2, 16);
    }
    if let Some(t) = d.note_text.as_mut() {
        *t = issues.prose("text", t, 0, transcription::MAX_NOTE_BYTES);
        issues.within_bytes("text", t, transcription::MAX_NOTE_BYTES);
    }
}

/// Checks what the details point at; an encounter must also be one the caller may write into.
async fn check_references(
    state: &AppState,
    caller: &Caller,
    issues: &mut Issues,
    pid: i64,
    d: &Details,
) -> Result<()> {
    if patients::get(&state.pool, Pid(pid)).await?.is_none() {
        issues.add("pid", format!("no patient with pid {pid}"));
    }
    if let Some(Some(encounter)) = d.encounter {
        match encounters::get(&state.pool, encounter).await? {
            Some(e) if e.pid == pid => {
                super::encounters::require_access(state, caller, &e, AclLevel::View).await?;
            }
            Some(_) => issues.add("encounter", format!("encounter {encounter} belongs to another patient")),
            None => issues.add("encounter", format!("no encounter {encounter}")),
        }
    }
    if let Some(note_type) = &d.note_type
        && clinical_notes::note_type(&state.pool, note_type).await?.is_none()
    {
        issues.add("note_type", format!("{note_type} is not in OpenEMR's Clinical_Note_Type list"));
    }
    Ok(())
}

/// Creates a draft. The id is the client's, so a retry with the same body returns the original
/// (`false`: nothing new was created) and a different body under the same id is a 409.
pub async fn create(
    state: &AppState,
    caller: &Caller,
    input: NewTranscriptionInput,
) -> Result<(TranscriptionRow, bool)> {
    permission::require_on(state, caller, Aco::ENCOUNTERS_NOTES, AclLevel::Addonly, input.pid).await?;
    let mut issues = Issues::default();
    let segments = transcription::validate_segments(input.segments, &mut issues);
    let mut details = Details {
        title: Some(input.title.unwrap_or_default()),
        note_type: Some(input.note_type.unwrap_or_else(|| "progress_note".into())),
        language: Some(input.language.unwrap_or_else(|| "en".into())),
        note_text: Some(input.text.unwrap_or_else(|| transcription::text_from_segments(&segments))),
        encounter: Some(input.encounter),
    };
    check_details(&mut issues, &mut details);
    check_references(state, caller, &mut issues, input.pid, &details).await?;
    issues.into_result(())?;
    let digest = request_digest(input.pid, &details, &segments);
    if let Some(existing) = replay(state, caller, input.id, &digest).await? {
        return Ok((existing, false));
    }
    let text = details.note_text.clone().unwrap_or_default();
    let at = super::wall_clock_now();
    let mut tx = state.pool.begin().await?;
    let inserted = store::insert(
        &mut tx,
        &state.vault,
        &store::NewTranscription {
            id: input.id.0,
            pid: input.pid,
            encounter: input.encounter,
            author_id: caller.user_id.0,
            title: details.title.as_deref().unwrap_or_default(),
            note_type: details.note_type.as_deref().unwrap_or_default(),
            language: details.language.as_deref().unwrap_or_default(),
            note_text: &text,
            create_digest: digest,
            now: at,
        },
    )
    .await;
    if let Err(e) = &inserted
        && e.is_retryable_conflict()
    {
        drop(tx);
        // Another request with this id won the race: answer as for any retry.
        return replay(state, caller, input.id, &digest)
            .await?
            .map(|row| (row, false))
            .ok_or_else(|| clash(input.id));
    }
    inserted?;
    store::upsert_segments(&mut tx, &state.vault, &input.id.0, &segments).await?;
    store::append_revision(&mut tx, &state.vault, &input.id.0, &text, caller.user_id.0, "created", at)
        .await?;
    audit_log::record(
        &mut tx,
        &entry(
            caller,
            "patient-record-insert",
            input.pid,
            format!("mmt-sidecar created transcription {}", input.id),
        ),
    )
    .await?;
    let event =
        webhooks::record(&mut tx, change(ChangeEvent::TranscriptionCreated, input.id, input.pid)).await?;
    tx.commit().await?;
    webhooks::committed(state, event);
    let row = store::get(&state.pool, &state.vault, &input.id.0)
        .await?
        .ok_or(TranscriptionError::NotFound(input.id))?;
    Ok((row, true))
}

fn clash(id: TranscriptionId) -> TranscriptionError {
    TranscriptionError::Conflict(format!(
        "transcription {id} already exists with different content; use a new id"
    ))
}

/// The original of a resent create, which discloses the note again and so is audited as a read.
async fn replay(
    state: &AppState,
    caller: &Caller,
    id: TranscriptionId,
    digest: &[u8; 32],
) -> Result<Option<TranscriptionRow>> {
    match store::get(&state.pool, &state.vault, &id.0).await? {
        None => Ok(None),
        Some(row) if row.create_digest == digest && row.author_id == caller.user_id.0 => {
            let comments = format!("mmt-sidecar resent create of transcription {id}: original returned");
            audit::record(state, &entry(caller, "patient-record-select", row.pid, comments)).await?;
            Ok(Some(row))
        }
        Some(_) => Err(clash(id)),
    }
}

fn request_digest(pid: i64, d: &Details, segments: &[Segment]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(format!(
        "{pid}|{:?}|{:?}|{:?}|{:?}|{:?}|",
        d.encounter, d.title, d.note_type, d.language, d.note_text
    ));
    for s in segments {
        h.update(format!("{s:?}|"));
    }
    h.finalize().into()
}

/// Authors read their own while they hold `encounters|notes`; anyone else needs
/// `encounters|notes_a`. Checked on every operation, so a revoked permission takes effect at once.
pub(crate) async fn readable(
    state: &AppState,
    caller: &Caller,
    id: TranscriptionId,
) -> Result<TranscriptionRow> {
    let row = store::get(&state.pool, &state.vault, &id.0).await?.ok_or(TranscriptionError::NotFound(id))?;
    let aco = if is_author(caller, &row) { Aco::ENCOUNTERS_NOTES } else { Aco::ENCOUNTERS_NOTES_A };
    permission::require_on(state, caller, aco, AclLevel::View, row.pid).await?;
    Ok(row)
}

fn is_author(caller: &Caller, row: &TranscriptionRow) -> bool {
    row.author_id == caller.user_id.0 && !caller.is_guest()
}

pub async fn get(
    state: &AppState,
    caller: &Caller,
    id: TranscriptionId,
) -> Result<(TranscriptionRow, Vec<Segment>)> {
    let row = readable(state, caller, id).await?;
    let segments = store::segments(&state.pool, &state.vault, &id.0).await?;
    audit::record(
        state,
        &entry(caller, "patient-record-select", row.pid, format!("mmt-sidecar read transcription {id}")),
    )
    .await?;
    Ok((row, segments))
}

pub async fn revisions(state: &AppState, caller: &Caller, id: TranscriptionId) -> Result<Vec<RevisionRow>> {
    let row = readable(state, caller, id).await?;
    let revisions = store::revisions(&state.pool, &state.vault, &id.0).await?;
    audit::record(
        state,
        &entry(
            caller,
            "patient-record-select",
            row.pid,
            format!("mmt-sidecar read revisions of transcription {id}"),
        ),
    )
    .await?;
    Ok(revisions)
}

/// Lists what the caller may read: everything with `encounters|notes_a`, else their own.
pub async fn list(
    state: &AppState,
    caller: &Caller,
    mut filters: ListFilters,
    limit: u32,
    offset: u64,
) -> Result<(Vec<TranscriptionRow>, i64)> {
    let everyone = !caller.is_guest()
        && state.acl.permissions(&caller.username).await?.allows(Aco::ENCOUNTERS_NOTES_A, AclLevel::View);
    if !everyone {
        permission::require(state, caller, Aco::ENCOUNTERS_NOTES, AclLevel::View).await?;
        filters.only_author = Some(caller.user_id.0);
    }
    if let Some(pid) = filters.pid {
        permission::reach(state, caller, pid).await?;
    }
    filters.reach = super::patient_access::list_filter(state, caller).await?;
    let total = store::count(&state.pool, &filters).await?;
    let rows = store::list(&state.pool, &state.vault, &filters, limit, offset).await?;
    let ids = rows
        .iter()
        .filter_map(|r| TranscriptionId::from_bytes(&r.id))
        .map(|i| i.to_string())
        .collect::<Vec<_>>();
    let mut pids: Vec<i64> = rows.iter().map(|r| r.pid).collect();
    pids.sort_unstable();
    pids.dedup();
    let listed = pids.iter().map(i64::to_string).collect::<Vec<_>>().join(",");
    let comments = format!("mmt-sidecar listed transcriptions [{}] of pids [{listed}]", ids.join(","));
    let mut listing = entry(caller, "patient-record-select", 0, comments);
    listing.patient_id = filters.pid.or(match pids[..] {
        [only] => Some(only),
        _ => None,
    });
    audit::record(state, &listing).await?;
    Ok((rows, total))
}

async fn lock(
    conn: &mut sqlx::MySqlConnection,
    state: &AppState,
    id: TranscriptionId,
) -> Result<TranscriptionRow> {
    store::lock(conn, &state.vault, &id.0).await?.ok_or(TranscriptionError::NotFound(id))
}

/// Checks the caller's `If-Match` against the version. Runs after the permission check, so the
/// version is never told to someone who may not act on the row.
fn check_version(row: &TranscriptionRow, if_match: Option<u32>, required: bool) -> Result<()> {
    match if_match {
        None if required => Err(TranscriptionError::PreconditionRequired),
        Some(presented) if presented != row.version => {
            Err(TranscriptionError::Stale { presented, current: row.version })
        }
        _ => Ok(()),
    }
}

/// Authors change their own while they hold `encounters|notes` (as to create); anyone else must
/// be an administrator.
pub(crate) async fn require_author(state: &AppState, caller: &Caller, row: &TranscriptionRow) -> Result<()> {
    if is_author(caller, row) {
        permission::require_on(state, caller, Aco::ENCOUNTERS_NOTES, AclLevel::Addonly, row.pid).await?;
    } else {
        permission::require_on(state, caller, Aco::ADMIN_SUPER, AclLevel::Write, row.pid).await?;
    }
    Ok(())
}

/// The transcription, once the caller may change it (its author, or an administrator) and it is
/// still a draft.
pub(crate) async fn editable_by_author(
    state: &AppState,
    caller: &Caller,
    id: TranscriptionId,
) -> Result<TranscriptionRow> {
    let row = store::get(&state.pool, &state.vault, &id.0).await?.ok_or(TranscriptionError::NotFound(id))?;
    require_author(state, caller, &row).await?;
    ensure_editable(&row)?;
    Ok(row)
}

fn ensure_editable(row: &TranscriptionRow) -> Result<()> {
    if row.status().is_editable() {
        return Ok(());
    }
    Err(TranscriptionError::Conflict(format!(
        "a transcription that is {} cannot be edited; only drafts can (reopen a rejected one first)",
        row.status()
    )))
}

/// Edits a draft's details; a text change is kept in the revision history.
pub async fn edit(
    state: &AppState,
    caller: &Caller,
    id: TranscriptionId,
    if_match: Option<u32>,
    mut changes: Details,
    reason: &str,
) -> Result<TranscriptionRow> {
    let mut issues = Issues::default();
    check_details(&mut issues, &mut changes);
    let reason = issues.text("reason", reason, 0, 255);
    let mut tx = state.pool.begin().await?;
    let row = lock(&mut tx, state, id).await?;
    require_author(state, caller, &row).await?;
    // The content is judged before the precondition: a malformed edit is a 422 whatever its tag.
    check_references(state, caller, &mut issues, row.pid, &changes).await?;
    issues.into_result(())?;
    check_version(&row, if_match, true)?;
    ensure_editable(&row)?;
    let at = super::wall_clock_now();
    store::update_details(&mut tx, &state.vault, &id.0, &changes, at).await?;
    if let Some(text) = changes.note_text.as_deref().filter(|t| *t != row.note_text) {
        store::append_revision(&mut tx, &state.vault, &id.0, text, caller.user_id.0, &reason, at).await?;
    }
    audit_log::record(
        &mut tx,
        &entry(caller, "patient-record-update", row.pid, format!("mmt-sidecar edited transcription {id}")),
    )
    .await?;
    tx.commit().await?;
    store::get(&state.pool, &state.vault, &id.0).await?.ok_or(TranscriptionError::NotFound(id))
}

/// Adds segments (same `seq` replaces) or, with `replace`, swaps the whole set.
pub async fn put_segments(
    state: &AppState,
    caller: &Caller,
    id: TranscriptionId,
    if_match: Option<u32>,
    inputs: Vec<transcription::SegmentInput>,
    replace: bool,
) -> Result<(TranscriptionRow, Vec<Segment>)> {
    let mut issues = Issues::default();
    let segments = transcription::validate_segments(inputs, &mut issues);
    issues.into_result(())?;
    let mut tx = state.pool.begin().await?;
    let row = lock(&mut tx, state, id).await?;
    require_author(state, caller, &row).await?;
    check_version(&row, if_match, false)?;
    ensure_editable(&row)?;
    if replace {
        store::delete_segments(&mut tx, &id.0).await?;
    }
    store::upsert_segments(&mut tx, &state.vault, &id.0, &segments).await?;
    store::touch(&mut tx, &id.0, super::wall_clock_now()).await?;
    audit_log::record(
        &mut tx,
        &entry(
            caller,
            "patient-record-update",
            row.pid,
            format!("mmt-sidecar changed segments of transcription {id}"),
        ),
    )
    .await?;
    tx.commit().await?;
    let row = store::get(&state.pool, &state.vault, &id.0).await?.ok_or(TranscriptionError::NotFound(id))?;
    Ok((row, store::segments(&state.pool, &state.vault, &id.0).await?))
}

/// May the caller sign off on this note? `encounters|notes_a`, or `encounters|notes` when the
/// encounter is theirs (or, with no encounter yet, the note is).
async fn require_reviewer(state: &AppState, caller: &Caller, row: &TranscriptionRow) -> Result<()> {
    permission::reach(state, caller, row.pid).await?;
    if !caller.is_guest()
        && state.acl.permissions(&caller.username).await?.allows(Aco::ENCOUNTERS_NOTES_A, AclLevel::Write)
    {
        return Ok(());
    }
    permission::require(state, caller, Aco::ENCOUNTERS_NOTES, AclLevel::Write).await?;
    let own = match row.encounter {
        Some(number) => encounters::get(&state.pool, number)
            .await?
            .is_some_and(|e| i64::from(e.provider_id.unwrap_or_default()) == caller.user_id.0),
        None => row.author_id == caller.user_id.0,
    };
    if !own {
        permission::require(state, caller, Aco::ENCOUNTERS_NOTES_A, AclLevel::Write).await?;
    }
    Ok(())
}

/// A rejection's reason is kept in a TEXT column; this many characters always fit.
const MAX_REASON_CHARS: usize = 4_000;

/// Submit, approve, reject, reopen or cancel.
pub async fn act(
    state: &AppState,
    caller: &Caller,
    id: TranscriptionId,
    action: Action,
    if_match: Option<u32>,
    reason: Option<String>,
) -> Result<TranscriptionRow> {
    let mut issues = Issues::default();
    let reason = reason.map(|r| issues.prose("reason", &r, 0, MAX_REASON_CHARS)).filter(|r| !r.is_empty());
    if action == Action::Reject && reason.is_none() {
        issues.add("reason", "is required to reject a transcription");
    }
    issues.into_result(())?;
    let mut tx = state.pool.begin().await?;
    let row = lock(&mut tx, state, id).await?;
    match action {
        Action::Approve | Action::Reject => require_reviewer(state, caller, &row).await?,
        _ => require_author(state, caller, &row).await?,
    }
    check_version(&row, if_match, false)?;
    let to = transcription::transition(row.status(), action)?;
    store::set_status(
        &mut tx,
        &state.vault,
        &id.0,
        to,
        caller.user_id.0,
        reason.as_deref().filter(|_| action == Action::Reject),
        super::wall_clock_now(),
    )
    .await?;
    let comments = format!("mmt-sidecar transcription {id}: {} ({} -> {to})", action.as_str(), row.status());
    audit_log::record(&mut tx, &entry(caller, "patient-record-update", row.pid, comments)).await?;
    let event = webhooks::record(&mut tx, change(change_of(action), id, row.pid)).await?;
    let sent_back = if action == Action::Reject && worth_telling(row.author_id, caller.user_id.0) {
        let subject = Subject::Transcription(id.to_string());
        let kind = NotificationKind::TranscriptionChangesRequested;
        Some(notifications::notify(&mut tx, row.author_id, kind, &subject, &caller.username).await?)
    } else {
        None
    };
    tx.commit().await?;
    webhooks::committed(state, event);
    if let Some(told) = sent_back {
        events::publish_committed(state, told);
    }
    store::get(&state.pool, &state.vault, &id.0).await?.ok_or(TranscriptionError::NotFound(id))
}

/// Files the approved note into the encounter's Clinical Notes form and marks it filed, in one
/// transaction. Filing again returns the filed transcription unchanged: one note, however many
/// calls or replicas.
pub async fn file(state: &AppState, caller: &Caller, id: TranscriptionId) -> Result<TranscriptionRow> {
    // Taken before any row lock (so lock order is always the same) and held through the commit.
    let mut held =
        advisory_lock::Held::take(&state.pool, clinical_notes::FORM_LOCK, advisory_lock::WRITE_WAIT_SECS)
            .await?;
    let filed = file_holding_lock(state, caller, id, held.conn()).await;
    held.release().await?;
    filed
}

async fn file_holding_lock(
    state: &AppState,
    caller: &Caller,
    id: TranscriptionId,
    conn: &mut sqlx::MySqlConnection,
) -> Result<TranscriptionRow> {
    let mut tx = sqlx::Connection::begin(conn).await?;
    let row = lock(&mut tx, state, id).await?;
    require_reviewer(state, caller, &row).await?;
    if row.status() == TranscriptionStatus::Filed {
        let comments = format!("mmt-sidecar repeated filing of transcription {id}: filed note returned");
        audit_log::record(&mut tx, &entry(caller, "patient-record-select", row.pid, comments)).await?;
        tx.commit().await?;
        return Ok(row);
    }
    transcription::transition(row.status(), Action::File)?;
    let Some(number) = row.encounter else {
        return Err(TranscriptionError::Conflict(
            "the transcription has no encounter to file into; set `encounter` first".into(),
        ));
    };
    match encounters::get_in(&mut tx, number).await? {
        Some(e) if e.pid == row.pid => {
            super::encounters::require_access(state, caller, &e, AclLevel::View).await?;
        }
        _ => {
            return Err(TranscriptionError::Conflict(format!(
                "encounter {number} no longer exists for pid {}; nothing was filed",
                row.pid
            )));
        }
    }
    let (code, codetext) = clinical_notes::note_type(&state.pool, &row.note_type)
        .await?
        .unwrap_or_else(|| (PROGRESS_NOTE.0.into(), PROGRESS_NOTE.1.into()));
    let author =
        users::by_id(&state.pool, crate::domain::user::UserId(row.author_id)).await?.ok_or_else(|| {
            TranscriptionError::Conflict("the transcription's author is no longer an OpenEMR user".into())
        })?;
    let at = super::wall_clock_now();
    let kind = NoteKind { option_id: &row.note_type, code: &code, codetext: &codetext };
    let (form_id, note_id) =
        notes::write(&mut tx, &author, (row.pid, number), &kind, &row.note_text, &id.external_id(), at)
            .await?;
    store::set_status(&mut tx, &state.vault, &id.0, TranscriptionStatus::Filed, caller.user_id.0, None, at)
        .await?;
    store::set_filed_note(&mut tx, &id.0, form_id, note_id).await?;
    let comments =
        format!("mmt-sidecar filed transcription {id} as clinical note {note_id} in encounter {number}");
    audit_log::record(&mut tx, &entry(caller, "patient-record-insert", row.pid, comments)).await?;
    let mut filed = change(ChangeEvent::TranscriptionFiled, id, row.pid);
    filed.data = json!({ "transcription_id": id.to_string(), "encounter": number, "note_id": note_id });
    let event = webhooks::record(&mut tx, filed).await?;
    super::hl7::queue_send(&mut tx, state, caller, id, row.pid).await?;
    tx.commit().await?;
    webhooks::committed(state, event);
    super::jobs::wake(state);
    store::get(&state.pool, &state.vault, &id.0).await?.ok_or(TranscriptionError::NotFound(id))
}

fn change(event: ChangeEvent, id: TranscriptionId, pid: i64) -> Change {
    Change { event, pid: Some(pid), data: json!({ "transcription_id": id.to_string() }) }
}

fn change_of(action: Action) -> ChangeEvent {
    match action {
        Action::Submit => ChangeEvent::TranscriptionSubmitted,
        Action::Approve => ChangeEvent::TranscriptionApproved,
        Action::Reject => ChangeEvent::TranscriptionRejected,
        Action::Reopen => ChangeEvent::TranscriptionReopened,
        Action::Cancel => ChangeEvent::TranscriptionCancelled,
        Action::File => ChangeEvent::TranscriptionFiled,
    }
}
