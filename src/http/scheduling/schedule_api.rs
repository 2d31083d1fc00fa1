use chrono::{NaiveDate, NaiveDateTime};
use poem::web::Data;
use poem_openapi::{
    ApiResponse, Object, OpenApi,
    param::{Path, Query},
    payload::Json,
};

use crate::{
    app::AppState,
    http::{ApiTags, auth::Auth, problem::ApiError},
    service::{
        scheduling::{
            self,
            availability::{self as service, Block, BookedSlot, DaySchedule, RangeInput, Slot},
        },
        wall_clock_now,
    },
};

#[derive(Object)]
pub struct TimeSpan {
    pub start: NaiveDateTime,
    pub end: NaiveDateTime,
}

impl From<Slot> for TimeSpan {
    fn from(s: Slot) -> Self {
        Self { start: s.start, end: s.end }
    }
}

#[derive(Object)]
pub struct SlotList {
    pub provider_id: i64,
    pub category_id: i64,
    pub duration_minutes: u32,
    /// Free starts, each long enough for the visit, inside the provider's In Office hours and
    /// clear of every appointment (cancelled and no-show ones free their time), lunch, vacation,
    /// reserved time and clinic closures. Never in the past.
    pub slots: Vec<TimeSpan>,
}

#[derive(Object)]
pub struct ScheduleBlock {
    /// The calendar event (`pc_eid`).
    pub event_id: u32,
    pub category_id: i64,
    pub category: String,
    pub title: String,
    pub start: NaiveDateTime,
    pub end: NaiveDateTime,
}

impl From<Block> for ScheduleBlock {
    fn from(b: Block) -> Self {
        Self {
            event_id: b.event_id,
            category_id: b.category_id,
            category: b.category,
            title: b.title,
            start: b.start,
            end: b.end,
        }
    }
}

#[derive(Object)]
pub struct BookedTime {
    /// The appointment (`pc_eid`).
    pub id: u32,
    pub pid: i64,
    pub category_id: i64,
    pub status: String,
    pub start: NaiveDateTime,
    pub end: NaiveDateTime,
    /// Other appointments taking the same time (double bookings made in OpenEMR's own screens).
    #[oai(skip_serializing_if_is_empty)]
    pub overlaps: Vec<u32>,
}

impl From<BookedSlot> for BookedTime {
    fn from(b: BookedSlot) -> Self {
        Self {
            id: b.id,
            pid: b.pid,
            category_id: b.category_id,
            status: b.status,
            start: b.start,
            end: b.end,
            overlaps: b.overlaps,
        }
    }
}

#[derive(Object)]
pub struct ScheduleDay {
    pub date: NaiveDate,
    /// In Office → Out Of Office spans.
    pub available: Vec<TimeSpan>,
    /// A clinic holiday or closure that shuts the day.
    #[oai(skip_serializing_if_is_none)]
    pub closed: Option<ScheduleBlock>,
    /// Lunch, vacation, reserved time and other provider events.
    pub blocks: Vec<ScheduleBlock>,
    /// Every appointment, cancelled ones included (their status says so).
    pub appointments: Vec<BookedTime>,
}

impl From<DaySchedule> for ScheduleDay {
    fn from(d: DaySchedule) -> Self {
        Self {
            date: d.date,
            available: d.available.into_iter().map(TimeSpan::from).collect(),
            closed: d.closed.map(ScheduleBlock::from),
            blocks: d.blocks.into_iter().map(ScheduleBlock::from).collect(),
            appointments: d.appointments.into_iter().map(BookedTime::from).collect(),
        }
    }
}

#[derive(Object)]
pub struct CalendarCategory {
    pub id: u32,
    pub constant_id: Option<String>,
    pub name: Option<String>,
    pub color: Option<String>,
    pub duration_minutes: i64,
    /// `patient`, `provider`, `clinic` or `group`.
    pub kind: String,
    pub active: bool,
}

#[derive(Object)]
pub struct AppointmentStatus {
    pub code: String,
    pub title: String,
    /// Setting this status checks the patient in (OpenEMR's `toggle_setting_1`).
    pub checks_in: bool,
    pub checks_out: bool,
    pub fhir_status: String,
}

#[derive(ApiResponse)]
pub enum SlotsResponse {
    #[oai(status = 200)]
    Ok(Json<SlotList>),
}

#[derive(ApiResponse)]
pub enum ScheduleResponse {
    #[oai(status = 200)]
    Ok(Json<Vec<ScheduleDay>>),
}

#[derive(ApiResponse)]
pub enum CategoriesResponse {
    #[oai(status = 200)]
    Ok(Json<Vec<CalendarCategory>>),
}

