//! `care_teams` and `care_team_member` as OpenEMR 8.2's care team card writes them
//! (`CareTeamService::saveCareTeam`): a team with a registered uuid, members keyed by user, a
//! removed member set `inactive` and never deleted.

use chrono::{NaiveDate, NaiveDateTime};
use sqlx::{MySqlConnection, MySqlPool};

use crate::{
    domain::{
        care_team::{NewMember, ROLES_LIST, TeamStatus},
        patient::Pid,
    },
    storage::{StorageError, openemr::uuid_registry},
};

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct TeamRow {
    pub id: i64,
    pub uuid: Option<Vec<u8>>,
    pub pid: i64,
    pub status: Option<String>,
    pub team_name: Option<String>,
    pub date_created: Option<NaiveDateTime>,
    pub date_updated: Option<NaiveDateTime>,
    pub created_by: Option<i64>,
    pub updated_by: Option<i64>,
}

impl TeamStatus for TeamRow {
    fn status(&self) -> Option<&str> {
        self.status.as_deref()
    }
}

/// A member with the names the card shows: the user's, and the role's title.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct MemberRow {
    pub id: i64,
    pub care_team_id: i64,
    pub user_id: Option<i64>,
    pub username: Option<String>,
    pub fname: Option<String>,
    pub lname: Option<String>,
    pub role: String,
    pub role_title: Option<String>,
    pub provider_since: Option<NaiveDate>,
    pub status: Option<String>,
    pub note: Option<String>,
    pub date_created: Option<NaiveDateTime>,
    pub date_updated: Option<NaiveDateTime>,
    pub created_by: Option<i64>,
    pub updated_by: Option<i64>,
}

const TEAM_COLUMNS: &str = "CAST(id AS SIGNED) AS id, uuid, CAST(pid AS SIGNED) AS pid, status, team_name, \
     date_created, date_updated, created_by, updated_by";

const MEMBER_SELECT: &str = "SELECT CAST(m.id AS SIGNED) AS id, CAST(m.care_team_id AS SIGNED) AS care_team_id, \
     m.user_id, CAST(u.username AS CHAR) AS username, u.fname, u.lname, m.role, \
     (SELECT o.title FROM list_options o WHERE o.list_id = ? AND o.option_id = m.role LIMIT 1) AS role_title, \
     m.provider_since, m.status, m.note, m.date_created, m.date_updated, m.created_by, m.updated_by \
     FROM care_team_member m LEFT JOIN users u ON u.id = m.user_id";

/// The patient's teams in the order OpenEMR finds them, but none entered in error.
pub async fn teams_of(conn: &mut MySqlConnection, pid: Pid) -> Result<Vec<TeamRow>, StorageError> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {TEAM_COLUMNS} FROM care_teams \
         WHERE pid = ? AND (status IS NULL OR status != 'entered-in-error') ORDER BY id"
    )))
    .bind(pid.0)
    .fetch_all(conn)
    .await
    .map_err(StorageError::from_sqlx)
}

pub async fn team(conn: &mut MySqlConnection, id: i64) -> Result<Option<TeamRow>, StorageError> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!("SELECT {TEAM_COLUMNS} FROM care_teams WHERE id = ?")))
        .bind(id)
        .fetch_optional(conn)
        .await
        .map_err(StorageError::from_sqlx)
}

/// `INSERT INTO care_teams (uuid, pid, team_name, status, created_by, date_created)`, with the
/// uuid registered; returns the team's id.
pub async fn insert_team(
    conn: &mut MySqlConnection,
    pid: Pid,
    name: &str,
    status: &str,
    created_by: i64,
) -> Result<i64, StorageError> {
    let uuid = uuid_registry::create(conn, "care_teams", "id").await?;
    let done = sqlx::query(
        "INSERT INTO care_teams (uuid, pid, team_name, status, created_by, date_created) \
         VALUES (?, ?, ?, ?, ?, NOW())",
    )
    .bind(&uuid[..])
    .bind(pid.0)
    .bind(name)
    .bind(status)
    .bind(created_by)
    .execute(conn)
    .await
    .map_err(StorageError::from_sqlx)?;
    Ok(done.last_insert_id() as i64)
}

pub async fn update_team(
    conn: &mut MySqlConnection,
    id: i64,
    name: &str,
    status: &str,
    updated_by: i64,
) -> Result<(), StorageError> {
    sqlx::query(
        "UPDATE care_teams SET team_name = ?, status = ?, date_updated = NOW(), updated_by = ? WHERE id = ?",
    )
    .bind(name)
    .bind(status)
    .bind(updated_by)
    .bind(id)
    .execute(conn)
    .await
    .map_err(StorageError::from_sqlx)?;
    Ok(())
}

