//! Observation (vital signs): each measurement of OpenEMR's vitals form, with the ids OpenEMR's
//! `uuid_mapping` gives them, under the vitals API's encounter rights and audit.

use poem::{Request, web::Data};
use poem_openapi::{OpenApi, param::Path, param::Query, payload::Json};

use super::{
    Created, FhirError, Found, Links, entry,
    model::{Bundle, CodeableConcept, Observation, ObservationCreate, QuantityInput},
    patient_reference, searched_patient, subject_of, subject_patient, uuid_of,
};
use crate::{
    app::AppState,
    domain::{
        chart::vitals::{Measure, UnitSystem},
        fhir::{BLOOD_PRESSURE, DIASTOLIC, SYSTOLIC, token_code, written_measure},
    },
    fhir::observation::{LOINC, observations},
    http::auth::Auth,
    service::chart::{
        ChartError,
        vitals::{self, VitalsInput},
    },
};

/// The search parameters served, as the CapabilityStatement lists them.
pub const SEARCH_PARAMS: &[(&str, &str, &str)] = &[
    ("patient", "reference", "the patient's id; required"),
    ("category", "token", "vital-signs (the only category served)"),
    ("code", "token", "LOINC codes, comma-separated"),
];

#[derive(Default)]
pub struct ObservationApi;

#[OpenApi(prefix_path = "/Observation")]
impl ObservationApi {
    /// Records a vital sign into the encounter it names, as a new vitals form written as
    /// OpenEMR's vitals form writes it (so OpenEMR's screens and FHIR API show it): one LOINC-coded
    /// measurement with `valueQuantity` in OpenEMR's US UCUM units or their metric counterparts
    /// (`kg`, `cm`, `Cel`), or the blood-pressure panel (85354-9) with systolic and diastolic
    /// components in `mm[Hg]`. The subject must be the encounter's patient. Needs the encounter's
    /// rights to add a form (`encounters|notes` or `encounters|notes_a`, at least add-only); audited.
    #[oai(path = "/", method = "post", operation_id = "fhir_observation_create")]
    async fn create(
        &self,
        state: Data<&AppState>,
        auth: Auth,
        body: Json<ObservationCreate>,
    ) -> Result<Created<Observation>, FhirError> {
        let body = body.0;
        let Measured { code, units, values } = measured(&body)?;
        let (pid, uuid) = subject_patient(&state, Some(&body.subject)).await?;
        let encounter = body
            .encounter
            .as_ref()
            .and_then(|e| e.reference.as_deref())
            .and_then(|r| uuid_of(r.strip_prefix("Encounter/").unwrap_or(r)));
        let encounter = encounter
            .ok_or_else(|| FhirError::invalid("encounter", "is required: Encounter/{id} of the visit"))?;
        let date = match body.effective_date_time.as_deref() {
            Some(raw) => Some(
                chrono::DateTime::parse_from_rfc3339(raw)
                    .map_err(|_| {
                        FhirError::invalid("effectiveDateTime", "must be a dateTime with a time zone")
                    })?
                    .with_timezone(&chrono::Local)
                    .format("%Y-%m-%dT%H:%M:%S")
                    .to_string(),
            ),
            None => None,
        };
        let input =
            VitalsInput { units: Some(units.as_str().into()), date, values, ..VitalsInput::default() };
        let reading = vitals::record_in(&state, &auth.0, &encounter, pid, input)
            .await
            .map_err(|e| FhirError::from(e).renamed(element))?;
        let ids = vitals::observation_ids(&state, [&reading.row]).await?;
        let subject = patient_reference(Some(&uuid[..]));
        let (created, _) = observations(&reading.row, ids.get(&reading.row.id), &subject)
            .into_iter()
            .find(|(_, c)| *c == code)
            .ok_or_else(|| ChartError::NotFound("the recorded vital sign has no Observation id".into()))?;
        let location = format!("Observation/{}", created.id);
        Ok(Created::Created(Json(created), location))
    }

    /// One vital sign. Needs the rights of the encounter its vitals form belongs to; audited.
    #[oai(path = "/:id", method = "get", operation_id = "fhir_observation_read")]
    async fn read(
        &self,
        state: Data<&AppState>,
        auth: Auth,
        id: Path<String>,
    ) -> Result<Found<Observation>, FhirError> {
        let missing = || ChartError::NotFound("no observation with this id".into());
        let uuid = uuid_of(&id.0).ok_or_else(missing)?;
        let (reading, code) = vitals::observation(&state, &auth.0, &uuid).await?;
        let ids = vitals::observation_ids(&state, [&reading.row]).await?;
        let subject = subject_of(&state, crate::domain::patient::Pid(reading.row.pid)).await?;
        let found =
            observations(&reading.row, ids.get(&reading.row.id), &subject).into_iter().find(|o| o.1 == code);
        Ok(Found::Ok(Json(found.ok_or_else(missing)?.0)))
    }

