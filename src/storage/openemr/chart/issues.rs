//! `lists` rows as PatientIssuesService::createIssue writes them (but with a uuid and a correct
//! `date`), the `lists_medication` companion as MedicationPatientIssueService writes it,
//! `issue_encounter` links and the `lists_touch` marker (setListTouch).

use chrono::NaiveDateTime;
use sqlx::{MySqlConnection, MySqlPool, QueryBuilder};

use crate::{
    domain::{chart::issues::IssueType, patient::Pid},
    storage::{StorageError, openemr::uuid_registry},
};

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct IssueRow {
    pub id: i64,
    pub uuid: Option<Vec<u8>>,
    pub date: Option<NaiveDateTime>,
    #[sqlx(rename = "type")]
    pub kind: Option<String>,
    pub title: Option<String>,
    pub begdate: Option<NaiveDateTime>,
    pub enddate: Option<NaiveDateTime>,
    pub diagnosis: Option<String>,
    pub activity: Option<i8>,
    pub comments: Option<String>,
    pub pid: Option<i64>,
    pub user: Option<String>,
    pub outcome: i32,
    pub occurrence: Option<i32>,
    pub reaction: String,
    pub verification: String,
    pub severity_al: Option<String>,
    pub modifydate: NaiveDateTime,
    pub drug_dosage_instructions: Option<String>,
    pub usage_category: Option<String>,
    pub request_intent: Option<String>,
}

const SELECT: &str = "SELECT l.id, l.uuid, l.date, l.type, l.title, l.begdate, l.enddate, l.diagnosis, l.activity, \
     l.comments, l.pid, l.user, l.outcome, l.occurrence, l.reaction, l.verification, l.severity_al, CAST(l.modifydate AS DATETIME) AS modifydate, \
     m.drug_dosage_instructions, m.usage_category, m.request_intent \
     FROM lists l LEFT JOIN lists_medication m ON m.id = \
     (SELECT MIN(m2.id) FROM lists_medication m2 WHERE m2.list_id = l.id)";

/// Everything the add/edit issue screen sets.
pub struct IssueValues {
    pub title: String,
    pub begdate: Option<NaiveDateTime>,
    pub enddate: Option<NaiveDateTime>,
    pub diagnosis: String,
    pub comments: String,
    pub outcome: i32,
    pub occurrence: i32,
    pub reaction: String,
    pub verification: String,
    pub severity_al: Option<String>,
}

pub struct Author<'a> {
    pub username: &'a str,
    pub groupname: &'a str,
}

pub async fn insert(
    conn: &mut MySqlConnection,
    pid: Pid,
    kind: IssueType,
    v: &IssueValues,
    author: &Author<'_>,
    now: NaiveDateTime,
) -> Result<i64, StorageError> {
    let uuid = uuid_registry::create(conn, "lists", "id").await?;
    let done = sqlx::query(
        "INSERT INTO lists (uuid, date, type, begdate, enddate, returndate, erx_uploaded, pid, title, comments, \
         diagnosis, occurrence, classification, reinjury_id, referredby, injury_grade, outcome, destination, \
         reaction, verification, severity_al, list_option_id, subtype, activity, user, groupname) \
         VALUES (?, ?, ?, ?, ?, NULL, '0', ?, ?, ?, ?, ?, 0, 0, '', '', ?, '', ?, ?, ?, NULL, '', 1, ?, ?)",
    )
    .bind(&uuid[..])
    .bind(now)
    .bind(kind.db_type())
    .bind(v.begdate)
    .bind(v.enddate)
    .bind(pid.0)
    .bind(&v.title)
    .bind(&v.comments)
    .bind(&v.diagnosis)
    .bind(v.occurrence)
    .bind(v.outcome)
    .bind(&v.reaction)
    .bind(&v.verification)
    .bind(&v.severity_al)
    .bind(author.username)
    .bind(author.groupname)
    .execute(&mut *conn)
    .await
    .map_err(StorageError::from_sqlx)?;
    Ok(done.last_insert_id() as i64)
}

/// The editable columns; `activity` is 1 for a current issue, as the issue screen saves it.
pub async fn update(conn: &mut MySqlConnection, id: i64, v: &IssueValues) -> Result<(), StorageError> {
    sqlx::query(
        "UPDATE lists SET title = ?, begdate = ?, enddate = ?, diagnosis = ?, comments = ?, outcome = ?, \
         occurrence = ?, reaction = ?, verification = ?, severity_al = ?, activity = 1 WHERE id = ?",
    )
    .bind(&v.title)
    .bind(v.begdate)
    .bind(v.enddate)
    .bind(&v.diagnosis)
    .bind(&v.comments)
    .bind(v.outcome)
    .bind(v.occurrence)
    .bind(&v.reaction)
    .bind(&v.verification)
    .bind(&v.severity_al)
    .bind(id)
    .execute(conn)
    .await
    .map_err(StorageError::from_sqlx)?;
    Ok(())
}

/// A medication's dosage and list options; titles archived from list_options as
/// MedicationPatientIssueService::populateListOptionValues does ('' when none is chosen).
pub struct MedicationValues {
    pub dosage: String,
    pub usage_category: Option<(String, String)>,
    pub request_intent: Option<(String, String)>,
}