/// A team's members, in the order they were added.
pub async fn members(conn: &mut MySqlConnection, team_id: i64) -> Result<Vec<MemberRow>, StorageError> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!("{MEMBER_SELECT} WHERE m.care_team_id = ? ORDER BY m.id")))
        .bind(ROLES_LIST)
        .bind(team_id)
        .fetch_all(conn)
        .await
        .map_err(StorageError::from_sqlx)
}

/// One member, if it belongs to a team of this patient.
pub async fn member_of_patient(
    conn: &mut MySqlConnection,
    pid: Pid,
    id: i64,
) -> Result<Option<MemberRow>, StorageError> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "{MEMBER_SELECT} WHERE m.id = ? AND m.care_team_id IN (SELECT t.id FROM care_teams t WHERE t.pid = ?)"
    )))
    .bind(ROLES_LIST)
    .bind(id)
    .bind(pid.0)
    .fetch_optional(conn)
    .await
    .map_err(StorageError::from_sqlx)
}

/// The user's row in the team, whatever its status (OpenEMR matches members by user).
pub async fn member_by_user(
    conn: &mut MySqlConnection,
    team_id: i64,
    user_id: i64,
) -> Result<Option<MemberRow>, StorageError> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "{MEMBER_SELECT} WHERE m.care_team_id = ? AND m.user_id = ? ORDER BY m.id LIMIT 1"
    )))
    .bind(ROLES_LIST)
    .bind(team_id)
    .bind(user_id)
    .fetch_optional(conn)
    .await
    .map_err(StorageError::from_sqlx)
}

/// A new member: no contact or facility (NULL, as the card stores 0), the note '' when blank.
pub async fn insert_member(
    conn: &mut MySqlConnection,
    team_id: i64,
    m: &NewMember,
    created_by: i64,
) -> Result<i64, StorageError> {
    let done = sqlx::query(
        "INSERT INTO care_team_member (care_team_id, user_id, contact_id, role, facility_id, provider_since, \
         status, note, created_by, date_created) VALUES (?, ?, NULL, ?, NULL, ?, ?, ?, ?, NOW())",
    )
    .bind(team_id)
    .bind(m.user_id)
    .bind(&m.role)
    .bind(m.provider_since)
    .bind(&m.status)
    .bind(&m.note)
    .bind(created_by)
    .execute(conn)
    .await
    .map_err(StorageError::from_sqlx)?;
    Ok(done.last_insert_id() as i64)
}

/// The member's own fields; the user, contact and facility it names stay as they are.
pub async fn update_member(
    conn: &mut MySqlConnection,
    id: i64,
    m: &NewMember,
    updated_by: i64,
) -> Result<(), StorageError> {
    sqlx::query(
        "UPDATE care_team_member SET role = ?, provider_since = ?, status = ?, note = ?, updated_by = ?, \
         date_updated = NOW() WHERE id = ?",
    )
    .bind(&m.role)
    .bind(m.provider_since)
    .bind(&m.status)
    .bind(&m.note)
    .bind(updated_by)
    .bind(id)
    .execute(conn)
    .await
    .map_err(StorageError::from_sqlx)?;
    Ok(())
}

/// Removal as the card removes a member: marked inactive, the row kept.
pub async fn deactivate_member(
    conn: &mut MySqlConnection,
    id: i64,
    updated_by: i64,
) -> Result<(), StorageError> {
    sqlx::query(
        "UPDATE care_team_member SET status = 'inactive', updated_by = ?, date_updated = NOW() WHERE id = ?",
    )
    .bind(updated_by)
    .bind(id)
    .execute(conn)
    .await
    .map_err(StorageError::from_sqlx)?;
    Ok(())
}

/// Whether `id` is a staff account that can be a member: an active `users` row with a username
/// (address-book contacts have none).
pub async fn active_user(pool: &MySqlPool, id: i64) -> Result<bool, StorageError> {
    let found: Option<i64> = sqlx::query_scalar(
        "SELECT CAST(id AS SIGNED) FROM users WHERE id = ? AND active = 1 AND username IS NOT NULL AND username != ''",
    )
    .bind(id)
    .fetch_optional(pool)
    .await
    .map_err(StorageError::from_sqlx)?;
    Ok(found.is_some())
}
