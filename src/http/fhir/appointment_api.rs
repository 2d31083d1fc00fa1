//! Appointment: OpenEMR's calendar, with the scheduling API's rights (`patients|appt`, the
//! patient within reach, one's own calendar where OpenEMR says so) and audit.

use poem::{Request, web::Data};
use poem_openapi::{OpenApi, param::Path, param::Query, payload::Json};

use super::{
    Created, FhirError, Found, Links, bundle, date_bounds, entry, instant,
    medication_api::requesters,
    model::{
        Appointment, AppointmentCreate, AppointmentParticipant, Bundle, CodeableConcept, Coding, Meta,
        Reference,
    },
    offset_count, offset_links, patient_reference,
    schedule_api::{category_id, provider_named},
    searched_patient, text, uuid_of,
};
use crate::{
    app::AppState,
    domain::{
        fhir::{SlotId, appointment_status},
        scheduling::appointment::NewAppointmentInput,
    },
    http::auth::Auth,
    service::scheduling::{
        SchedulingError,
        appointments::{self, Appointment as Booked},
    },
    storage::openemr::uuid_registry,
};

const PARTICIPATION_TYPE: &str = "http://terminology.hl7.org/CodeSystem/v3-ParticipationType";
pub(super) const CATEGORY_SYSTEM: &str = "urn:openemr:appointment-category";

/// The search parameters served, as the CapabilityStatement lists them.
pub const SEARCH_PARAMS: &[(&str, &str, &str)] = &[
    ("patient", "reference", "the patient's id; required"),
    ("date", "date", "eq, ge, le, gt or lt and a year, month or day; may be given twice for a range"),
    ("_count", "number", "entries per page, 1 to 100 (default 20); newest first"),
];

#[derive(Default)]
pub struct AppointmentApi;

#[OpenApi(prefix_path = "/Appointment")]
impl AppointmentApi {
    /// Books an appointment through the scheduling API's own path: serialised per provider across
    /// replicas, never over another appointment (409 naming it) and inside the provider's
    /// availability. Give a free `slot` (from a Slot search), or `start` with the provider as a
    /// `Practitioner/{id}` participant and the calendar category as `appointmentType` or
    /// `serviceType`; the patient is a `Patient/{id}` participant. The facility is the provider's
    /// own; `pending` books a hold that lapses unless confirmed. Written as OpenEMR's calendar
    /// writes it, so it shows there and in OpenEMR's FHIR API. Needs OpenEMR `patients|appt`.
    #[oai(path = "/", method = "post", operation_id = "fhir_appointment_create")]
    async fn create(
        &self,
        state: Data<&AppState>,
        auth: Auth,
        body: Json<AppointmentCreate>,
    ) -> Result<Created<Appointment>, FhirError> {
        let input = booking(&state, &auth, body.0).await?;
        let booked = match appointments::book(&state, &auth.0, input, None)
            .await
            .map_err(|e| FhirError::from(e).renamed(element))?
        {
            appointments::Booked::Created(a) | appointments::Booked::Replayed(a) => a,
        };
        let providers = requesters(&state).await?;
        let appointment = appointment_of(booked, &providers).ok_or(SchedulingError::UnknownUuid)?;
        let location = format!("Appointment/{}", appointment.id);
        Ok(Created::Created(Json(appointment), location))
    }

    /// One appointment. Needs OpenEMR `patients|appt`; audited.
    #[oai(path = "/:id", method = "get", operation_id = "fhir_appointment_read")]
    async fn read(
        &self,
        state: Data<&AppState>,
        auth: Auth,
        id: Path<String>,
    ) -> Result<Found<Appointment>, FhirError> {
        let uuid = uuid_of(&id.0).ok_or(SchedulingError::UnknownUuid)?;
        let booked = appointments::get_by_uuid(&state, &auth.0, &uuid).await?;
        let providers = requesters(&state).await?;
        let appointment = appointment_of(booked, &providers).ok_or(SchedulingError::UnknownUuid)?;
        Ok(Found::Ok(Json(appointment)))
    }

