//! The assigned-patient rule as SQL, over what OpenEMR records about who cares for a patient
//! (`patient_data.providerID`, `care_team_provider`, `care_teams` + `care_team_member`, encounters,
//! appointments) and the sidecar's break-glass grants, so a check costs one or two queries and a
//! list is filtered, totals included, in the database.

use chrono::NaiveDateTime;
use sqlx::{MySql, MySqlPool, QueryBuilder};

use crate::{domain::patient_access::Window, storage::StorageError};

/// What ties `user_id` to a patient.
#[derive(Debug, Clone, Copy)]
pub struct Reach {
    pub user_id: i64,
    pub now: NaiveDateTime,
    /// Encounters and appointments within this window tie the user too.
    pub recent: Option<Window>,
    /// Unexpired break-glass grants count.
    pub grants: bool,
}

impl Reach {
    /// The clinician's own panel: primary provider or care team, nothing temporary.
    pub fn assigned(user_id: i64, now: NaiveDateTime) -> Self {
        Self { user_id, now, recent: None, grants: false }
    }
}

/// Where the patient's pid comes from in the query being built.
#[derive(Debug, Clone, Copy)]
pub enum PidOf {
    /// A column of the enclosing query, such as `t.pid`; code-supplied, never user input.
    Column(&'static str),
    Value(i64),
}

impl PidOf {
    fn push(self, q: &mut QueryBuilder<MySql>) {
        match self {
            Self::Column(column) => {
                q.push(column);
            }
            Self::Value(pid) => {
                q.push_bind(pid);
            }
        }
    }
}

/// Pushes a condition true when the patient `pid`'s chart names the user: primary provider, or the
/// deprecated `care_team_provider` list. One primary-key lookup.
fn push_chart_tie(q: &mut QueryBuilder<MySql>, pid: PidOf, reach: &Reach) {
    q.push("EXISTS (SELECT 1 FROM patient_data pa WHERE pa.pid = ");
    pid.push(q);
    q.push(" AND (pa.providerID = ")
        .push_bind(reach.user_id)
        .push(" OR FIND_IN_SET(")
        .push_bind(reach.user_id.to_string())
        .push(", REPLACE(pa.care_team_provider, '|', ',')) > 0))");
}

/// Pushes a query for the pids `reach` ties its user to other than through the chart: care teams,
/// grants, recent encounters and appointments. Each part reads an index or a small table once.
fn push_beyond_chart(q: &mut QueryBuilder<MySql>, reach: &Reach) {
    q.push(
        "SELECT t.pid FROM care_team_member m JOIN care_teams t ON t.id = m.care_team_id \
         WHERE m.status = 'active' AND t.status = 'active' AND m.user_id = ",
    )
    .push_bind(reach.user_id);
    push_for_a_while(q, reach, " UNION ");
}

/// Pushes the parts of a `UNION` of the pids `reach` ties its user to for a time only: unexpired
/// grants, recent encounters and appointments; `lead` goes before the first part pushed.
fn push_for_a_while(q: &mut QueryBuilder<MySql>, reach: &Reach, mut lead: &'static str) {
    if reach.grants {
        q.push(lead)
            .push("SELECT b.pid FROM mmt_break_glass b WHERE b.user_id = ")
            .push_bind(reach.user_id)
            .push(" AND b.expires_at > ")
            .push_bind(reach.now);
        lead = " UNION ";
    }
    if let Some(window) = reach.recent {
        q.push(lead)
            .push("SELECT e.pid FROM form_encounter e WHERE e.provider_id = ")
            .push_bind(reach.user_id)
            .push(" AND e.date BETWEEN ")
            .push_bind(window.from)
            .push(" AND ")
            .push_bind(window.until)
            .push(
                " UNION SELECT CAST(a.pc_pid AS SIGNED) FROM openemr_postcalendar_events a WHERE a.pc_aid = ",
            )
            .push_bind(reach.user_id.to_string())
            .push(" AND a.pc_eventDate BETWEEN ")
            .push_bind(window.from.date())
            .push(" AND ")
            .push_bind(window.until.date());
    }
}

/// Pushes a condition true when `reach` ties its user to the patient `pid`, the chart's own tie
/// (by primary key) first.
pub fn push_reaches(q: &mut QueryBuilder<MySql>, pid: PidOf, reach: &Reach) {
    q.push("(");
    push_chart_tie(q, pid, reach);
    q.push(" OR ");
    pid.push(q);
    q.push(" IN (");
    push_beyond_chart(q, reach);
    q.push("))");
}

/// Whether `reach` ties its user to patient `pid`. The chart's own ties answer most checks in one
/// primary-key lookup, since clinicians mostly open their own patients; only when they fail are the
/// other ties asked, in a second query.
pub async fn reaches(pool: &MySqlPool, pid: i64, reach: &Reach) -> Result<bool, StorageError> {
    let mut chart = QueryBuilder::new("SELECT ");
    push_chart_tie(&mut chart, PidOf::Value(pid), reach);
    if chart.build_query_scalar::<i64>().fetch_one(pool).await.map_err(StorageError::from_sqlx)? != 0 {
        return Ok(true);
    }
    let mut others = QueryBuilder::new("SELECT ");
    others.push_bind(pid).push(" IN (");
    push_beyond_chart(&mut others, reach);
    others.push(")");
    let tied: i64 = others.build_query_scalar().fetch_one(pool).await.map_err(StorageError::from_sqlx)?;
    Ok(tied != 0)
}

/// Those of `pids` that `reach` ties its user to, for lists assembled outside one query.
pub async fn reachable_among(
    pool: &MySqlPool,
    pids: &[i64],
    reach: &Reach,
) -> Result<Vec<i64>, StorageError> {
    if pids.is_empty() {
        return Ok(Vec::new());
    }
    let mut q = QueryBuilder::new("SELECT p.pid FROM patient_data p WHERE p.pid IN (");
    let mut listed = q.separated(", ");
    for pid in pids {
        listed.push_bind(*pid);
    }
    q.push(") AND ");
    push_reaches(&mut q, PidOf::Column("p.pid"), reach);
    q.push(" ORDER BY p.pid");
    q.build_query_scalar().fetch_all(pool).await.map_err(StorageError::from_sqlx)
}

/// The patients `reach` ties its user to for a time only (grants, recent encounters and
/// appointments), so a search can filter by the list instead of asking per row.
pub async fn tied_for_a_while(pool: &MySqlPool, reach: &Reach) -> Result<Vec<i64>, StorageError> {
    if !reach.grants && reach.recent.is_none() {
        return Ok(Vec::new());
    }
    let mut q = QueryBuilder::new("");
    push_for_a_while(&mut q, reach, "");
    q.build_query_scalar().fetch_all(pool).await.map_err(StorageError::from_sqlx)
}

/// Every active member of an active care team, with the team's patient: `(user_id, pid)`.
/// OpenEMR indexes neither column, so this reads both tables whole.
pub async fn care_team_ties(pool: &MySqlPool) -> Result<Vec<(i64, i64)>, StorageError> {
    sqlx::query_as(
        "SELECT m.user_id, CAST(t.pid AS SIGNED) FROM care_team_member m JOIN care_teams t ON t.id = m.care_team_id \
         WHERE m.status = 'active' AND t.status = 'active' AND m.user_id IS NOT NULL",
    )
    .fetch_all(pool)
    .await
    .map_err(StorageError::from_sqlx)
}
