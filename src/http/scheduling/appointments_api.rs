use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use chrono::{NaiveDate, NaiveDateTime, NaiveTime};
use poem::web::Data;
use poem_openapi::{
    ApiResponse, Object, OpenApi,
    param::{Header, Path, Query},
    payload::Json,
};

use crate::{
    app::AppState,
    domain::{
        patient::Pid,
        scheduling::appointment::{AppointmentPatchInput, NewAppointmentInput},
        validation::Issues,
    },
    http::{ApiTags, auth::Auth, problem::ApiError},
    service::scheduling::appointments::{self, Appointment as Found, Booked, ListInput},
    storage::openemr::{scheduling::events::ListFilter, uuid_registry},
};

#[derive(Object)]
#[oai(skip_serializing_if_is_none)]
pub struct Appointment {
    /// OpenEMR's `pc_eid`.
    pub id: u32,
    pub uuid: Option<String>,
    pub pid: i64,
    pub patient_name: Option<String>,
    pub provider_id: Option<i64>,
    pub provider_name: Option<String>,
    pub facility_id: i64,
    pub facility: Option<String>,
    pub category_id: i64,
    pub category: Option<String>,
    pub title: Option<String>,
    /// The occurrence's date (a repeating appointment is listed once per occurrence).
    pub date: NaiveDate,
    /// Local date and time, as OpenEMR stores them.
    pub start: NaiveDateTime,
    pub end: NaiveDateTime,
    pub duration_minutes: i64,
    /// OpenEMR `apptstat` code: `-` none, `^` pending, `@` arrived, `>` checked out, `x` canceled …
    pub status: String,
    /// The status as FHIR's Appointment.status (OpenEMR's own mapping).
    pub fhir_status: String,
    pub reason: Option<String>,
    pub room: String,
    pub recurring: bool,
    /// A pending hold lapses (status `x`) at this time unless confirmed.
    pub hold_expires_at: Option<NaiveDateTime>,
    /// The visit's encounter, once opened at check-in.
    pub encounter: Option<i64>,
    pub created_at: Option<NaiveDateTime>,
}

impl From<Found> for Appointment {
    fn from(a: Found) -> Self {
        let (start, end) = (a.start(), a.end());
        let r = a.row;
        Self {
            id: r.pc_eid,
            uuid: uuid_registry::to_string(r.uuid.as_deref()),
            pid: r.patient().map_or(0, |p| p.0),
            patient_name: r.patient_name.clone(),
            provider_id: r.provider(),
            provider_name: r.provider_name.clone(),
            facility_id: i64::from(r.pc_facility),
            facility: r.facility.clone(),
            category_id: i64::from(r.pc_catid),
            category: r.category.clone(),
            title: r.pc_title.clone(),
            date: a.date,
            start,
            end,
            duration_minutes: r.pc_duration / 60,
            status: r.pc_apptstatus.clone(),
            fhir_status: a.phase.fhir().into(),
            reason: r.pc_hometext.clone(),
            room: r.pc_room.clone(),
            recurring: r.pc_recurrtype != 0,
            hold_expires_at: a.hold_expires,
            encounter: a.encounter,
            created_at: r.pc_time,
        }
    }
}

/// A booking. Only these fields exist; any other is rejected.
#[derive(Object)]
#[oai(deny_unknown_fields)]
pub struct AppointmentInput {
    pub pid: Option<i64>,
    pub provider_id: Option<i64>,
    pub facility_id: Option<i64>,
    /// A patient visit category (see /appointments/categories/).
    pub category_id: Option<i64>,
    /// Local date and time, `YYYY-MM-DDTHH:MM`.
    pub start: Option<String>,
    /// Defaults to the category's length.
    pub duration_minutes: Option<i64>,
    /// The visit reason (OpenEMR's comment; it becomes the encounter's reason at check-in).
    pub reason: Option<String>,
    /// From OpenEMR's `patient_flow_board_rooms` list.
    pub room: Option<String>,
    /// An `apptstat` code; defaults to `-`.
    pub status: Option<String>,
    /// Book as a pending hold (`^`) that lapses after `MMT_APPOINTMENT_HOLD_MINUTES` unless
    /// confirmed by a PATCH to another status.
    pub hold: Option<bool>,
    /// Book outside the provider's availability (lunch, Out Of Office, a closure); needs OpenEMR
    /// `patients|appt` write, as OpenEMR's own "use it anyway?" does. Never overrides another
    /// appointment.
    pub override_availability: Option<bool>,
}

