//! Schedule and Slot, which OpenEMR's FHIR API lacks: a provider's calendar is a Schedule (its id
//! the provider's Practitioner id), and its free starts for a visit category are Slots, computed by
//! the scheduling capability as its own availability search computes them (nothing is stored).

use chrono::{Duration, NaiveDate};
use poem::{Request, http::StatusCode, web::Data};
use poem_openapi::{OpenApi, param::Path, param::Query, payload::Json};

use super::{
    FhirError, Found, Links, bundle, date_bounds, entry, instant,
    model::{Bundle, CodeableConcept, Coding, Reference, Schedule, Slot},
    offset_count, offset_links, text, uuid_of,
};
use crate::{
    app::AppState,
    domain::{fhir::SlotId, fhir::token_code},
    fhir::medication::practitioner_reference,
    http::{auth::Auth, problem::ApiError},
    service::{
        scheduling::availability::{self, RangeInput, Slots},
        wall_clock_now,
    },
    storage::openemr::{providers, scheduling::categories, uuid_registry},
};

/// Days a Slot search without an end covers.
const DEFAULT_DAYS: i64 = 7;

pub const SCHEDULE_PARAMS: &[(&str, &str, &str)] =
    &[("actor", "reference", "the provider's Practitioner id; every provider's Schedule when absent")];

pub const SLOT_PARAMS: &[(&str, &str, &str)] = &[
    ("schedule", "reference", "the Schedule's id (the provider's Practitioner id); required"),
    (
        "service-type",
        "token",
        "the calendar category: its id, or its constant id (`urn:openemr:appointment-category|office_visit`); required",
    ),
    ("start", "date", "ge, gt, le, lt or eq and a day, up to twice; from today for a week when absent"),
    ("status", "token", "free only: booked time is an Appointment"),
    ("_count", "number", "entries per page, 1 to 100 (default 20); earliest first"),
];

fn not_found(what: &str) -> FhirError {
    ApiError::new(StatusCode::NOT_FOUND, format!("no {what} with this id")).into()
}

pub(super) struct Provider {
    pub id: i64,
    /// The provider's default facility.
    pub facility_id: i64,
    uuid: String,
    reference: Reference,
}

async fn providers(state: &AppState, auth: &Auth) -> Result<Vec<Provider>, FhirError> {
    if auth.0.is_guest() {
        return Err(ApiError::new(StatusCode::FORBIDDEN, "guests cannot read providers' calendars").into());
    }
    Ok(providers::list(&state.pool)
        .await?
        .into_iter()
        .filter_map(|p| {
            let uuid = uuid_registry::to_string(p.uuid.as_deref())?;
            Some(Provider {
                id: p.id,
                facility_id: p.facility_id,
                uuid,
                reference: practitioner_reference(&p),
            })
        })
        .collect())
}

/// The provider a reference (`{Type}/{id}` or `{id}`) names.
pub(super) async fn provider_named(
    state: &AppState,
    auth: &Auth,
    reference: &str,
) -> Result<Option<Provider>, FhirError> {
    let wanted = uuid_of(reference.rsplit('/').next().unwrap_or_default());
    Ok(providers(state, auth).await?.into_iter().find(|p| wanted.is_some() && uuid_of(&p.uuid) == wanted))
}

fn schedule_of(p: Provider) -> Schedule {
    let comment = p.reference.display.as_ref().map(|name| format!("The calendar of {name}"));
    Schedule { resource_type: "Schedule".into(), id: p.uuid, active: true, actor: vec![p.reference], comment }
}

#[derive(Default)]
pub struct ScheduleApi;

#[OpenApi(prefix_path = "/Schedule")]
impl ScheduleApi {
    /// One provider's calendar. Not for guests.
    #[oai(path = "/:id", method = "get", operation_id = "fhir_schedule_read")]
    async fn read(
        &self,
        state: Data<&AppState>,
        auth: Auth,
        id: Path<String>,
    ) -> Result<Found<Schedule>, FhirError> {
        let found = provider_named(&state, &auth, &id.0).await?.ok_or_else(|| not_found("schedule"))?;
        Ok(Found::Ok(Json(schedule_of(found))))
    }

    /// Every active provider's calendar, or the one `actor` names, on one page. Not for guests.
    #[oai(path = "/", method = "get", operation_id = "fhir_schedule_search")]
    async fn search(
        &self,
        state: Data<&AppState>,
        auth: Auth,
        req: &Request,
        /// `Practitioner/{id}` or `{id}`.
        actor: Query<Option<String>>,
    ) -> Result<Found<Bundle<Schedule>>, FhirError> {
        let links = Links::of(req, "Schedule");
        let found = match &actor.0 {
            Some(actor) => provider_named(&state, &auth, actor).await?.into_iter().collect(),
            None => providers(&state, &auth).await?,
        };
        let entries = found.into_iter().map(schedule_of).map(|s| entry(&links, s.id.clone(), s)).collect();
        Ok(Found::Ok(Json(links.whole(entries))))
    }
}

#[derive(Default)]
pub struct SlotApi;

