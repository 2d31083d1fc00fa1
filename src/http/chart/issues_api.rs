use chrono::NaiveDateTime;
use poem::web::Data;
use poem_openapi::{ApiResponse, Object, OpenApi, param::Path, payload::Json};

use crate::{
    app::AppState,
    domain::{chart::issues::IssueType, patient::Pid, validation::Issues},
    http::{ApiTags, auth::Auth, problem::ApiError},
    service::chart::issues::{self, Issue, IssueInput, Status},
    storage::openemr::uuid_registry,
};

/// An allergy, problem or medication. Only these fields exist; list-coded fields take the
/// option id of OpenEMR's list (unknown ones are refused with the allowed values).
#[derive(Object, Default)]
#[oai(deny_unknown_fields)]
pub struct IssueBody {
    /// PATCH only: `ended` (sets `enddate`, default now) or `active` (clears it).
    pub status: Option<String>,
    /// 2 to 255 characters; required on create.
    pub title: Option<String>,
    /// Onset: YYYY-MM-DD or YYYY-MM-DDTHH:MM[:SS].
    pub begdate: Option<String>,
    /// Resolved / stopped; an issue with an end date is inactive in OpenEMR and FHIR.
    pub enddate: Option<String>,
    /// `SYSTEM:CODE` entries: problems `ICD10:`/`SNOMED-CT:`, medications `RXCUI:`, allergens
    /// `RXCUI:`/`SNOMED-CT:`. Replaces the stored codes.
    #[oai(validator(max_items = 10))]
    pub codes: Option<Vec<String>>,
    pub comments: Option<String>,
    /// List `outcome`: 0 unassigned, 1 resolved, 2 improved, 3 status quo, 4 worse, 5 pending follow-up.
    pub outcome: Option<String>,
    /// List `occurrence`, e.g. 1 first, 4 chronic/recurrent.
    pub occurrence: Option<String>,
    /// Allergies: list `severity_ccda`, e.g. mild, moderate, severe.
    pub severity: Option<String>,
    /// Allergies: list `reaction`, e.g. hives, nausea.
    pub reaction: Option<String>,
    /// Allergies: list `allergyintolerance-verification`, e.g. confirmed.
    pub verification: Option<String>,
    /// Link to this encounter of the patient (`issue_encounter`).
    pub encounter: Option<i64>,
    /// Medications: free-text dosage instructions.
    pub dosage_instructions: Option<String>,
    /// Medications: list `medication-usage-category`, e.g. community.
    pub usage_category: Option<String>,
    /// Medications: list `medication-request-intent`, e.g. order, plan.
    pub request_intent: Option<String>,
}

impl IssueBody {
    fn split(self) -> (Option<String>, IssueInput) {
        let input = IssueInput {
            title: self.title,
            begdate: self.begdate,
            enddate: self.enddate,
            codes: self.codes,
            comments: self.comments,
            outcome: self.outcome,
            occurrence: self.occurrence,
            severity: self.severity,
            reaction: self.reaction,
            verification: self.verification,
            encounter: self.encounter,
            dosage_instructions: self.dosage_instructions,
            usage_category: self.usage_category,
            request_intent: self.request_intent,
        };
        (self.status, input)
    }
}

#[derive(Object)]
#[oai(skip_serializing_if_is_none)]
pub struct IssueOut {
    /// lists.id
    pub id: i64,
    pub uuid: Option<String>,
    pub pid: i64,
    /// `allergy`, `medical_problem` or `medication`.
    #[oai(rename = "type")]
    pub kind: String,
    pub title: String,
    pub begdate: Option<NaiveDateTime>,
    pub enddate: Option<NaiveDateTime>,
    /// No end date: a current issue.
    pub active: bool,
    pub codes: Vec<String>,
    pub comments: Option<String>,
    pub outcome: i32,
    pub occurrence: i32,
    pub severity: Option<String>,
    pub reaction: Option<String>,
    pub verification: Option<String>,
    /// Encounters the issue is linked to.
    pub encounters: Vec<i64>,
    pub dosage_instructions: Option<String>,
    pub usage_category: Option<String>,
    pub request_intent: Option<String>,
    /// OpenEMR username of whoever entered it.
    pub recorded_by: Option<String>,
    pub date: Option<NaiveDateTime>,
    pub modified: NaiveDateTime,
}