/// A change; absent fields stay as they are. Only these fields exist.
#[derive(Object)]
#[oai(deny_unknown_fields)]
pub struct AppointmentPatchBody {
    /// An `apptstat` code. Allowed changes: anything before the visit; once arrived only forward
    /// (exam room, checked out) or "left without visit"; cancelled is final; a no-show may arrive
    /// late or be reinstated. Check-in opens the visit's encounter when OpenEMR's
    /// `auto_create_new_encounters` is on and the appointment is today.
    pub status: Option<String>,
    /// Reschedule to this local `YYYY-MM-DDTHH:MM`.
    pub start: Option<String>,
    pub duration_minutes: Option<i64>,
    /// Move to another provider.
    pub provider_id: Option<i64>,
    pub reason: Option<String>,
    pub room: Option<String>,
    pub override_availability: Option<bool>,
}

#[derive(Object)]
pub struct AppointmentPage {
    pub items: Vec<Appointment>,
    /// Occurrences in the range matching the filters.
    pub total: i64,
    /// Pass as `cursor` for the next page; absent on the last page.
    #[oai(skip_serializing_if_is_none)]
    pub next_cursor: Option<String>,
}

#[derive(ApiResponse)]
pub enum PageResponse {
    #[oai(status = 200)]
    Ok(Json<AppointmentPage>),
}

#[derive(ApiResponse)]
pub enum One {
    #[oai(status = 200)]
    Ok(Json<Appointment>),
}

#[derive(ApiResponse)]
pub enum BookResponse {
    /// Booked.
    #[oai(status = 201)]
    Created(Json<Appointment>, #[oai(header = "Location")] String),
    /// This `Idempotency-Key` was used before for the same booking: that appointment.
    #[oai(status = 200)]
    Replayed(Json<Appointment>),
}

const MAX_PAGE: u32 = 200;

fn encode_cursor(a: &Appointment) -> String {
    URL_SAFE_NO_PAD.encode(format!("{}|{}|{}", a.date, a.start.time(), a.id))
}

fn decode_cursor(raw: &str) -> Option<(NaiveDate, NaiveTime, u32)> {
    let text = String::from_utf8(URL_SAFE_NO_PAD.decode(raw).ok()?).ok()?;
    let mut parts = text.split('|');
    let date = parts.next()?.parse().ok()?;
    let time = parts.next()?.parse().ok()?;
    let id = parts.next()?.parse().ok()?;
    parts.next().is_none().then_some((date, time, id))
}

#[derive(Default)]
pub struct AppointmentsApi;

#[OpenApi(prefix_path = "/appointments", tag = "ApiTags::Scheduling")]
impl AppointmentsApi {
    /// Patient appointments over a date range, as OpenEMR's calendar shows them.
    ///
    /// Repeating appointments are expanded into one item per occurrence (OpenEMR's own rules,
    /// `exdate` exclusions included). Ordered by start; `cursor` pages through. Needs OpenEMR
    /// `patients|appt`; a provider sees only their own calendar unless OpenEMR's
    /// `docs_see_entire_calendar` is on. Audited as `scheduling-select`.
    #[oai(path = "/", method = "get", operation_id = "appointments_list")]
    #[allow(clippy::too_many_arguments)]
    async fn list(
        &self,
        state: Data<&AppState>,
        auth: Auth,
        /// First day, `YYYY-MM-DD`.
        from: Query<Option<String>>,
        /// Last day (inclusive), at most 366 days after `from`.
        to: Query<Option<String>>,
        provider: Query<Option<i64>>,
        facility: Query<Option<i64>>,
        /// A pid.
        patient: Query<Option<i64>>,
        /// An `apptstat` code.
        status: Query<Option<String>>,
        category: Query<Option<i64>>,
        cursor: Query<Option<String>>,
        #[oai(validator(minimum(value = "1"), maximum(value = "200")))] limit: Query<Option<u32>>,
    ) -> Result<PageResponse, ApiError> {
        let after = match cursor.0.as_deref() {
            None => None,
            Some(raw) => Some(decode_cursor(raw).ok_or_else(|| {
                let mut issues = Issues::default();
                issues.add("cursor", "is not a cursor this API returned");
                ApiError::from(issues)
            })?),
        };
        let input = ListInput {
            from: from.0,
            to: to.0,
            filter: ListFilter {
                provider: provider.0,
                facility: facility.0,
                patient: patient.0.map(Pid),
                status: status.0,
                category: category.0,
            },
            after,
            limit: limit.0.unwrap_or(50).clamp(1, MAX_PAGE) as usize,
        };
        let page = appointments::list(&state, &auth.0, input).await?;
        let items: Vec<Appointment> = page.items.into_iter().map(Appointment::from).collect();
        let next_cursor = if page.more { items.last().map(encode_cursor) } else { None };
        Ok(PageResponse::Ok(Json(AppointmentPage { items, total: page.total as i64, next_cursor })))
    }