#[OpenApi(prefix_path = "/Slot")]
impl SlotApi {
    /// One free slot, if it is still free (404 once booked or blocked). Needs what the
    /// availability search needs: `patients|appt`, and one's own calendar where OpenEMR says so.
    #[oai(path = "/:id", method = "get", operation_id = "fhir_slot_read")]
    async fn read(
        &self,
        state: Data<&AppState>,
        auth: Auth,
        id: Path<String>,
    ) -> Result<Found<Slot>, FhirError> {
        let wanted = SlotId::parse(&id.0).ok_or_else(|| not_found("slot"))?;
        let provider =
            provider_named(&state, &auth, &wanted.schedule).await?.ok_or_else(|| not_found("slot"))?;
        let day = wanted.start.date();
        let found = free(&state, &auth, &provider, wanted.category, (day, day), Some(wanted.minutes)).await?;
        let slot = slots_of(&provider, found).into_iter().find(|s| s.id == id.0);
        Ok(Found::Ok(Json(slot.ok_or_else(|| not_found("free slot"))?)))
    }

    /// Free starts on one provider's calendar for one visit category, earliest first, paged by
    /// `next` links.
    #[oai(path = "/", method = "get", operation_id = "fhir_slot_search")]
    #[allow(clippy::too_many_arguments)]
    async fn search(
        &self,
        state: Data<&AppState>,
        auth: Auth,
        req: &Request,
        /// `Schedule/{id}` or `{id}`: the provider's Practitioner id; required.
        schedule: Query<Option<String>>,
        /// The calendar category's id or constant id (`system|code` accepted); required.
        #[oai(name = "service-type")]
        service_type: Query<Option<String>>,
        /// `[ge|gt|le|lt|eq]YYYY-MM-DD`, up to twice.
        start: Query<Vec<String>>,
        /// `free` (the only status served).
        status: Query<Option<String>>,
        #[oai(name = "_count")] count: Query<Option<u32>>,
        /// Set by the `next` link.
        #[oai(name = "_offset")]
        offset: Query<Option<u64>>,
    ) -> Result<Found<Bundle<Slot>>, FhirError> {
        let count = offset_count(count.0)?;
        let links = Links::of(req, "Slot");
        let schedule = schedule.0.ok_or_else(|| FhirError::invalid("schedule", "is required"))?;
        let service_type = service_type.0.ok_or_else(|| {
            FhirError::invalid(
                "service-type",
                "is required: the calendar category whose visits the slots fit",
            )
        })?;
        let range = days(date_bounds("start", &start.0)?, wall_clock_now().date());
        let category = category_id(&state, "service-type", &service_type).await?;
        let Some(provider) = provider_named(&state, &auth, &schedule).await? else {
            return Ok(Found::Ok(Json(links.whole(Vec::new()))));
        };
        if status.0.as_deref().is_some_and(|s| token_code(s) != "free") {
            return Ok(Found::Ok(Json(links.whole(Vec::new()))));
        }
        let found = free(&state, &auth, &provider, category, range, None).await?;
        let all = slots_of(&provider, found);
        let (offset, total) = (offset.0.unwrap_or(0), all.len() as i64);
        let link = offset_links(&links, offset, count, total);
        let entries = all
            .into_iter()
            .skip(offset as usize)
            .take(count as usize)
            .map(|s| entry(&links, s.id.clone(), s))
            .collect();
        Ok(Found::Ok(Json(bundle(total, link, entries))))
    }
}

/// The days searched, never before today: the bounds given, else a week from the first day.
fn days((from, to): (Option<NaiveDate>, Option<NaiveDate>), today: NaiveDate) -> (NaiveDate, NaiveDate) {
    let from = from.unwrap_or(today).max(today);
    (from, to.unwrap_or_else(|| from + Duration::days(DEFAULT_DAYS - 1)))
}

/// A category by id, or by constant id with or without the category system; `parameter` names
/// where it was given.
pub(super) async fn category_id(state: &AppState, parameter: &str, token: &str) -> Result<i64, FhirError> {
    let code = token_code(token);
    if let Ok(id) = code.parse::<i64>() {
        return Ok(id);
    }
    categories::all(&state.pool)
        .await?
        .into_iter()
        .find(|c| c.pc_constant_id.as_deref() == Some(code))
        .map(|c| i64::from(c.pc_catid))
        .ok_or_else(|| FhirError::invalid(parameter, format!("no calendar category `{code}`")))
}

async fn free(
    state: &AppState,
    auth: &Auth,
    provider: &Provider,
    category: i64,
    (from, to): (NaiveDate, NaiveDate),
    minutes: Option<u32>,
) -> Result<Slots, FhirError> {
    let input = RangeInput {
        provider: Some(provider.id),
        facility: None,
        category: Some(category),
        from: Some(from.to_string()),
        to: Some(to.to_string()),
        duration_minutes: minutes.map(i64::from),
    };
    Ok(availability::slots(state, &auth.0, input, wall_clock_now()).await?)
}

fn slots_of(provider: &Provider, found: Slots) -> Vec<Slot> {
    let service_type = CodeableConcept {
        coding: vec![Coding {
            system: Some(super::appointment_api::CATEGORY_SYSTEM.into()),
            code: found.category_code.as_deref().and_then(text),
            display: Some(found.category_name.clone()),
        }],
        text: Some(found.category_name.clone()),
    };
    let schedule = Reference { reference: Some(format!("Schedule/{}", provider.uuid)), display: None };
    found
        .slots
        .into_iter()
        .filter_map(|s| {
            let id = SlotId {
                schedule: provider.uuid.clone(),
                start: s.start,
                category: found.category,
                minutes: found.minutes,
            };
            Some(Slot {
                resource_type: "Slot".into(),
                id: id.format(),
                schedule: schedule.clone(),
                status: "free".into(),
                service_type: vec![service_type.clone()],
                start: instant(s.start)?,
                end: instant(s.end)?,
            })
        })
        .collect()
}
