//! Appointment: OpenEMR's calendar, with the scheduling API's rights (`patients|appt`, the
//! patient within reach, one's own calendar where OpenEMR says so) and audit.

use poem::{Request, web::Data};
use poem_openapi::{OpenApi, param::Path, param::Query, payload::Json};

use super::{
    FhirError, Found, Links, bundle, date_bounds, entry, instant,
    medication_api::requesters,
    model::{Appointment, AppointmentParticipant, Bundle, CodeableConcept, Coding, Meta, Reference},
    offset_count, offset_links, patient_reference, searched_patient, text, uuid_of,
};
use crate::{
    app::AppState,
    domain::fhir::appointment_status,
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