impl From<Issue> for IssueOut {
    fn from(i: Issue) -> Self {
        let r = i.row;
        let text = |s: Option<String>| s.filter(|s| !s.is_empty());
        Self {
            id: r.id,
            uuid: uuid_registry::to_string(r.uuid.as_deref()),
            pid: r.pid.unwrap_or_default(),
            kind: i.kind.db_type().into(),
            title: r.title.unwrap_or_default(),
            begdate: r.begdate,
            active: r.enddate.is_none() && r.activity != Some(0),
            enddate: r.enddate,
            codes: r
                .diagnosis
                .unwrap_or_default()
                .split(';')
                .filter(|c| !c.is_empty())
                .map(str::to_string)
                .collect(),
            comments: text(r.comments),
            outcome: r.outcome,
            occurrence: r.occurrence.unwrap_or_default(),
            severity: text(r.severity_al),
            reaction: text(Some(r.reaction)),
            verification: text(Some(r.verification)),
            encounters: i.encounters,
            dosage_instructions: text(r.drug_dosage_instructions),
            usage_category: text(r.usage_category),
            request_intent: text(r.request_intent),
            recorded_by: r.user,
            date: r.date,
            modified: r.modifydate,
        }
    }
}

#[derive(Object)]
pub struct IssueList {
    pub items: Vec<IssueOut>,
}

#[derive(ApiResponse)]
pub enum ListResponse {
    #[oai(status = 200)]
    Ok(Json<IssueList>),
}

/// A patient's allergies, problems and medications, each current first.
#[derive(Object)]
pub struct ChartSummary {
    pub pid: i64,
    pub allergies: Vec<IssueOut>,
    pub problems: Vec<IssueOut>,
    pub medications: Vec<IssueOut>,
}

#[derive(ApiResponse)]
pub enum ChartResponse {
    #[oai(status = 200)]
    Ok(Json<ChartSummary>),
}

#[derive(ApiResponse)]
pub enum IssueResponse {
    #[oai(status = 200)]
    Ok(Json<IssueOut>),
}

#[derive(ApiResponse)]
pub enum Created {
    /// Added to the patient's list (with `lists_medication` for a medication).
    #[oai(status = 201)]
    Created(Json<IssueOut>, #[oai(header = "Location")] String),
}

#[derive(Default)]
pub struct IssuesApi;

async fn list_of(state: &AppState, auth: Auth, pid: i64, kind: IssueType) -> Result<ListResponse, ApiError> {
    let found = issues::list(state, &auth.0, Pid(pid), kind).await?;
    Ok(ListResponse::Ok(Json(IssueList { items: found.into_iter().map(IssueOut::from).collect() })))
}

async fn create(
    state: &AppState,
    auth: Auth,
    pid: i64,
    kind: IssueType,
    body: IssueBody,
) -> Result<Created, ApiError> {
    let (status, input) = body.split();
    if status.is_some() {
        let mut problems = Issues::default();
        problems.add("status", "is set by PATCH /api/issues/{id}/ only");
        return Err(problems.into());
    }
    let issue = issues::create(state, &auth.0, Pid(pid), kind, input).await?;
    let location = format!("/api/issues/{}/", issue.row.id);
    Ok(Created::Created(Json(issue.into()), location))
}

#[OpenApi(tag = "ApiTags::Chart")]
impl IssuesApi {
    /// The patient's allergies, current first. Needs OpenEMR `patients|med`.
    #[oai(path = "/patients/:pid/allergies/", method = "get", operation_id = "patient_allergies")]
    async fn allergies(
        &self,
        state: Data<&AppState>,
        auth: Auth,
        pid: Path<i64>,
    ) -> Result<ListResponse, ApiError> {
        list_of(&state, auth, pid.0, IssueType::Allergy).await
    }