pub async fn upsert_medication(
    conn: &mut MySqlConnection,
    list_id: i64,
    m: &MedicationValues,
) -> Result<(), StorageError> {
    let existing: Option<i64> = sqlx::query_scalar("SELECT MIN(id) FROM lists_medication WHERE list_id = ?")
        .bind(list_id)
        .fetch_one(&mut *conn)
        .await
        .map_err(StorageError::from_sqlx)?;
    let split = |o: &Option<(String, String)>| {
        (o.as_ref().map(|(id, _)| id.clone()), o.as_ref().map(|(_, t)| t.clone()).unwrap_or_default())
    };
    let (usage, usage_title) = split(&m.usage_category);
    let (intent, intent_title) = split(&m.request_intent);
    let sql = if existing.is_some() {
        "UPDATE lists_medication SET drug_dosage_instructions = ?, usage_category = ?, usage_category_title = ?, \
         request_intent = ?, request_intent_title = ? WHERE id = ?"
    } else {
        "INSERT INTO lists_medication (drug_dosage_instructions, usage_category, usage_category_title, request_intent, \
         request_intent_title, list_id) VALUES (?, ?, ?, ?, ?, ?)"
    };
    sqlx::query(sql)
        .bind(&m.dosage)
        .bind(usage)
        .bind(usage_title)
        .bind(intent)
        .bind(intent_title)
        .bind(existing.unwrap_or(list_id))
        .execute(conn)
        .await
        .map_err(StorageError::from_sqlx)?;
    Ok(())
}

/// setListTouch: the first issue of a type marks the list as reviewed; later ones leave it.
pub async fn touch(conn: &mut MySqlConnection, pid: Pid, kind: IssueType) -> Result<(), StorageError> {
    sqlx::query("INSERT IGNORE INTO lists_touch (pid, type, date) VALUES (?, ?, NOW())")
        .bind(pid.0)
        .bind(kind.db_type())
        .execute(conn)
        .await
        .map_err(StorageError::from_sqlx)?;
    Ok(())
}

/// linkIssueToEncounter, with a registered uuid; an existing link is left as it is.
pub async fn link_encounter(
    conn: &mut MySqlConnection,
    pid: Pid,
    list_id: i64,
    encounter: i64,
    user_id: i64,
) -> Result<(), StorageError> {
    let linked: Option<i64> =
        sqlx::query_scalar("SELECT id FROM issue_encounter WHERE pid = ? AND list_id = ? AND encounter = ?")
            .bind(pid.0)
            .bind(list_id)
            .bind(encounter)
            .fetch_optional(&mut *conn)
            .await
            .map_err(StorageError::from_sqlx)?;
    if linked.is_some() {
        return Ok(());
    }
    let uuid = uuid_registry::create(conn, "issue_encounter", "id").await?;
    sqlx::query(
        "INSERT INTO issue_encounter (uuid, pid, list_id, encounter, resolved, created_by, updated_by) \
         VALUES (?, ?, ?, ?, 0, ?, ?)",
    )
    .bind(&uuid[..])
    .bind(pid.0)
    .bind(list_id)
    .bind(encounter)
    .bind(user_id)
    .bind(user_id)
    .execute(conn)
    .await
    .map_err(StorageError::from_sqlx)?;
    Ok(())
}

pub async fn get(pool: &MySqlPool, id: i64) -> Result<Option<IssueRow>, StorageError> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!("{SELECT} WHERE l.id = ?")))
        .bind(id)
        .fetch_optional(pool)
        .await
        .map_err(StorageError::from_sqlx)
}

/// The issue OpenEMR's FHIR API knows by `uuid`.
pub async fn id_by_uuid(pool: &MySqlPool, uuid: &[u8; 16]) -> Result<Option<i64>, StorageError> {
    sqlx::query_scalar("SELECT id FROM lists WHERE uuid = ?")
        .bind(&uuid[..])
        .fetch_optional(pool)
        .await
        .map_err(StorageError::from_sqlx)
}

/// A patient's issues of these types: current ones first, then by start date.
pub async fn list(pool: &MySqlPool, pid: Pid, kinds: &[IssueType]) -> Result<Vec<IssueRow>, StorageError> {
    let mut q = QueryBuilder::new(SELECT);
    q.push(" WHERE l.pid = ").push_bind(pid.0).push(" AND l.type IN (");
    let mut types = q.separated(", ");
    for kind in kinds {
        types.push_bind(kind.db_type());
    }
    q.push(") ORDER BY (l.enddate IS NULL) DESC, l.begdate DESC, l.id DESC");
    q.build_query_as().fetch_all(pool).await.map_err(StorageError::from_sqlx)
}

/// Encounter numbers each issue is linked to.
pub async fn encounters_of(pool: &MySqlPool, pid: Pid) -> Result<Vec<(i64, i64)>, StorageError> {
    sqlx::query_as("SELECT CAST(list_id AS SIGNED), CAST(encounter AS SIGNED) FROM issue_encounter WHERE pid = ? ORDER BY encounter")
        .bind(pid.0)
        .fetch_all(pool)
        .await
        .map_err(StorageError::from_sqlx)
}

/// These patients' issues of these types (bulk export).
pub async fn for_patients(
    pool: &MySqlPool,
    pids: &[i64],
    kinds: &[IssueType],
) -> Result<Vec<IssueRow>, StorageError> {
    if pids.is_empty() || kinds.is_empty() {
        return Ok(Vec::new());
    }
    let mut q = QueryBuilder::new(SELECT);
    q.push(" WHERE l.pid IN (");
    let mut listed = q.separated(", ");
    for pid in pids {
        listed.push_bind(*pid);
    }
    q.push(") AND l.type IN (");
    let mut types = q.separated(", ");
    for kind in kinds {
        types.push_bind(kind.db_type());
    }
    q.push(") ORDER BY l.pid, l.id");
    q.build_query_as().fetch_all(pool).await.map_err(StorageError::from_sqlx)
}
