//! Clinical notes (OpenEMR's Clinical Notes form): read under their encounter's rights, and filed
//! as OpenEMR's form files them, by the transcription workflow and by FHIR `DocumentReference`.

use chrono::NaiveDateTime;

use crate::{
    app::AppState,
    domain::{
        acl::AclLevel, audit::AuditEntry, patient::Pid, transcription::MAX_NOTE_BYTES, user::Caller,
        validation::Issues,
    },
    service::{
        audit,
        encounters::{require_access, scope},
        permission, wall_clock_now,
    },
    storage::{
        StorageError, advisory_lock,
        openemr::{
            audit_log,
            clinical_notes::{self as store, Note, NoteAuthor, NoteRow},
            encounters, users,
            users::UserRecord,
        },
    },
};

use super::ChartError;

type Result<T, E = ChartError> = std::result::Result<T, E>;

/// The note type transcriptions are filed as when their own is no longer in the list.
pub const PROGRESS_NOTE: (&str, &str) = ("LOINC:11506-3", "Progress Note");

pub(crate) fn entry(caller: &Caller, event: &str, pid: i64, comments: String) -> AuditEntry {
    AuditEntry::phi(caller, event, "Clinical Note", Some(pid), comments)
}

/// What a note is filed as: the `Clinical_Note_Type` option and its code and title.
pub struct NoteKind<'a> {
    pub option_id: &'a str,
    pub code: &'a str,
    pub codetext: &'a str,
}

/// Writes the note into the encounter's Clinical Notes form as `author` wrote it, inside the
/// caller's transaction, which must hold [`store::FORM_LOCK`]. Returns (form_id, note id).
pub(crate) async fn write(
    conn: &mut sqlx::MySqlConnection,
    author: &UserRecord,
    (pid, encounter): (i64, i64),
    kind: &NoteKind<'_>,
    text: &str,
    external_id: &str,
    at: NaiveDateTime,
) -> Result<(i64, i64), StorageError> {
    let note = Note {
        pid,
        encounter,
        date: at.date(),
        code: kind.code,
        codetext: kind.codetext,
        note_type: kind.option_id,
        text,
        external_id,
    };
    let group = author.auth_group.clone().unwrap_or_else(|| "Default".into());
    let note_author =
        NoteAuthor { username: &author.username, groupname: &group, authorized: author.authorized };
    store::file(conn, &note, &note_author, at).await
}

/// A patient's clinical notes in the encounters the caller may see; audited.
pub async fn list(state: &AppState, caller: &Caller, pid: Pid) -> Result<Vec<NoteRow>> {
    let scope = scope(state, caller, AclLevel::View).await?;
    permission::reach(state, caller, pid.0).await?;
    let rows = store::for_patient(&state.pool, pid, &scope).await?;
    let listed = rows.iter().map(|r| r.id.to_string()).collect::<Vec<_>>().join(",");
    let comments = format!("mmt-sidecar listed clinical notes of pid {pid}: [{listed}]");
    audit::record(state, &entry(caller, "patient-record-select", pid.0, comments)).await?;
    Ok(rows)
}

/// The note OpenEMR's FHIR API knows by `uuid`, under its encounter's rights; audited.
pub async fn get_by_uuid(state: &AppState, caller: &Caller, uuid: &[u8; 16]) -> Result<NoteRow> {
    let missing = || ChartError::NotFound("no clinical note with this id".into());
    let row = store::by_uuid(&state.pool, uuid).await?.ok_or_else(missing)?;
    let encounter = encounters::get(&state.pool, row.encounter).await?.ok_or_else(missing)?;
    require_access(state, caller, &encounter, AclLevel::View).await?;
    let comments = format!("mmt-sidecar read clinical note {}", row.id);
    audit::record(state, &entry(caller, "patient-record-select", row.pid, comments)).await?;
    Ok(row)
}

/// A note written directly (not dictated) into one of the patient's encounters.
pub struct NewNote {
    pub pid: Pid,
    pub encounter: [u8; 16],
    /// `LOINC:…`, as `Clinical_Note_Type` stores codes; progress note when absent.
    pub code: Option<String>,
    pub text: String,
}

/// Files the note by the caller into the encounter's Clinical Notes form, as a transcription is
/// filed (the same form lock, one transaction with its audit row). Needs the encounter's rights
/// to add a form.
pub async fn create(state: &AppState, caller: &Caller, input: NewNote) -> Result<NoteRow> {
    // The checks a transcription's text gets before it is filed.
    let mut issues = Issues::default();
    let text = issues.prose("text", &input.text, 1, MAX_NOTE_BYTES);
    issues.within_bytes("text", &text, MAX_NOTE_BYTES);
    let code = input.code.as_deref().unwrap_or(PROGRESS_NOTE.0);
    let kind = store::note_type_of_code(&state.pool, code).await?;
    if kind.is_none() {
        issues.add("type", format!("{code} is not an active type of OpenEMR's Clinical_Note_Type list"));
    }
    let number = encounters::number_by_uuid(&state.pool, &input.encounter).await?;
    let encounter = match number {
        Some(n) => encounters::get(&state.pool, n).await?.filter(|e| e.pid == input.pid.0),
        None => None,
    };
    if encounter.is_none() {
        issues.add("encounter", "names no encounter of this patient");
    }
    let (Some(encounter), Some((option_id, codetext))) = (encounter, kind) else {
        return Err(issues.into());
    };
    issues.into_result(())?;
    require_access(state, caller, &encounter, AclLevel::Addonly).await?;
    let author = users::by_id(&state.pool, caller.user_id)
        .await?
        .ok_or_else(|| ChartError::Conflict("the caller is no longer an OpenEMR user".into()))?;
    let kind = NoteKind { option_id: &option_id, code, codetext: &codetext };
    let mut held =
        advisory_lock::Held::take(&state.pool, store::FORM_LOCK, advisory_lock::WRITE_WAIT_SECS).await?;
    let filed = file_holding_lock(caller, &author, &encounter, &kind, &text, held.conn()).await;
    held.release().await?;
    let note_id = filed?;
    store::by_id(&state.pool, note_id)
        .await?
        .ok_or_else(|| ChartError::NotFound("the filed note could not be read back".into()))
}

async fn file_holding_lock(
    caller: &Caller,
    author: &UserRecord,
    encounter: &encounters::EncounterRow,
    kind: &NoteKind<'_>,
    text: &str,
    conn: &mut sqlx::MySqlConnection,
) -> Result<i64> {
    let mut tx = sqlx::Connection::begin(conn).await?;
    let at = wall_clock_now();
    let at_encounter = (encounter.pid, encounter.encounter);
    let (_, note_id) = write(&mut tx, author, at_encounter, kind, text, "", at).await?;
    let comments = format!("mmt-sidecar wrote clinical note {note_id} in encounter {}", encounter.encounter);
    audit_log::record(&mut tx, &entry(caller, "patient-record-insert", encounter.pid, comments)).await?;
    tx.commit().await?;
    Ok(note_id)
}
