//! A patient's care team: read under OpenEMR's `patients|demo` view, changed under its write (as
//! OpenEMR checks for editing demographics), written as the care team card writes it. Every write
//! is one transaction under the patient's `mmt-care-team-<pid>` lock, so two first members added
//! at once make one team.

use sqlx::{Connection, MySqlConnection};

use crate::{
    app::AppState,
    domain::{
        acl::{AclLevel, Aco},
        audit::AuditEntry,
        care_team::{self as rules, MemberFields, NewMember, Options},
        patient::Pid,
        user::Caller,
        validation::Issues,
    },
    service::{acl::AclError, audit, permission},
    storage::{
        StorageError,
        advisory_lock::{self, Held},
        openemr::{
            audit_log,
            care_teams::{self as store, MemberRow, TeamRow},
            chart::list_options,
            patients,
        },
    },
};

#[derive(Debug, thiserror::Error)]
pub enum CareTeamError {
    #[error("{0}")]
    NotFound(String),
    #[error("invalid care team member")]
    Invalid(Issues),
    #[error(transparent)]
    Acl(#[from] AclError),
    #[error(transparent)]
    Storage(#[from] StorageError),
}

impl From<Issues> for CareTeamError {
    fn from(issues: Issues) -> Self {
        Self::Invalid(issues)
    }
}

impl From<sqlx::Error> for CareTeamError {
    fn from(e: sqlx::Error) -> Self {
        Self::Storage(StorageError::from_sqlx(e))
    }
}

type Result<T, E = CareTeamError> = std::result::Result<T, E>;

/// EventAuditLogger files `care_teams` and `care_team_member` changes with the demographics.
const AUDIT_CATEGORY: &str = "Patient Demographics";

/// The team the patient's chart shows, with its members.
pub struct CareTeam {
    pub team: TeamRow,
    pub members: Vec<MemberRow>,
}

/// What adding a member did: a new row, or the user's existing row written over.
pub struct Added {
    pub member: MemberRow,
    pub created: bool,
}

fn entry(caller: &Caller, event: &str, pid: Pid, comments: String) -> AuditEntry {
    AuditEntry::phi(caller, event, AUDIT_CATEGORY, Some(pid.0), comments)
}

/// The permission, then the patient: a caller without it learns nothing about the pid.
async fn permitted(state: &AppState, caller: &Caller, pid: Pid, level: AclLevel) -> Result<()> {
    permission::require_on(state, caller, Aco::PATIENTS_DEMO, level, pid.0).await?;
    match patients::get(&state.pool, pid).await? {
        Some(_) => Ok(()),
        None => Err(CareTeamError::NotFound(format!("no patient with pid {pid}"))),
    }
}

async fn option_ids(state: &AppState, list_id: &str) -> Result<Vec<String>> {
    Ok(list_options::active(&state.pool, list_id).await?.into_iter().map(|o| o.option_id).collect())
}

fn today() -> chrono::NaiveDate {
    crate::service::wall_clock_now().date()
}

async fn current(conn: &mut MySqlConnection, pid: Pid) -> Result<Option<TeamRow>> {
    Ok(rules::current_team(store::teams_of(conn, pid).await?))
}

/// The patient's team as the care team card shows it (members inactive or entered in error
/// only with `include_inactive`); `None` when the patient has none.
pub async fn get(
    state: &AppState,
    caller: &Caller,
    pid: Pid,
    include_inactive: bool,
) -> Result<Option<CareTeam>> {
    permitted(state, caller, pid, AclLevel::View).await?;
    let mut conn = state.pool.acquire().await?;
    let team = current(&mut conn, pid).await?;
    let found = match team {
        Some(team) => {
            let members = store::members(&mut conn, team.id)
                .await?
                .into_iter()
                .filter(|m| include_inactive || rules::member_listed(m.status.as_deref()))
                .collect();
            Some(CareTeam { team, members })
        }
        None => None,
    };
    drop(conn);
    let comments = match &found {
        Some(t) => {
            let ids = t.members.iter().map(|m| m.id.to_string()).collect::<Vec<_>>().join(",");
            format!("mmt-sidecar read care team {} of pid {pid}: members [{ids}]", t.team.id)
        }
        None => format!("mmt-sidecar read care team of pid {pid}: none"),
    };
    audit::record(state, &entry(caller, "patient-record-select", pid, comments)).await?;
    crate::service::dashboard::recent::viewed(state, caller, pid).await;
    Ok(found)
}

/// Runs `write` in one transaction under the patient's care team lock.
async fn locked<T>(
    state: &AppState,
    pid: Pid,
    write: impl AsyncFnOnce(&mut MySqlConnection) -> Result<T>,
) -> Result<T> {
    let mut held =
        Held::take(&state.pool, format!("mmt-care-team-{pid}"), advisory_lock::WRITE_WAIT_SECS).await?;
    let result = write(held.conn()).await;
    held.release().await?;
    result
}

/// Adds a user to the patient's team (made, named "Care Team" and active, if the patient has
/// none); a user already in the team, whatever their status, has their row written over with
/// the values sent.
pub async fn add_member(
    state: &AppState,
    caller: &Caller,
    pid: Pid,
    user_id: i64,
    fields: MemberFields,
) -> Result<Added> {
    permitted(state, caller, pid, AclLevel::Write).await?;
    let (roles, statuses) =
        (option_ids(state, rules::ROLES_LIST).await?, option_ids(state, rules::STATUS_LIST).await?);
    let options = Options { roles: &roles, statuses: &statuses };
    let mut issues = Issues::default();
    if !store::active_user(&state.pool, user_id).await? {
        issues.add("user_id", format!("no active user {user_id} (a staff account in users)"));
    }
    let member = rules::new_member(user_id, &fields, &options, today(), &mut issues);
    issues.into_result(())?;
    let by = caller.user_id.0;
    locked(state, pid, async |conn| {
        let mut tx = conn.begin().await?;
        let team_id = match current(&mut tx, pid).await? {
            Some(team) => team.id,
            None => {
                let id =
                    store::insert_team(&mut tx, pid, rules::DEFAULT_TEAM_NAME, rules::ACTIVE, by).await?;
                let comments = format!("mmt-sidecar created care team {id}");
                audit_log::record(&mut tx, &entry(caller, "patient-record-insert", pid, comments)).await?;
                id
            }
        };
        let (id, created, event, comments) = match store::member_by_user(&mut tx, team_id, user_id).await? {
            Some(existing) => {
                // As the card saves its form: the row gets the values sent (status active and
                // an empty note unless given), so adding a removed member brings them back.
                store::update_member(&mut tx, existing.id, &member, by).await?;
                let comments = format!(
                    "mmt-sidecar updated care team member {} (user {user_id}) of care team {team_id}",
                    existing.id
                );
                (existing.id, false, "patient-record-update", comments)
            }
            None => {
                let id = store::insert_member(&mut tx, team_id, &member, by).await?;
                let comments = format!(
                    "mmt-sidecar added care team member {id} (user {user_id}) to care team {team_id}"
                );
                (id, true, "patient-record-insert", comments)
            }
        };
        audit_log::record(&mut tx, &entry(caller, event, pid, comments)).await?;
        tx.commit().await?;
        let member = store::member_of_patient(conn, pid, id).await?;
        let member = member.ok_or_else(|| CareTeamError::NotFound(format!("no care team member {id}")))?;
        Ok(Added { member, created })
    })
    .await
}

/// A stored member as the values a write starts from.
fn stored(m: &MemberRow) -> NewMember {
    NewMember {
        user_id: m.user_id.unwrap_or_default(),
        role: m.role.clone(),
        provider_since: m.provider_since,
        status: m.status.clone().unwrap_or_else(|| rules::ACTIVE.to_string()),
        note: m.note.clone().unwrap_or_default(),
    }
}

fn no_member(pid: Pid, id: i64) -> CareTeamError {
    CareTeamError::NotFound(format!("no care team member {id} of patient {pid}"))
}

/// Changes a member's role, status, start date or note.
pub async fn update_member(
    state: &AppState,
    caller: &Caller,
    pid: Pid,
    id: i64,
    fields: MemberFields,
) -> Result<MemberRow> {
    permitted(state, caller, pid, AclLevel::Write).await?;
    let (roles, statuses) =
        (option_ids(state, rules::ROLES_LIST).await?, option_ids(state, rules::STATUS_LIST).await?);
    let options = Options { roles: &roles, statuses: &statuses };
    let by = caller.user_id.0;
    locked(state, pid, async |conn| {
        let existing = store::member_of_patient(conn, pid, id).await?.ok_or_else(|| no_member(pid, id))?;
        let mut issues = Issues::default();
        let merged = rules::apply(stored(&existing), &fields, &options, today(), &mut issues);
        issues.into_result(())?;
        let mut tx = conn.begin().await?;
        store::update_member(&mut tx, id, &merged, by).await?;
        let comments =
            format!("mmt-sidecar updated care team member {id} of care team {}", existing.care_team_id);
        audit_log::record(&mut tx, &entry(caller, "patient-record-update", pid, comments)).await?;
        tx.commit().await?;
        store::member_of_patient(conn, pid, id).await?.ok_or_else(|| no_member(pid, id))
    })
    .await
}

/// Removes a member as the card does: the row stays, marked inactive.
pub async fn remove_member(state: &AppState, caller: &Caller, pid: Pid, id: i64) -> Result<()> {
    permitted(state, caller, pid, AclLevel::Write).await?;
    let by = caller.user_id.0;
    locked(state, pid, async |conn| {
        let existing = store::member_of_patient(conn, pid, id).await?.ok_or_else(|| no_member(pid, id))?;
        let mut tx = conn.begin().await?;
        store::deactivate_member(&mut tx, id, by).await?;
        let comments =
            format!("mmt-sidecar removed care team member {id} of care team {}", existing.care_team_id);
        audit_log::record(&mut tx, &entry(caller, "patient-record-update", pid, comments)).await?;
        tx.commit().await?;
        Ok(())
    })
    .await
}

/// Renames the patient's team or changes its status (`Care_Team_Status`).
pub async fn update_team(
    state: &AppState,
    caller: &Caller,
    pid: Pid,
    name: Option<String>,
    status: Option<String>,
) -> Result<TeamRow> {
    permitted(state, caller, pid, AclLevel::Write).await?;
    let statuses = option_ids(state, rules::STATUS_LIST).await?;
    let by = caller.user_id.0;
    locked(state, pid, async |conn| {
        let team = current(conn, pid)
            .await?
            .ok_or_else(|| CareTeamError::NotFound(format!("patient {pid} has no care team")))?;
        let mut issues = Issues::default();
        let name = match &name {
            Some(n) => rules::team_name(n, &mut issues),
            None => team.team_name.clone().unwrap_or_default(),
        };
        let status = match &status {
            Some(s) => rules::team_status(s, &statuses, &mut issues),
            None => team.status.clone().unwrap_or_else(|| rules::ACTIVE.to_string()),
        };
        issues.into_result(())?;
        let mut tx = conn.begin().await?;
        store::update_team(&mut tx, team.id, &name, &status, by).await?;
        let comments = format!("mmt-sidecar updated care team {}", team.id);
        audit_log::record(&mut tx, &entry(caller, "patient-record-update", pid, comments)).await?;
        tx.commit().await?;
        store::team(conn, team.id)
            .await?
            .ok_or_else(|| CareTeamError::NotFound(format!("no care team {}", team.id)))
    })
    .await
}