    /// A patient's appointments, newest first, one per calendar entry (a repeating one once, at
    /// its first date), paged by `next` links. Needs OpenEMR `patients|appt`; audited.
    #[oai(path = "/", method = "get", operation_id = "fhir_appointment_search")]
    #[allow(clippy::too_many_arguments)]
    async fn search(
        &self,
        state: Data<&AppState>,
        auth: Auth,
        req: &Request,
        /// The patient's id (`Patient/{id}` or `{id}`); required.
        patient: Query<Option<String>>,
        /// `[eq|ge|le|gt|lt]YYYY[-MM[-DD]]`, up to twice (`date=ge2026-01-01&date=lt2027-01-01`).
        date: Query<Vec<String>>,
        #[oai(name = "_count")] count: Query<Option<u32>>,
        /// Set by the `next` link.
        #[oai(name = "_offset")]
        offset: Query<Option<u64>>,
    ) -> Result<Found<Bundle<Appointment>>, FhirError> {
        let count = offset_count(count.0)?;
        let dates = date_bounds("date", &date.0)?;
        let links = Links::of(req, "Appointment");
        let Some((pid, uuid)) = searched_patient(&state, patient.0).await? else {
            return Ok(Found::Ok(Json(links.whole(Vec::new()))));
        };
        let offset = offset.0.unwrap_or(0);
        let (found, total) = appointments::for_patient(&state, &auth.0, pid, dates, count, offset).await?;
        let providers = requesters(&state).await?;
        let link = offset_links(&links, offset, count, total);
        let subject = patient_reference(Some(&uuid[..]));
        let entries = found
            .into_iter()
            .filter_map(|booked| {
                let mut appointment = appointment_of(booked, &providers)?;
                // The row's patient uuid is the searched one; keep the reference exactly as asked.
                if let Some(first) = appointment.participant.first_mut() {
                    first.actor = subject.clone();
                }
                Some(appointment)
            })
            .map(|a| entry(&links, a.id.clone(), a))
            .collect();
        Ok(Found::Ok(Json(bundle(total, link, entries))))
    }
}

/// The booking an Appointment resource asks for, its references resolved.
async fn booking(
    state: &AppState,
    auth: &Auth,
    body: AppointmentCreate,
) -> Result<NewAppointmentInput, FhirError> {
    if body.resource_type != "Appointment" {
        return Err(FhirError::invalid("resourceType", "must be Appointment"));
    }
    let hold = match body.status.as_str() {
        "booked" | "proposed" => false,
        "pending" => true,
        other => {
            let why = format!("`{other}` cannot be booked: send booked (or proposed), or pending for a hold");
            return Err(FhirError::invalid("status", why));
        }
    };
    let actor = |kind: &str| {
        body.participant.iter().filter_map(|p| p.actor.reference.clone()).find(|r| r.starts_with(kind))
    };
    let patient = actor("Patient/")
        .ok_or_else(|| FhirError::invalid("participant", "needs the patient as Patient/{id}"))?;
    let (pid, _) = searched_patient(state, Some(patient))
        .await?
        .ok_or_else(|| FhirError::invalid("participant", "the Patient named is not one of this server's"))?;
    let (schedule, category, start, minutes) = match body.slot.first() {
        Some(slot) => {
            let id = slot.reference.as_deref().and_then(|r| r.strip_prefix("Slot/")).and_then(SlotId::parse);
            let id = id.ok_or_else(|| {
                FhirError::invalid("slot", "is not Slot/{id} of a Slot this server offered")
            })?;
            (id.schedule, id.category, id.start, Some(i64::from(id.minutes)))
        }
        None => {
            let practitioner = actor("Practitioner/").ok_or_else(|| {
                FhirError::invalid("participant", "needs a slot, or the provider as Practitioner/{id}")
            })?;
            let code = body
                .appointment_type
                .iter()
                .chain(&body.service_type)
                .flat_map(|c| &c.coding)
                .find_map(|c| c.code.clone());
            let code = code.ok_or_else(|| {
                FhirError::invalid("appointmentType", "needs the calendar category's constant id or id")
            })?;
            let category = category_id(state, "appointmentType", &code).await?;
            let start = body
                .start
                .as_deref()
                .ok_or_else(|| FhirError::invalid("start", "is required without a slot"))?;
            let start = local(start).ok_or_else(|| {
                FhirError::invalid("start", "must be an instant, e.g. 2026-12-15T09:30:00+10:00")
            })?;
            let end = body
                .end
                .as_deref()
                .map(|e| local(e).ok_or_else(|| FhirError::invalid("end", "must be an instant")))
                .transpose()?;
            let minutes = body.minutes_duration.or(end.map(|e| (e - start).num_minutes()));
            (practitioner, category, start, minutes)
        }
    };
    let provider = provider_named(state, auth, &schedule)
        .await?
        .ok_or_else(|| FhirError::invalid("participant", "the provider named is not one of this server's"))?;
    Ok(NewAppointmentInput {
        pid: Some(pid.0),
        provider_id: Some(provider.id),
        facility_id: Some(provider.facility_id),
        category_id: Some(category),
        start: Some(start.format("%Y-%m-%dT%H:%M").to_string()),
        duration_minutes: minutes,
        reason: body.comment,
        room: None,
        status: None,
        hold,
        override_availability: false,
    })
}