    /// Add an allergy as OpenEMR's issue screen does. Needs `patients|med` write or addonly.
    #[oai(path = "/patients/:pid/allergies/", method = "post", operation_id = "patient_allergies_create")]
    async fn add_allergy(
        &self,
        state: Data<&AppState>,
        auth: Auth,
        pid: Path<i64>,
        body: Json<IssueBody>,
    ) -> Result<Created, ApiError> {
        create(&state, auth, pid.0, IssueType::Allergy, body.0).await
    }

    /// The patient's problem list, current first. Needs OpenEMR `patients|med`.
    #[oai(path = "/patients/:pid/problems/", method = "get", operation_id = "patient_problems")]
    async fn problems(
        &self,
        state: Data<&AppState>,
        auth: Auth,
        pid: Path<i64>,
    ) -> Result<ListResponse, ApiError> {
        list_of(&state, auth, pid.0, IssueType::Problem).await
    }

    /// Add a problem (`medical_problem`), coded with ICD-10 or SNOMED CT.
    #[oai(path = "/patients/:pid/problems/", method = "post", operation_id = "patient_problems_create")]
    async fn add_problem(
        &self,
        state: Data<&AppState>,
        auth: Auth,
        pid: Path<i64>,
        body: Json<IssueBody>,
    ) -> Result<Created, ApiError> {
        create(&state, auth, pid.0, IssueType::Problem, body.0).await
    }

    /// The patient's medication list, current first. Needs OpenEMR `patients|med`.
    #[oai(path = "/patients/:pid/medications/", method = "get", operation_id = "patient_medications")]
    async fn medications(
        &self,
        state: Data<&AppState>,
        auth: Auth,
        pid: Path<i64>,
    ) -> Result<ListResponse, ApiError> {
        list_of(&state, auth, pid.0, IssueType::Medication).await
    }

    /// Add a medication (RxNorm-coded) with its `lists_medication` row.
    #[oai(path = "/patients/:pid/medications/", method = "post", operation_id = "patient_medications_create")]
    async fn add_medication(
        &self,
        state: Data<&AppState>,
        auth: Auth,
        pid: Path<i64>,
        body: Json<IssueBody>,
    ) -> Result<Created, ApiError> {
        create(&state, auth, pid.0, IssueType::Medication, body.0).await
    }

    /// The patient's allergies, problems and medications in one request. Needs `patients|med`.
    #[oai(path = "/patients/:pid/chart/", method = "get", operation_id = "patient_chart")]
    async fn chart(
        &self,
        state: Data<&AppState>,
        auth: Auth,
        pid: Path<i64>,
    ) -> Result<ChartResponse, ApiError> {
        let [allergies, problems, medications] = issues::chart(&state, &auth.0, Pid(pid.0)).await?;
        let out = |list: Vec<Issue>| list.into_iter().map(IssueOut::from).collect();
        Ok(ChartResponse::Ok(Json(ChartSummary {
            pid: pid.0,
            allergies: out(allergies),
            problems: out(problems),
            medications: out(medications),
        })))
    }

    /// One allergy, problem or medication.
    #[oai(path = "/issues/:id/", method = "get", operation_id = "issues_get")]
    async fn get(
        &self,
        state: Data<&AppState>,
        auth: Auth,
        id: Path<i64>,
    ) -> Result<IssueResponse, ApiError> {
        Ok(IssueResponse::Ok(Json(issues::get(&state, &auth.0, id.0).await?.into())))
    }

    /// Edit, end (`status: ended`) or reactivate (`status: active`) an issue; issues are never
    /// deleted. Needs `patients|med` write.
    #[oai(path = "/issues/:id/", method = "patch", operation_id = "issues_update")]
    async fn update(
        &self,
        state: Data<&AppState>,
        auth: Auth,
        id: Path<i64>,
        body: Json<IssueBody>,
    ) -> Result<IssueResponse, ApiError> {
        let (status, input) = body.0.split();
        let status = match status.as_deref() {
            None => None,
            Some("ended") => Some(Status::Ended),
            Some("active") => Some(Status::Active),
            Some(_) => {
                let mut problems = Issues::default();
                problems.add("status", "must be ended or active");
                return Err(problems.into());
            }
        };
        Ok(IssueResponse::Ok(Json(issues::update(&state, &auth.0, id.0, status, input).await?.into())))
    }
}
