//! Condition and AllergyIntolerance: OpenEMR's problem list and allergies (`lists`), with the ACL
//! (`patients|med`) and audit of the chart API.

use poem::{Request, web::Data};
use poem_openapi::{OpenApi, param::Path, param::Query, payload::Json};

use super::{
    FhirError, Found, Links, entry, instant,
    model::{
        AllergyIntolerance, AllergyReaction, Bundle, CodeableConcept, Coding, Condition, Meta, Reference,
    },
    patient_reference, searched_patient, subject_of, text, uuid_of,
};
use crate::{
    app::AppState,
    domain::{chart::issues::IssueType, fhir, patient::Pid},
    http::auth::Auth,
    service::{
        chart::{ChartError, issues},
        wall_clock_now,
    },
    storage::openemr::{chart::issues::IssueRow, uuid_registry},
};

pub const US_CORE_CONDITION: &str = "http://hl7.org/fhir/us/core/StructureDefinition/us-core-condition";
pub const US_CORE_ALLERGY: &str =
    "http://hl7.org/fhir/us/core/StructureDefinition/us-core-allergyintolerance";

/// The search parameters of the patient-scoped resources, as the CapabilityStatement lists them.
pub const BY_PATIENT: &[(&str, &str, &str)] =
    &[("patient", "reference", "the patient's id; required, and every match is on one page")];

#[derive(Default)]
pub struct ConditionApi;

#[OpenApi(prefix_path = "/Condition")]
impl ConditionApi {
    /// One problem-list entry. Needs OpenEMR `patients|med`; audited.
    #[oai(path = "/:id", method = "get", operation_id = "fhir_condition_read")]
    async fn read(
        &self,
        state: Data<&AppState>,
        auth: Auth,
        id: Path<String>,
    ) -> Result<Found<Condition>, FhirError> {
        let (row, patient) = read(&state, &auth, &id.0, IssueType::Problem).await?;
        let condition = condition_of(row, &patient)
            .ok_or_else(|| ChartError::NotFound("no medical_problem with this id".into()))?;
        Ok(Found::Ok(Json(condition)))
    }

    /// A patient's problem list, all in one page. Needs OpenEMR `patients|med`; audited.
    #[oai(path = "/", method = "get", operation_id = "fhir_condition_search")]
    async fn search(
        &self,
        state: Data<&AppState>,
        auth: Auth,
        req: &Request,
        /// The patient's id (`Patient/{id}` or `{id}`); required.
        patient: Query<Option<String>>,
    ) -> Result<Found<Bundle<Condition>>, FhirError> {
        let links = Links::of(req, "Condition");
        let (rows, patient) = search(&state, &auth, patient.0, IssueType::Problem).await?;
        let entries: Vec<_> = rows
            .into_iter()
            .filter_map(|row| condition_of(row, &patient))
            .map(|c| entry(&links, c.id.clone(), c))
            .collect();
        Ok(Found::Ok(Json(links.whole(entries))))
    }
}

#[derive(Default)]
pub struct AllergyApi;

#[OpenApi(prefix_path = "/AllergyIntolerance")]
impl AllergyApi {
    /// One allergy. Needs OpenEMR `patients|med`; audited.
    #[oai(path = "/:id", method = "get", operation_id = "fhir_allergy_read")]
    async fn read(
        &self,
        state: Data<&AppState>,
        auth: Auth,
        id: Path<String>,
    ) -> Result<Found<AllergyIntolerance>, FhirError> {
        let (row, patient) = read(&state, &auth, &id.0, IssueType::Allergy).await?;
        let allergy = allergy_of(row, &patient)
            .ok_or_else(|| ChartError::NotFound("no allergy with this id".into()))?;
        Ok(Found::Ok(Json(allergy)))
    }

    /// A patient's allergies, all in one page. Needs OpenEMR `patients|med`; audited.
    #[oai(path = "/", method = "get", operation_id = "fhir_allergy_search")]
    async fn search(
        &self,
        state: Data<&AppState>,
        auth: Auth,
        req: &Request,
        /// The patient's id (`Patient/{id}` or `{id}`); required.
        patient: Query<Option<String>>,
    ) -> Result<Found<Bundle<AllergyIntolerance>>, FhirError> {
        let links = Links::of(req, "AllergyIntolerance");
        let (rows, patient) = search(&state, &auth, patient.0, IssueType::Allergy).await?;
        let entries: Vec<_> = rows
            .into_iter()
            .filter_map(|row| allergy_of(row, &patient))
            .map(|a| entry(&links, a.id.clone(), a))
            .collect();
        Ok(Found::Ok(Json(links.whole(entries))))
    }
}

