//! The assigned-patient policy (`MMT_PATIENT_ACCESS`), applied after OpenEMR's ACL by
//! `permission::require_on` for every operation on one patient, and by `list_filter` for lists.
//! A decision costs one query and is remembered for the rest of the request, never longer, so a
//! care team change or an expired grant takes effect on the next request on every replica. A search
//! filters by the caller's care teams as each replica mirrors them, loaded again whenever OpenEMR's
//! care team tables change (within the search index's own staleness bound).

use std::{cell::RefCell, collections::HashMap, future::Future, pin::Pin};

use chrono::NaiveDateTime;
use sqlx::MySqlPool;

use crate::{
    app::AppState,
    domain::{
        acl::{AclLevel, Aco},
        audit::AuditEntry,
        messaging::notification::{NotificationKind, Subject},
        patient::Pid,
        patient_access::{self, AssignedRule, EMERGENCY_LOGIN_GROUP, Exemption, Policy},
        user::Caller,
    },
    service::{
        acl::AclError, audit, messaging::notifications, mirrored::Mirrored, permission, wall_clock_now,
    },
    storage::{
        StorageError,
        mmt::{break_glass, patient_index::Panel},
        openemr::{
            acl, audit_log,
            patient_access::{self as store, Reach},
            patients,
        },
    },
};

tokio::task_local! {
    /// `(user, pid)` pairs already allowed during this request.
    static ALLOWED: RefCell<Vec<(i64, i64)>>;
}

/// Runs one request with its own memory of allowed patients. The request comes boxed and type-erased
/// so that the scope adds neither its state nor its type to the caller's future.
pub async fn per_request<T>(request: Pin<Box<dyn Future<Output = T> + Send + '_>>) -> T {
    ALLOWED.scope(RefCell::new(Vec::new()), request).await
}

fn remembered(user: i64, pid: i64) -> bool {
    ALLOWED.try_with(|allowed| allowed.borrow().contains(&(user, pid))).unwrap_or(false)
}

fn remember(user: i64, pid: i64) {
    let _ = ALLOWED.try_with(|allowed| allowed.borrow_mut().push((user, pid)));
}

/// How the policy treats one caller.
enum Standing {
    Unrestricted,
    Exempt(Exemption),
    Restricted(Reach),
}

async fn standing(state: &AppState, caller: &Caller) -> Result<Standing, StorageError> {
    let Policy::Assigned(rule) = state.config.patient_access else { return Ok(Standing::Unrestricted) };
    let permissions = state.acl.permissions(&caller.username).await?;
    // Emergency Login holds administrator rights too; its accesses must still be audited.
    if permissions.groups.iter().any(|g| g.value == EMERGENCY_LOGIN_GROUP) {
        return Ok(Standing::Exempt(Exemption::EmergencyLogin));
    }
    if permissions.allows(Aco::ADMIN_SUPER, AclLevel::Write) {
        return Ok(Standing::Exempt(Exemption::Administrator));
    }
    Ok(Standing::Restricted(reach_now(rule, caller.user_id.0, wall_clock_now())))
}

fn reach_now(rule: AssignedRule, user_id: i64, now: NaiveDateTime) -> Reach {
    Reach { user_id, now, recent: rule.window(now), grants: true }
}

/// The rule `caller` is held to, for a long-lived stream that checks each event as it comes;
/// `None`: unrestricted.
pub async fn restriction(state: &AppState, caller: &Caller) -> Result<Option<AssignedRule>, StorageError> {
    let Policy::Assigned(rule) = state.config.patient_access else { return Ok(None) };
    Ok(matches!(standing(state, caller).await?, Standing::Restricted(_)).then_some(rule))
}

/// Whether `user_id`, held to `rule`, reaches patient `pid` now.
pub async fn reaches_now(
    pool: &MySqlPool,
    rule: AssignedRule,
    user_id: i64,
    pid: i64,
) -> Result<bool, StorageError> {
    store::reaches(pool, pid, &reach_now(rule, user_id, wall_clock_now())).await
}

/// Allows `caller` to reach patient `pid` under the policy, after the ACL has allowed the operation.
pub async fn require(state: &AppState, caller: &Caller, pid: i64) -> Result<(), AclError> {
    let user = caller.user_id.0;
    if remembered(user, pid) {
        return Ok(());
    }
    match standing(state, caller).await? {
        Standing::Unrestricted | Standing::Exempt(Exemption::Administrator) => {}
        Standing::Exempt(Exemption::EmergencyLogin) => {
            let comments = format!("mmt-sidecar Emergency Login access to pid {pid}");
            audit::record(state, &breakglass_entry(caller, pid, comments)).await?;
        }
        Standing::Restricted(reach) => {
            if !store::reaches(&state.pool, pid, &reach).await? {
                return Err(AclError::OutOfPanel { pid });
            }
        }
    }
    remember(user, pid);
    Ok(())
}

/// The condition a list must add so it shows only patients the caller reaches; `None`: no filter.
pub async fn list_filter(state: &AppState, caller: &Caller) -> Result<Option<Reach>, StorageError> {
    Ok(match standing(state, caller).await? {
        Standing::Restricted(reach) => Some(reach),
        Standing::Unrestricted | Standing::Exempt(_) => None,
    })
}

