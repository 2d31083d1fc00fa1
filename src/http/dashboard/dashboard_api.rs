use chrono::{NaiveDate, NaiveDateTime};
use poem::web::Data;
use poem_openapi::{ApiResponse, Object, OpenApi, payload::Json};

use crate::{
    app::AppState,
    http::{
        ApiTags, auth::Auth, messaging::notifications_api::Notification, problem::ApiError,
        scheduling::appointments_api::Appointment,
    },
    service::dashboard,
    storage::mmt::dashboard::recent::RecentPatient,
};

/// A patient the caller read lately (demographics or chart).
#[derive(Object)]
#[oai(skip_serializing_if_is_none)]
pub struct RecentlyViewed {
    pub pid: i64,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub dob: Option<NaiveDate>,
    /// Local time of the caller's latest read.
    pub viewed_at: NaiveDateTime,
}

impl From<RecentPatient> for RecentlyViewed {
    fn from(r: RecentPatient) -> Self {
        Self { pid: r.pid, first_name: r.fname, last_name: r.lname, dob: r.dob, viewed_at: r.viewed_at }
    }
}

#[derive(Object)]
pub struct DashboardCounts {
    /// Patients whose OpenEMR provider (`patient_data.providerID`) is the caller.
    pub my_patients: i64,
    /// Transcriptions awaiting a review the caller may give (all with `encounters|notes_a`, else
    /// those of the caller's encounters).
    pub pending_reviews: i64,
    /// Messages in the caller's OpenEMR inbox with status New.
    pub unread_messages: i64,
    /// The caller's draft transcriptions.
    pub draft_transcriptions: i64,
}

#[derive(Object)]
pub struct DashboardView {
    /// The caller's appointments as provider, today and the next 7 days, in start order (at most
    /// 50; empty without OpenEMR `patients|appt`).
    pub appointments: Vec<Appointment>,
    /// More appointments fall in those days than are listed; page through /api/appointments/.
    pub more_appointments: bool,
    /// Patients the caller read lately, newest first, at most 20 (empty without `patients|demo`).
    pub recently_viewed: Vec<RecentlyViewed>,
    pub counts: DashboardCounts,
    /// The caller's latest unread notifications, newest first (at most 10).
    pub notifications: Vec<Notification>,
}

#[derive(ApiResponse)]
pub enum DashboardResponse {
    #[oai(status = 200)]
    Ok(Json<DashboardView>),
}

#[derive(Default)]
pub struct DashboardApi;

#[OpenApi(prefix_path = "/dashboard", tag = "ApiTags::Dashboard")]
impl DashboardApi {
    /// The signed-in clinician's day in one request: their appointments today and this week,
    /// patients they viewed lately, counts, and unread notifications. Audited as a PHI read.
    #[oai(path = "/", method = "get", operation_id = "dashboard_get")]
    async fn get(&self, state: Data<&AppState>, auth: Auth) -> Result<DashboardResponse, ApiError> {
        let d = dashboard::overview(&state, &auth.0).await?;
        let c = d.counts;
        Ok(DashboardResponse::Ok(Json(DashboardView {
            appointments: d.appointments.into_iter().map(Appointment::from).collect(),
            more_appointments: d.more_appointments,
            recently_viewed: d.recent.into_iter().map(RecentlyViewed::from).collect(),
            counts: DashboardCounts {
                my_patients: c.my_patients,
                pending_reviews: c.pending_reviews,
                unread_messages: c.unread_messages,
                draft_transcriptions: c.draft_transcriptions,
            },
            notifications: d.notifications.into_iter().map(Notification::from).collect(),
        })))
    }
}