/// The issue, with a reference to its patient.
async fn read(
    state: &AppState,
    auth: &Auth,
    id: &str,
    kind: IssueType,
) -> Result<(IssueRow, Reference), FhirError> {
    let missing = || ChartError::NotFound(format!("no {} with this id", kind.db_type()));
    let uuid = uuid_of(id).ok_or_else(missing)?;
    let row = issues::get_by_uuid(state, &auth.0, &uuid, kind).await?.row;
    let subject = subject_of(state, Pid(row.pid.unwrap_or_default())).await?;
    Ok((row, subject))
}

/// The patient's issues of `kind`, with a reference to the patient; none for a patient id that
/// names no one.
async fn search(
    state: &AppState,
    auth: &Auth,
    patient: Option<String>,
    kind: IssueType,
) -> Result<(Vec<IssueRow>, Reference), FhirError> {
    let Some((pid, uuid)) = searched_patient(state, patient).await? else {
        return Ok((Vec::new(), patient_reference(None)));
    };
    let rows = issues::list(state, &auth.0, pid, kind).await?.into_iter().map(|i| i.row).collect();
    Ok((rows, patient_reference(Some(&uuid[..]))))
}

fn concept(system: &str, code: &str) -> CodeableConcept {
    CodeableConcept {
        coding: vec![Coding { system: Some(system.into()), code: Some(code.into()), display: None }],
        text: None,
    }
}

/// The issue's title as text, with the codes of its `diagnosis`.
fn code_of(row: &IssueRow) -> CodeableConcept {
    let coding = fhir::codings(row.diagnosis.as_deref().unwrap_or_default())
        .into_iter()
        .map(|(system, code)| Coding { system: system.map(Into::into), code: Some(code), display: None })
        .collect();
    CodeableConcept { coding, text: row.title.as_deref().and_then(text) }
}

fn meta(row: &IssueRow, profile: &str) -> Meta {
    Meta { version_id: None, last_updated: instant(row.modifydate), profile: vec![profile.into()] }
}

fn clinical_status(row: &IssueRow, system: &str) -> CodeableConcept {
    let ended = row.enddate.map(|e| e.date());
    concept(system, fhir::clinical_status(row.outcome, ended, wall_clock_now().date()))
}

fn condition_of(row: IssueRow, patient: &Reference) -> Option<Condition> {
    let id = uuid_registry::to_string(row.uuid.as_deref())?;
    let verification = fhir::verification(&row.verification, fhir::CONDITION_VERIFICATION);
    Some(Condition {
        resource_type: "Condition".into(),
        id,
        meta: meta(&row, US_CORE_CONDITION),
        clinical_status: Some(clinical_status(
            &row,
            "http://terminology.hl7.org/CodeSystem/condition-clinical",
        )),
        verification_status: verification
            .map(|v| concept("http://terminology.hl7.org/CodeSystem/condition-ver-status", v)),
        category: vec![concept(
            "http://terminology.hl7.org/CodeSystem/condition-category",
            "problem-list-item",
        )],
        code: code_of(&row),
        subject: patient.clone(),
        onset_date_time: row.begdate.and_then(instant),
        abatement_date_time: row.enddate.and_then(instant),
        recorded_date: row.date.and_then(instant),
    })
}

fn allergy_of(row: IssueRow, patient: &Reference) -> Option<AllergyIntolerance> {
    let id = uuid_registry::to_string(row.uuid.as_deref())?;
    let verification = fhir::verification(&row.verification, fhir::ALLERGY_VERIFICATION);
    let reaction = text(&row.reaction).map(|manifestation| AllergyReaction {
        manifestation: vec![CodeableConcept { coding: Vec::new(), text: Some(manifestation) }],
        severity: row.severity_al.as_deref().and_then(fhir::reaction_severity).map(Into::into),
    });
    Some(AllergyIntolerance {
        resource_type: "AllergyIntolerance".into(),
        id,
        meta: meta(&row, US_CORE_ALLERGY),
        clinical_status: Some(clinical_status(
            &row,
            "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical",
        )),
        verification_status: verification
            .map(|v| concept("http://terminology.hl7.org/CodeSystem/allergyintolerance-verification", v)),
        code: code_of(&row),
        patient: patient.clone(),
        onset_date_time: row.begdate.and_then(instant),
        recorded_date: row.date.and_then(instant),
        reaction: reaction.into_iter().collect(),
    })
}
