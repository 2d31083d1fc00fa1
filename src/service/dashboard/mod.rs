//! The signed-in clinician's dashboard (today's and upcoming appointments, patients seen lately,
//! counts, unread notifications) in one request, their profile, and their signed-in devices.

pub mod profile;
pub mod recent;
pub mod sessions;

use std::{collections::HashMap, time::Duration};

use chrono::Days;

use crate::{
    app::AppState,
    domain::{
        acl::{AclLevel, Aco},
        audit::AuditEntry,
        user::Caller,
        validation::Issues,
    },
    service::{
        acl::AclError,
        audit,
        cached::Cached,
        group_commit::GroupCommit,
        messaging::{messages::MessageError, notifications},
        scheduling::{
            SchedulingError,
            appointments::{self, Appointment, ListInput},
        },
        wall_clock_now,
    },
    storage::{
        StorageError,
        mmt::{
            dashboard::recent::{self as recent_store, Viewed},
            messaging::notifications::NotificationRow,
        },
        openemr::{
            dashboard::counts::{self, Counts, ReviewScope, Whose},
            scheduling::events::ListFilter,
        },
    },
};

#[derive(Debug, thiserror::Error)]
pub enum DashboardError {
    #[error("guests have no dashboard, profile or devices")]
    Guest,
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    NotAllowed(String),
    #[error("invalid request")]
    Invalid(Issues),
    #[error(transparent)]
    Acl(#[from] AclError),
    #[error(transparent)]
    Scheduling(#[from] SchedulingError),
    #[error(transparent)]
    Messages(#[from] MessageError),
    #[error(transparent)]
    Auth(#[from] crate::service::sign_in::AuthError),
    /// The client reported no activity within the idle timeout; its sign-in was ended.
    #[error("this device has been idle for longer than {0} seconds, so its sign-in has ended; sign in again")]
    Idle(u64),
    #[error(transparent)]
    Storage(#[from] StorageError),
}

impl From<Issues> for DashboardError {
    fn from(issues: Issues) -> Self {
        Self::Invalid(issues)
    }
}

type Result<T> = std::result::Result<T, DashboardError>;

/// How old the "my patients" counts may be (a whole-table count, see [`counts::panel_sizes`]).
pub const PANEL_MAX_AGE: Duration = Duration::from_secs(30);

/// What this replica keeps for dashboards between requests: every provider's panel size, and the
/// writer of the recently viewed lists.
pub struct Shared {
    panels: Cached<HashMap<i64, i64>>,
    recent: GroupCommit<Viewed>,
}

impl Default for Shared {
    fn default() -> Self {
        Self { panels: Cached::new("provider panel sizes"), recent: recent::writer() }
    }
}

/// Counts the panels once at start, so the first dashboard does not wait for the whole table.
pub async fn warm(state: AppState) {
    if let Err(err) = state.dashboard.panels.fill(counts::panel_sizes(&state.pool)).await {
        tracing::warn!(error = %err, "could not count the provider panels at start");
    }
}

async fn my_patients(state: &AppState, provider: i64) -> Result<i64> {
    let pool = state.pool.clone();
    let panels =
        state.dashboard.panels.get(PANEL_MAX_AGE, || async move { counts::panel_sizes(&pool).await }).await?;
    Ok(panels.get(&provider).copied().unwrap_or(0))
}

/// Appointments shown: today and the next seven days, at most this many.
pub const UPCOMING_DAYS: u64 = 7;
pub const MAX_APPOINTMENTS: usize = 50;
pub const MAX_NOTIFICATIONS: u32 = 10;

pub struct Dashboard {
    pub appointments: Vec<Appointment>,
    /// More appointments fall in the window than are shown.
    pub more_appointments: bool,
    pub recent: Vec<recent_store::RecentPatient>,
    pub counts: Counts,
    pub notifications: Vec<NotificationRow>,
}

fn signed_in(caller: &Caller) -> Result<()> {
    if caller.is_guest() { Err(DashboardError::Guest) } else { Ok(()) }
}

/// Each part is shown only with the permission its own endpoint needs: appointments with
/// `patients|appt`, recently viewed patients with `patients|demo`. The parts are read at once.
pub async fn overview(state: &AppState, caller: &Caller) -> Result<Dashboard> {
    signed_in(caller)?;
    let permissions = state.acl.permissions(&caller.username).await?;
    let may = |aco, level| permissions.allows(aco, level);
    let reviews = if may(Aco::ENCOUNTERS_NOTES_A, AclLevel::Write) {
        ReviewScope::All
    } else if may(Aco::ENCOUNTERS_NOTES, AclLevel::Write) {
        ReviewScope::Own
    } else {
        ReviewScope::None
    };
    let whose = Whose {
        user_id: caller.user_id.0,
        username: &caller.username,
        reviews,
        patient_messages: may(Aco::PATIENTS_NOTES, AclLevel::View),
    };
    let ((appointments, more_appointments), recent, my_patients, counts, notifications) = tokio::try_join!(
        async {
            if may(Aco::PATIENTS_APPT, AclLevel::View) {
                upcoming(state, caller).await
            } else {
                Ok((Vec::new(), false))
            }
        },
        async {
            if may(Aco::PATIENTS_DEMO, AclLevel::View) {
                recently_viewed(state, caller).await
            } else {
                Ok(Vec::new())
            }
        },
        my_patients(state, caller.user_id.0),
        async { Ok(counts::of(&state.pool, &whose).await?) },
        async { Ok(notifications::list(state, caller, true, None, MAX_NOTIFICATIONS).await?) },
    )?;
    let counts = Counts { my_patients, ..counts };
    Ok(Dashboard { appointments, more_appointments, recent, counts, notifications })
}

/// The patients the caller read lately and may still reach, their listing audited.
async fn recently_viewed(state: &AppState, caller: &Caller) -> Result<Vec<recent_store::RecentPatient>> {
    let mut recent = recent_store::list(&state.pool, caller.user_id.0).await?;
    crate::service::patient_access::retain_reachable(state, caller, &mut recent, |r| Some(r.pid)).await?;
    if !recent.is_empty() {
        let pids = recent.iter().map(|r| r.pid.to_string()).collect::<Vec<_>>().join(",");
        let comments = format!("mmt-sidecar dashboard: recently viewed patients, pids [{pids}]");
        let entry = AuditEntry::phi(caller, "patient-record-select", "Patient Demographics", None, comments);
        audit::record(state, &entry).await?;
    }
    Ok(recent)
}

/// The caller's own appointments from today through the next week, repeats expanded (audited by
/// the listing as any appointment list is).
async fn upcoming(state: &AppState, caller: &Caller) -> Result<(Vec<Appointment>, bool)> {
    let today = wall_clock_now().date();
    let last = today.checked_add_days(Days::new(UPCOMING_DAYS)).unwrap_or(today);
    let input = ListInput {
        from: Some(today.to_string()),
        to: Some(last.to_string()),
        filter: ListFilter { provider: Some(caller.user_id.0), ..ListFilter::default() },
        after: None,
        limit: MAX_APPOINTMENTS,
    };
    let page = appointments::list(state, caller, input).await?;
    Ok((page.items, page.more))
}
