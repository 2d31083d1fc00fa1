//! OpenEMR's Clinical Notes form (formdir `clinical_notes`), written as
//! interface/forms/clinical_notes/save.php and ClinicalNotesService write it.

use chrono::{NaiveDate, NaiveDateTime};
use sqlx::{MySqlConnection, MySqlPool};

use crate::storage::{StorageError, openemr::uuid_registry};

/// The note type's code and title from list `Clinical_Note_Type` (code kept in `notes`, e.g.
/// `LOINC:11506-3`).
pub async fn note_type(pool: &MySqlPool, option_id: &str) -> Result<Option<(String, String)>, StorageError> {
    sqlx::query_as(
        "SELECT COALESCE(notes, ''), title FROM list_options \
         WHERE list_id = 'Clinical_Note_Type' AND option_id = ? AND activity = 1",
    )
    .bind(option_id)
    .fetch_optional(pool)
    .await
    .map_err(StorageError::from_sqlx)
}

/// The encounter's Clinical Notes form, which OpenEMR reuses for every note of the encounter.
async fn existing_form(
    conn: &mut MySqlConnection,
    pid: i64,
    encounter: i64,
) -> Result<Option<i64>, StorageError> {
    sqlx::query_scalar(
        "SELECT form_id FROM forms WHERE formdir = 'clinical_notes' AND pid = ? AND encounter = ? AND deleted = 0 \
         ORDER BY id LIMIT 1",
    )
    .bind(pid)
    .bind(encounter)
    .fetch_optional(conn)
    .await
    .map_err(StorageError::from_sqlx)
}

pub struct NoteAuthor<'a> {
    pub username: &'a str,
    pub groupname: &'a str,
    pub authorized: bool,
}

pub struct Note<'a> {
    pub pid: i64,
    pub encounter: i64,
    pub date: NaiveDate,
    pub code: &'a str,
    pub codetext: &'a str,
    pub note_type: &'a str,
    pub text: &'a str,
    pub external_id: &'a str,
}

/// Serialises filings across replicas. The caller holds it from before reading the encounter's
/// form until after committing, so neither the form_id allocation (MAX+1, as OpenEMR allocates
/// it without any lock) nor the one-form-per-encounter check can see another filing half-done.
pub const FORM_LOCK: &str = "openemr_clinical_notes_form_id";

/// Reuses the encounter's form or adds one, then inserts the note. Returns (form_id, note id).
/// Must run under [`FORM_LOCK`].
pub async fn file(
    conn: &mut MySqlConnection,
    note: &Note<'_>,
    author: &NoteAuthor<'_>,
    now: NaiveDateTime,
) -> Result<(i64, i64), StorageError> {
    let form_id = match existing_form(conn, note.pid, note.encounter).await? {
        Some(id) => id,
        None => add_form(conn, note, author, now).await?,
    };
    let uuid = uuid_registry::create(conn, "form_clinical_notes", "id").await?;
    let done = sqlx::query(
        "INSERT INTO form_clinical_notes (form_id, uuid, date, pid, encounter, user, groupname, authorized, activity, \
         code, codetext, description, external_id, clinical_notes_type, clinical_notes_category, note_related_to) \
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, 1, ?, ?, ?, ?, ?, NULL, '')",
    )
    .bind(form_id)
    .bind(&uuid[..])
    .bind(note.date)
    .bind(note.pid)
    .bind(note.encounter.to_string())
    .bind(author.username)
    .bind(author.groupname)
    .bind(i8::from(author.authorized))
    .bind(note.code)
    .bind(note.codetext)
    .bind(note.text)
    .bind(note.external_id)
    .bind(note.note_type)
    .execute(&mut *conn)
    .await
    .map_err(StorageError::from_sqlx)?;
    Ok((form_id, done.last_insert_id() as i64))
}