    /// A patient's vital signs, newest first, all on one page. Needs the rights of the encounters
    /// they were taken in (others are left out, as in the vitals trend); audited.
    #[oai(path = "/", method = "get", operation_id = "fhir_observation_search")]
    async fn search(
        &self,
        state: Data<&AppState>,
        auth: Auth,
        req: &Request,
        /// The patient's id (`Patient/{id}` or `{id}`); required.
        patient: Query<Option<String>>,
        category: Query<Option<String>>,
        code: Query<Option<String>>,
    ) -> Result<Found<Bundle<Observation>>, FhirError> {
        let links = Links::of(req, "Observation");
        let empty = || Ok(Found::Ok(Json(links.whole(Vec::new()))));
        let searched = searched_patient(&state, patient.0).await?;
        let Some((pid, uuid)) =
            searched.filter(|_| category.0.as_deref().is_none_or(|c| token_code(c) == "vital-signs"))
        else {
            return empty();
        };
        let codes: Option<Vec<&str>> = code.0.as_deref().map(|c| c.split(',').map(token_code).collect());
        let mut readings = vitals::trend(&state, &auth.0, pid, None, None).await?;
        readings.reverse();
        let ids = vitals::observation_ids(&state, readings.iter().map(|r| &r.row)).await?;
        let subject = patient_reference(Some(&uuid[..]));
        let entries: Vec<_> = readings
            .iter()
            .flat_map(|r| observations(&r.row, ids.get(&r.row.id), &subject))
            .filter(|(_, code)| codes.as_ref().is_none_or(|wanted| wanted.contains(&code.as_str())))
            .map(|(o, _)| entry(&links, o.id.clone(), o))
            .collect();
        Ok(Found::Ok(Json(links.whole(entries))))
    }
}

/// What an Observation to record measured.
struct Measured {
    /// The LOINC code written, which the answer is the Observation of.
    code: String,
    units: UnitSystem,
    values: Vec<(Measure, f64)>,
}

fn measured(body: &ObservationCreate) -> Result<Measured, FhirError> {
    if body.resource_type != "Observation" {
        return Err(FhirError::invalid("resourceType", "must be Observation"));
    }
    if !["final", "amended", "corrected", "preliminary"].contains(&body.status.as_str()) {
        return Err(FhirError::invalid("status", "must be final, amended, corrected or preliminary"));
    }
    let loinc = |c: &CodeableConcept| {
        c.coding.iter().find(|c| c.system.as_deref().is_none_or(|s| s == LOINC)).and_then(|c| c.code.clone())
    };
    let code = loinc(&body.code).ok_or_else(|| FhirError::invalid("code", "needs a LOINC coding"))?;
    let unit = |q: &QuantityInput| q.code.clone().or_else(|| q.unit.clone()).unwrap_or_default();
    let one = |element: &str, code: &str, q: Option<&QuantityInput>| {
        let q = q.ok_or_else(|| FhirError::invalid(element, "is required: the measured value"))?;
        let (measure, units) =
            written_measure(code, &unit(q)).map_err(|why| FhirError::invalid(element, why))?;
        Ok::<_, FhirError>((measure, units, q.value))
    };
    if code == BLOOD_PRESSURE.0 {
        let mut values = Vec::new();
        for component in &body.component {
            let part = loinc(&component.code)
                .ok_or_else(|| FhirError::invalid("component", "needs a LOINC coding"))?;
            let (measure, _, value) = one("component", &part, component.value_quantity.as_ref())?;
            values.push((measure, value));
        }
        if values.is_empty() {
            return Err(FhirError::invalid(
                "component",
                "the blood-pressure panel needs its systolic or diastolic component",
            ));
        }
        return Ok(Measured { code, units: UnitSystem::Us, values });
    }
    if [SYSTOLIC.0, DIASTOLIC.0].contains(&code.as_str()) {
        let why = format!("send {code} as a component of the blood-pressure panel {}", BLOOD_PRESSURE.0);
        return Err(FhirError::invalid("code", why));
    }
    let (measure, units, value) = one("valueQuantity", &code, body.value_quantity.as_ref())?;
    Ok(Measured { code, units, values: vec![(measure, value)] })
}

/// The vitals validation names request fields; here they are the Observation's elements.
fn element(field: &str) -> &str {
    match field {
        "date" => "effectiveDateTime",
        "encounter" => "encounter",
        "bps" | "bpd" => "component",
        _ => "valueQuantity",
    }
}