    /// Book an appointment, never double booking.
    ///
    /// Written as OpenEMR's calendar writes it (plus a registered uuid and `pc_eventstatus = 1`),
    /// with its flow-board tracker row, so it shows at once on OpenEMR's calendar and flow board.
    /// Bookings for one provider are serialised across replicas and checked against every stored
    /// event, one-off and repeating: an overlap with another appointment is 409 naming it; a time
    /// outside the provider's availability is 422 unless `override_availability`. Send an
    /// `Idempotency-Key` to make retries safe. Needs OpenEMR `patients|appt` (write or wsome).
    #[oai(path = "/", method = "post", operation_id = "appointments_book")]
    async fn book(
        &self,
        state: Data<&AppState>,
        auth: Auth,
        /// A client-chosen key (1-64 printable characters): the same key and body books once.
        #[oai(name = "Idempotency-Key")]
        key: Header<Option<String>>,
        body: Json<AppointmentInput>,
    ) -> Result<BookResponse, ApiError> {
        let b = body.0;
        let input = NewAppointmentInput {
            pid: b.pid,
            provider_id: b.provider_id,
            facility_id: b.facility_id,
            category_id: b.category_id,
            start: b.start,
            duration_minutes: b.duration_minutes,
            reason: b.reason,
            room: b.room,
            status: b.status,
            hold: b.hold.unwrap_or(false),
            override_availability: b.override_availability.unwrap_or(false),
        };
        Ok(match appointments::book(&state, &auth.0, input, key.0.as_deref()).await? {
            Booked::Created(a) => {
                let location = format!("/api/appointments/{}/", a.row.pc_eid);
                BookResponse::Created(Json(a.into()), location)
            }
            Booked::Replayed(a) => BookResponse::Replayed(Json(a.into())),
        })
    }

    /// One appointment, by `pc_eid`.
    #[oai(path = "/:id/", method = "get", operation_id = "appointments_get")]
    async fn get(&self, state: Data<&AppState>, auth: Auth, id: Path<u32>) -> Result<One, ApiError> {
        Ok(One::Ok(Json(appointments::get(&state, &auth.0, id.0).await?.into())))
    }

    /// Change an appointment: status, reschedule, provider, reason, room.
    ///
    /// A reschedule is checked exactly as a booking is (409 on an overlapping appointment, 422
    /// outside availability unless overridden) and done in one transaction. Status changes go
    /// through OpenEMR's flow board (`patient_tracker`, `patient_tracker_element`); confirming a
    /// pending hold (any other status) keeps the slot. Repeating appointments are changed in
    /// OpenEMR's calendar (409).
    #[oai(path = "/:id/", method = "patch", operation_id = "appointments_update")]
    async fn update(
        &self,
        state: Data<&AppState>,
        auth: Auth,
        id: Path<u32>,
        body: Json<AppointmentPatchBody>,
    ) -> Result<One, ApiError> {
        let b = body.0;
        let input = AppointmentPatchInput {
            status: b.status,
            start: b.start,
            duration_minutes: b.duration_minutes,
            provider_id: b.provider_id,
            reason: b.reason,
            room: b.room,
            override_availability: b.override_availability.unwrap_or(false),
        };
        Ok(One::Ok(Json(appointments::change(&state, &auth.0, id.0, input).await?.into())))
    }
}
