//! Condition and AllergyIntolerance: OpenEMR's problem list and allergies (`lists`), with the ACL
//! (`patients|med`) and audit of the chart API.

use poem::{Request, web::Data};
use poem_openapi::{OpenApi, param::Path, param::Query, payload::Json};

use super::{
    FhirError, Found, Links, entry,
    model::{AllergyIntolerance, Bundle, Condition, Reference},
    patient_reference, searched_patient, subject_of, uuid_of,
};
use crate::{
    app::AppState,
    domain::{chart::issues::IssueType, patient::Pid},
    fhir::issues::{allergy_of, condition_of},
    http::auth::Auth,
    service::chart::{ChartError, issues},
    storage::openemr::chart::issues::IssueRow,
};

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