/// What each replica keeps for the policy: every care team member's patients, for searches.
pub struct Shared {
    care_teams: Mirrored<HashMap<i64, Vec<i64>>>,
}

impl Default for Shared {
    fn default() -> Self {
        Self { care_teams: Mirrored::new(&["care_teams", "care_team_member"]) }
    }
}

/// `reach` as the search index filters by it.
pub async fn panel(state: &AppState, reach: &Reach) -> Result<Panel, StorageError> {
    let pool = &state.pool;
    let load = || async {
        let mut teams: HashMap<i64, Vec<i64>> = HashMap::new();
        for (user, pid) in store::care_team_ties(pool).await? {
            teams.entry(user).or_default().push(pid);
        }
        Ok(teams)
    };
    let (teams, mut others) = tokio::try_join!(
        state.patient_access.care_teams.get(pool, state.config.search_max_staleness, load),
        store::tied_for_a_while(pool, reach),
    )?;
    others.extend(teams.get(&reach.user_id).into_iter().flatten());
    others.sort_unstable();
    others.dedup();
    Ok(Panel { provider_id: reach.user_id, others })
}

/// The caller's own panel (primary provider or care team), whatever the policy.
pub fn assigned_to(caller: &Caller) -> Reach {
    Reach::assigned(caller.user_id.0, wall_clock_now())
}

fn breakglass_entry(caller: &Caller, pid: i64, comments: String) -> AuditEntry {
    AuditEntry::phi(caller, "breakglass", "Security", Some(pid), comments)
}

#[derive(Debug, thiserror::Error)]
pub enum BreakGlassError {
    #[error("{0}")]
    Invalid(String),
    #[error("patient {0} was not found")]
    NotFound(Pid),
    #[error(
        "the assigned-patient policy is off (MMT_PATIENT_ACCESS=all): your role already reaches every chart it allows"
    )]
    PolicyOff,
    #[error(transparent)]
    Acl(#[from] AclError),
    #[error(transparent)]
    Storage(#[from] StorageError),
}

pub struct Granted {
    pub id: u64,
    pub pid: Pid,
    pub granted_at: NaiveDateTime,
    pub expires_at: NaiveDateTime,
}

/// Grants the caller one patient outside their panel for the configured time: the grant, its
/// `breakglass` audit row and the notices to the primary provider and administrators.
pub async fn break_glass(
    state: &AppState,
    caller: &Caller,
    pid: Pid,
    reason: &str,
) -> Result<Granted, BreakGlassError> {
    let Policy::Assigned(rule) = state.config.patient_access else { return Err(BreakGlassError::PolicyOff) };
    // Breaking the glass widens the panel, never the role: the ACL must already allow the chart.
    permission::require(state, caller, Aco::PATIENTS_DEMO, AclLevel::View).await?;
    let reason = patient_access::reason(reason).map_err(BreakGlassError::Invalid)?;
    let patient = patients::get(&state.pool, pid).await?.ok_or(BreakGlassError::NotFound(pid))?;
    let granted_at = wall_clock_now();
    let expires_at = rule.grant_expires(granted_at);
    let mut tx = state.pool.begin().await.map_err(StorageError::from_sqlx)?;
    let grant =
        break_glass::Grant { pid: pid.0, user_id: caller.user_id.0, reason: &reason, granted_at, expires_at };
    let id = break_glass::insert(&mut tx, &grant).await?;
    let comments = format!("mmt-sidecar break-glass grant {id} for pid {pid} until {expires_at}: {reason}");
    audit_log::record(&mut tx, &breakglass_entry(caller, pid.0, comments)).await?;
    tx.commit().await.map_err(StorageError::from_sqlx)?;
    tell(state, caller, pid, patient.provider_id.map(i64::from)).await;
    Ok(Granted { id, pid, granted_at, expires_at })
}

async fn tell(state: &AppState, caller: &Caller, pid: Pid, provider: Option<i64>) {
    let mut recipients = acl::active_members(&state.pool, "admin").await.unwrap_or_else(|err| {
        tracing::warn!(error = %err, "could not list the administrators to tell of a break-glass access");
        Vec::new()
    });
    recipients.extend(provider.filter(|p| *p > 0));
    recipients.sort_unstable();
    recipients.dedup();
    let subject = Subject::Patient(pid.0);
    for user in recipients.into_iter().filter(|u| *u != caller.user_id.0) {
        notifications::notify_now(state, user, NotificationKind::BreakGlass, &subject, &caller.username)
            .await;
    }
}

/// Keeps the items whose patient (`pid_of`; `None`: about no patient) the caller reaches.
pub async fn retain_reachable<T>(
    state: &AppState,
    caller: &Caller,
    items: &mut Vec<T>,
    pid_of: impl Fn(&T) -> Option<i64>,
) -> Result<(), StorageError> {
    let Some(reach) = list_filter(state, caller).await? else { return Ok(()) };
    let mut pids: Vec<i64> = items.iter().filter_map(&pid_of).collect();
    pids.sort_unstable();
    pids.dedup();
    let reached = store::reachable_among(&state.pool, &pids, &reach).await?;
    items.retain(|item| pid_of(item).is_none_or(|pid| reached.binary_search(&pid).is_ok()));
    Ok(())
}