#[derive(ApiResponse)]
pub enum StatusesResponse {
    #[oai(status = 200)]
    Ok(Json<Vec<AppointmentStatus>>),
}

fn kind(cattype: i32) -> &'static str {
    match cattype {
        0 => "patient",
        1 => "provider",
        2 => "clinic",
        _ => "group",
    }
}

#[derive(Default)]
pub struct ScheduleApi;

#[OpenApi(tag = "ApiTags::Scheduling")]
impl ScheduleApi {
    /// Free slots of one provider for a visit category, as OpenEMR's "Find Available" finds
    /// them, minus cancelled and no-show appointments, which free their time.
    ///
    /// Slots are on OpenEMR's `calendar_interval` grid, each as long as the category's visit (or
    /// `duration_minutes`); In Office blocks reserved for another category (`pc_prefcatid`) do
    /// not count, and with `facility` only In Office blocks at that facility do.
    #[oai(path = "/appointments/slots/", method = "get", operation_id = "appointments_slots")]
    #[allow(clippy::too_many_arguments)]
    async fn slots(
        &self,
        state: Data<&AppState>,
        auth: Auth,
        provider: Query<Option<i64>>,
        facility: Query<Option<i64>>,
        category: Query<Option<i64>>,
        /// First day, `YYYY-MM-DD`.
        from: Query<Option<String>>,
        /// Last day (inclusive), at most 366 days after `from`.
        to: Query<Option<String>>,
        duration_minutes: Query<Option<i64>>,
    ) -> Result<SlotsResponse, ApiError> {
        let input = RangeInput {
            provider: provider.0,
            facility: facility.0,
            category: category.0,
            from: from.0,
            to: to.0,
            duration_minutes: duration_minutes.0,
        };
        let found = service::slots(&state, &auth.0, input, wall_clock_now()).await?;
        Ok(SlotsResponse::Ok(Json(SlotList {
            provider_id: found.provider,
            category_id: found.category,
            duration_minutes: found.minutes,
            slots: found.slots.into_iter().map(TimeSpan::from).collect(),
        })))
    }

    /// A provider's days as OpenEMR's calendar computes them: In Office hours, lunch and other
    /// provider events, clinic closures and booked appointments. Audited as `scheduling-select`.
    #[oai(path = "/openemr/providers/:id/schedule/", method = "get", operation_id = "provider_schedule")]
    async fn schedule(
        &self,
        state: Data<&AppState>,
        auth: Auth,
        id: Path<i64>,
        /// First day, `YYYY-MM-DD`.
        from: Query<Option<String>>,
        /// Last day (inclusive), at most 366 days after `from`.
        to: Query<Option<String>>,
    ) -> Result<ScheduleResponse, ApiError> {
        let input = RangeInput {
            provider: Some(id.0),
            facility: None,
            category: None,
            from: from.0,
            to: to.0,
            duration_minutes: None,
        };
        let days = service::schedule(&state, &auth.0, input).await?;
        Ok(ScheduleResponse::Ok(Json(days.into_iter().map(ScheduleDay::from).collect())))
    }

    /// OpenEMR's calendar categories (`openemr_postcalendar_categories`); book with a `patient`
    /// one. Needs OpenEMR `patients|appt`.
    #[oai(path = "/appointments/categories/", method = "get", operation_id = "appointments_categories")]
    async fn categories(&self, state: Data<&AppState>, auth: Auth) -> Result<CategoriesResponse, ApiError> {
        let rows = scheduling::categories(&state, &auth.0).await?;
        Ok(CategoriesResponse::Ok(Json(
            rows.into_iter()
                .map(|c| CalendarCategory {
                    id: c.pc_catid,
                    constant_id: c.pc_constant_id,
                    name: c.pc_catname,
                    color: c.pc_catcolor,
                    duration_minutes: c.pc_duration / 60,
                    kind: kind(c.pc_cattype).into(),
                    active: c.pc_active != 0,
                })
                .collect(),
        )))
    }

    /// OpenEMR's appointment statuses (the `apptstat` list), in the list's order.
    #[oai(path = "/appointments/statuses/", method = "get", operation_id = "appointments_statuses")]
    async fn statuses(&self, state: Data<&AppState>, auth: Auth) -> Result<StatusesResponse, ApiError> {
        let statuses = scheduling::statuses(&state, &auth.0).await?;
        Ok(StatusesResponse::Ok(Json(
            statuses
                .options()
                .iter()
                .map(|o| AppointmentStatus {
                    code: o.code.to_string(),
                    title: o.title.clone(),
                    checks_in: o.checks_in,
                    checks_out: o.checks_out,
                    fhir_status: o.phase().fhir().into(),
                })
                .collect(),
        )))
    }
}