/// An instant in the calendar's (the server's) local time.
fn local(instant: &str) -> Option<chrono::NaiveDateTime> {
    Some(chrono::DateTime::parse_from_rfc3339(instant).ok()?.with_timezone(&chrono::Local).naive_local())
}

/// The booking's validation names its fields as the scheduling API does; here they are the
/// Appointment's elements.
fn element(field: &str) -> &str {
    match field {
        "pid" | "provider_id" | "facility_id" => "participant",
        "category_id" => "appointmentType",
        "duration_minutes" => "minutesDuration",
        "reason" => "comment",
        other => other,
    }
}

fn participant(code: &str, display: &str, actor: Reference) -> AppointmentParticipant {
    let coding = Coding {
        system: Some(PARTICIPATION_TYPE.into()),
        code: Some(code.into()),
        display: Some(display.into()),
    };
    AppointmentParticipant {
        kind: vec![CodeableConcept { coding: vec![coding], text: None }],
        actor,
        status: "accepted".into(),
    }
}

fn appointment_of(
    booked: Booked,
    providers: &std::collections::HashMap<i64, Reference>,
) -> Option<Appointment> {
    let row = &booked.row;
    let id = uuid_registry::to_string(row.uuid.as_deref())?;
    let mut participants =
        vec![participant("PART", "Participant", patient_reference(row.patient_uuid.as_deref()))];
    if let Some(provider) = row.provider().and_then(|p| providers.get(&p)).cloned().or_else(|| {
        let name = row.provider_name.as_deref().and_then(text)?;
        Some(Reference { reference: None, display: Some(name) })
    }) {
        participants.push(participant("PPRF", "Primary Performer", provider));
    }
    if let Some(facility) = row.facility.as_deref().and_then(text) {
        participants.push(participant(
            "LOC",
            "Location",
            Reference { reference: None, display: Some(facility) },
        ));
    }
    let appointment_type = row.category.as_deref().and_then(text).map(|name| CodeableConcept {
        coding: vec![Coding {
            system: Some(CATEGORY_SYSTEM.into()),
            code: row.category_constant.as_deref().and_then(text),
            display: Some(name.clone()),
        }],
        text: Some(name),
    });
    Some(Appointment {
        resource_type: "Appointment".into(),
        id,
        meta: Meta { version_id: None, last_updated: row.pc_time.and_then(instant), profile: Vec::new() },
        status: appointment_status(&row.pc_apptstatus).into(),
        appointment_type,
        description: row.pc_title.as_deref().and_then(text),
        start: instant(booked.start()),
        end: instant(booked.end()),
        minutes_duration: Some(row.pc_duration.max(0) / 60).filter(|m| *m > 0),
        comment: row.pc_hometext.as_deref().and_then(text),
        participant: participants,
    })
}