async fn add_form(
    conn: &mut MySqlConnection,
    note: &Note<'_>,
    author: &NoteAuthor<'_>,
    now: NaiveDateTime,
) -> Result<i64, StorageError> {
    let id: i64 = sqlx::query_scalar("SELECT COALESCE(MAX(form_id), 0) + 1 FROM form_clinical_notes")
        .fetch_one(&mut *conn)
        .await
        .map_err(StorageError::from_sqlx)?;
    sqlx::query(
        "INSERT INTO forms (date, encounter, form_name, form_id, pid, user, groupname, authorized, deleted, formdir) \
         VALUES (?, ?, 'Clinical Notes Form', ?, ?, ?, ?, ?, 0, 'clinical_notes')",
    )
    .bind(now)
    .bind(note.encounter)
    .bind(id)
    .bind(note.pid)
    .bind(author.username)
    .bind(author.groupname)
    .bind(i8::from(author.authorized))
    .execute(conn)
    .await
    .map_err(StorageError::from_sqlx)?;
    Ok(id)
}

/// A filed note as OpenEMR's FHIR API reads it, with its encounter's and author's ids.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct NoteRow {
    pub id: i64,
    pub uuid: Option<Vec<u8>>,
    pub date: Option<NaiveDate>,
    pub pid: i64,
    pub encounter: i64,
    pub active: bool,
    pub code: Option<String>,
    pub codetext: Option<String>,
    pub description: Option<String>,
    pub last_updated: NaiveDateTime,
    pub patient_uuid: Option<Vec<u8>>,
    pub encounter_uuid: Option<Vec<u8>>,
    pub encounter_date: Option<NaiveDateTime>,
    pub author_uuid: Option<Vec<u8>>,
    pub author_npi: Option<String>,
}

/// Notes of no `clinical_notes_category`: OpenEMR serves the others as DiagnosticReports.
const NOTES: &str = "SELECT n.id, n.uuid, n.date, n.pid, fe.encounter, COALESCE(n.activity, 0) <> 0 AS active, \
     n.code, n.codetext, n.description, n.last_updated, p.uuid AS patient_uuid, fe.uuid AS encounter_uuid, \
     NULLIF(fe.date, '0000-00-00 00:00:00') AS encounter_date, u.uuid AS author_uuid, u.npi AS author_npi \
     FROM form_clinical_notes n \
     JOIN form_encounter fe ON fe.encounter = CAST(n.encounter AS SIGNED) AND fe.pid = n.pid \
     JOIN patient_data p ON p.pid = n.pid \
     LEFT JOIN users u ON u.username = n.user";

const UNCATEGORISED: &str = " AND (n.clinical_notes_category IS NULL OR n.clinical_notes_category = '')";

/// A patient's notes in the encounters `scope` lets the caller see, newest first.
pub async fn for_patient(
    pool: &MySqlPool,
    pid: crate::domain::patient::Pid,
    scope: &crate::storage::openemr::encounters::Scope,
) -> Result<Vec<NoteRow>, StorageError> {
    let mut q = sqlx::QueryBuilder::new(NOTES);
    crate::storage::openemr::encounters::push_patient_filter(&mut q, pid, scope);
    q.push(UNCATEGORISED).push(" ORDER BY n.date DESC, n.id DESC");
    q.build_query_as().fetch_all(pool).await.map_err(StorageError::from_sqlx)
}

pub async fn by_uuid(pool: &MySqlPool, uuid: &[u8; 16]) -> Result<Option<NoteRow>, StorageError> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!("{NOTES} WHERE n.uuid = ?{UNCATEGORISED}")))
        .bind(&uuid[..])
        .fetch_optional(pool)
        .await
        .map_err(StorageError::from_sqlx)
}

pub async fn by_id(pool: &MySqlPool, id: i64) -> Result<Option<NoteRow>, StorageError> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!("{NOTES} WHERE n.id = ?")))
        .bind(id)
        .fetch_optional(pool)
        .await
        .map_err(StorageError::from_sqlx)
}

/// The active note type whose code is `code` (`LOINC:…` as stored): (option id, title).
pub async fn note_type_of_code(
    pool: &MySqlPool,
    code: &str,
) -> Result<Option<(String, String)>, StorageError> {
    sqlx::query_as(
        "SELECT option_id, title FROM list_options \
         WHERE list_id = 'Clinical_Note_Type' AND notes = ? AND activity = 1 ORDER BY seq, option_id LIMIT 1",
    )
    .bind(code)
    .fetch_optional(pool)
    .await
    .map_err(StorageError::from_sqlx)
}
