use chrono::{NaiveDate, NaiveDateTime};
use poem::web::Data;
use poem_openapi::{
    ApiResponse, Object, OpenApi,
    param::{Path, Query},
    payload::{Binary, Json},
};

use crate::{
    app::AppState,
    domain::{
        chart::prescription::{self as rules, Substitution},
        patient::Pid,
        validation::Issues,
    },
    http::{ApiTags, auth::Auth, problem::ApiError},
    service::chart::{
        prescription_pdf,
        prescriptions::{self, Created as Outcome, Prescription, PrescriptionInput},
    },
    storage::openemr::{chart::prescriptions::AustralianExtras, uuid_registry},
};

/// Australian prescriber and patient details, kept beside the prescription and printed on it.
#[derive(Object, Default, Clone)]
#[oai(deny_unknown_fields)]
pub struct Australian {
    /// PBS prescriber number (6 or 7 digits).
    pub prescriber_number: Option<String>,
    /// HPI-I of the prescriber (16 digits).
    pub prescriber_hpii: Option<String>,
    /// The patient's Medicare card number (10 or 11 digits).
    pub medicare_number: Option<String>,
    /// The patient's IHI (16 digits).
    pub ihi: Option<String>,
    /// A PBS prescription.
    #[oai(default)]
    pub pbs: bool,
    /// Poisons schedule: S4, S4D or S8 (controlled drug).
    pub controlled_schedule: Option<String>,
}

impl From<Australian> for AustralianExtras {
    fn from(a: Australian) -> Self {
        Self {
            prescriber_number: a.prescriber_number,
            prescriber_hpii: a.prescriber_hpii,
            medicare_number: a.medicare_number,
            ihi: a.ihi,
            pbs: a.pbs,
            controlled_schedule: a.controlled_schedule,
        }
    }
}

/// A prescription. Coded fields take the option id or the title of OpenEMR's list (`drug_form`,
/// `drug_units`, `drug_route`, `drug_interval`); unknown values are refused with the allowed ones.
#[derive(Object, Default)]
#[oai(deny_unknown_fields)]
pub struct PrescriptionBody {
    /// Client key for an idempotent create (stored in `prescriptions.external_id`, max 20).
    pub external_id: Option<String>,
    /// Drug name (max 150); required on create unless `product_id` names it.
    pub drug: Option<String>,
    /// A current catalogue product (`GET /api/products/`), create only: it names the drug when
    /// `drug` is not given, and a product linked to an inventory drug is prescribed as that drug.
    pub product_id: Option<i64>,
    /// RxNorm RXCUI.
    pub rxnorm_drugcode: Option<String>,
    /// Prescriber (`users.id`); default the caller.
    pub provider_id: Option<i64>,
    /// The patient's encounter it was written in.
    pub encounter: Option<i64>,
    /// YYYY-MM-DD; default today.
    pub start_date: Option<String>,
    /// Strength, e.g. "500".
    pub size: Option<String>,
    /// `drug_units`, e.g. "1" or "mg".
    pub unit: Option<String>,
    /// Dose, e.g. "1"; required on create.
    pub dosage: Option<String>,
    /// `drug_form`, e.g. "2" or "tablet".
    pub form: Option<String>,
    /// `drug_route`, e.g. "1" or "Per Oris".
    pub route: Option<String>,
    /// `drug_interval`, e.g. "1" or "b.i.d.".
    pub interval: Option<String>,
    /// Quantity to dispense; required on create.
    pub quantity: Option<String>,
    /// 0 to 20.
    pub refills: Option<i32>,
    pub per_refill: Option<i32>,
    pub substitution_allowed: Option<bool>,
    /// Also put the drug on the patient's medication list.
    pub medication: Option<bool>,
    pub note: Option<String>,
    /// Free-text directions (sig).
    pub dosage_instructions: Option<String>,
    /// `medication-usage-category`; default outpatient.
    pub usage_category: Option<String>,
    /// `medication-request-intent`; default order.
    pub request_intent: Option<String>,
    /// PATCH only: false discontinues (stored as the prescription screen does), true reactivates.
    pub active: Option<bool>,
    pub australian: Option<Australian>,
}

impl PrescriptionBody {
    fn split(self) -> (Option<String>, PrescriptionInput) {
        let input = PrescriptionInput {
            drug: self.drug,
            product_id: self.product_id,
            rxnorm_drugcode: self.rxnorm_drugcode,
            provider_id: self.provider_id,
            encounter: self.encounter,
            start_date: self.start_date,
            size: self.size,
            unit: self.unit,
            dosage: self.dosage,
            form: self.form,
            route: self.route,
            interval: self.interval,
            quantity: self.quantity,
            refills: self.refills,
            per_refill: self.per_refill,
            substitution_allowed: self.substitution_allowed,
            medication: self.medication,
            note: self.note,
            usage_category: self.usage_category,
            request_intent: self.request_intent,
            dosage_instructions: self.dosage_instructions,
            active: self.active,
            australian: self.australian.map(Into::into),
        };
        (self.external_id, input)
    }
}

#[derive(Object)]
#[oai(skip_serializing_if_is_none)]
pub struct AustralianOut {
    pub prescriber_number: Option<String>,
    pub prescriber_hpii: Option<String>,
    pub medicare_number: Option<String>,
    pub ihi: Option<String>,
    pub pbs: bool,
    pub controlled_schedule: Option<String>,
}

#[derive(Object)]
#[oai(skip_serializing_if_is_none)]
pub struct PrescriptionOut {
    /// prescriptions.id (from OpenEMR's sequences).
    pub id: i64,
    pub uuid: Option<String>,
    pub pid: i64,
    pub provider_id: Option<i64>,
    pub encounter: Option<i64>,
    pub start_date: Option<NaiveDate>,
    pub drug: String,
    /// The OpenEMR inventory drug (`drugs.drug_id`) prescribed, when there is one.
    pub drug_id: Option<i32>,
    /// The catalogue product it was written for.
    pub product_id: Option<i64>,
    pub rxnorm_drugcode: Option<String>,
    pub size: Option<String>,
    /// Option ids of OpenEMR's lists.
    pub unit: Option<String>,
    pub dosage: Option<String>,
    pub form: Option<String>,
    pub route: Option<String>,
    pub interval: Option<String>,
    pub quantity: Option<String>,
    pub refills: i32,
    pub per_refill: i32,
    pub substitution_allowed: Option<bool>,
    pub medication: bool,
    pub note: Option<String>,
    pub dosage_instructions: Option<String>,
    pub usage_category: Option<String>,
    pub request_intent: Option<String>,
    /// False once discontinued.
    pub active: bool,
    pub external_id: Option<String>,
    pub date_added: Option<NaiveDateTime>,
    pub date_modified: Option<NaiveDateTime>,
    pub australian: Option<AustralianOut>,
}

impl From<Prescription> for PrescriptionOut {
    fn from(p: Prescription) -> Self {
        let r = p.row;
        let code = |v: Option<i32>| v.map(|n| n.to_string());
        Self {
            id: r.id,
            uuid: uuid_registry::to_string(r.uuid.as_deref()),
            pid: r.patient_id.unwrap_or_default(),
            provider_id: r.provider_id,
            encounter: r.encounter,
            start_date: r.start_date,
            drug: r.drug.unwrap_or_default(),
            drug_id: Some(r.drug_id).filter(|d| *d != 0),
            product_id: p.product_id,
            rxnorm_drugcode: r.rxnorm_drugcode,
            size: r.size,
            unit: code(r.unit),
            dosage: r.dosage,
            form: code(r.form),
            route: r.route,
            interval: code(r.interval),
            quantity: r.quantity,
            refills: r.refills.unwrap_or_default(),
            per_refill: r.per_refill.unwrap_or_default(),
            substitution_allowed: Substitution::from_db(r.substitute).map(|s| s == Substitution::Allowed),
            medication: r.medication == Some(1),
            note: r.note,
            dosage_instructions: r.drug_dosage_instructions,
            usage_category: r.usage_category,
            request_intent: r.request_intent,
            active: rules::is_active(r.active),
            external_id: r.external_id,
            date_added: r.date_added,
            date_modified: r.date_modified,
            australian: p.extras.map(|x| AustralianOut {
                prescriber_number: x.prescriber_number,
                prescriber_hpii: x.prescriber_hpii,
                medicare_number: x.medicare_number,
                ihi: x.ihi,
                pbs: x.pbs,
                controlled_schedule: x.controlled_schedule,
            }),
        }
    }
}

#[derive(Object)]
pub struct PrescriptionList {
    pub items: Vec<PrescriptionOut>,
}

#[derive(ApiResponse)]
pub enum ListResponse {
    #[oai(status = 200)]
    Ok(Json<PrescriptionList>),
}

#[derive(ApiResponse)]
pub enum PrescriptionResponse {
    #[oai(status = 200)]
    Ok(Json<PrescriptionOut>),
}

#[derive(ApiResponse)]
pub enum CreateResponse {
    /// Written as OpenEMR's prescription screen writes it.
    #[oai(status = 201)]
    Created(Json<PrescriptionOut>, #[oai(header = "Location")] String),
    /// The same `external_id` and body again: the prescription made the first time.
    #[oai(status = 200)]
    Replayed(Json<PrescriptionOut>, #[oai(header = "Location")] String),
}

#[derive(ApiResponse)]
pub enum PdfResponse {
    #[oai(status = 200, content_type = "application/pdf")]
    Pdf(Binary<Vec<u8>>, #[oai(header = "Content-Disposition")] String),
}

fn location(id: i64) -> String {
    format!("/api/prescriptions/{id}/")
}

fn pdf_response(bytes: Vec<u8>, name: &str) -> PdfResponse {
    PdfResponse::Pdf(Binary(bytes), format!("inline; filename=\"{name}.pdf\""))
}

fn parse_ids(raw: &str) -> Result<Vec<i64>, ApiError> {
    let ids: Option<Vec<i64>> = raw.split(',').map(|s| s.trim().parse().ok()).collect();
    match ids {
        Some(ids) if !ids.is_empty() && ids.len() <= 50 => Ok(ids),
        _ => {
            let mut problems = Issues::default();
            problems.add("ids", "must be 1 to 50 prescription ids separated by commas");
            Err(problems.into())
        }
    }
}

#[derive(Default)]
pub struct PrescriptionsApi;

#[OpenApi(tag = "ApiTags::Chart")]
impl PrescriptionsApi {
    /// The patient's prescriptions, active first. Needs OpenEMR `patients|rx`.
    #[oai(path = "/patients/:pid/prescriptions/", method = "get", operation_id = "patient_prescriptions")]
    async fn list(
        &self,
        state: Data<&AppState>,
        auth: Auth,
        pid: Path<i64>,
    ) -> Result<ListResponse, ApiError> {
        let found = prescriptions::list(&state, &auth.0, Pid(pid.0)).await?;
        Ok(ListResponse::Ok(Json(PrescriptionList { items: found.into_iter().map(Into::into).collect() })))
    }

    /// Write a prescription (id from OpenEMR's sequences; `medication: true` also lists the drug).
    /// Needs `patients|rx` write or addonly.
    #[oai(
        path = "/patients/:pid/prescriptions/",
        method = "post",
        operation_id = "patient_prescriptions_create"
    )]
    async fn create(
        &self,
        state: Data<&AppState>,
        auth: Auth,
        pid: Path<i64>,
        body: Json<PrescriptionBody>,
    ) -> Result<CreateResponse, ApiError> {
        let (key, input) = body.0.split();
        Ok(match prescriptions::create(&state, &auth.0, Pid(pid.0), key.as_deref(), input).await? {
            Outcome::New(rx) => {
                let at = location(rx.row.id);
                CreateResponse::Created(Json(rx.into()), at)
            }
            Outcome::Replayed(rx) => {
                let at = location(rx.row.id);
                CreateResponse::Replayed(Json(rx.into()), at)
            }
        })
    }

    /// The patient's prescriptions `ids` (comma separated) in one PDF, a page each.
    #[oai(
        path = "/patients/:pid/prescriptions/pdf",
        method = "get",
        operation_id = "patient_prescriptions_pdf"
    )]
    async fn patient_pdf(
        &self,
        state: Data<&AppState>,
        auth: Auth,
        pid: Path<i64>,
        ids: Query<String>,
    ) -> Result<PdfResponse, ApiError> {
        let ids = parse_ids(&ids.0)?;
        let bytes = prescription_pdf::pdf(&state, &auth.0, &ids, Some(Pid(pid.0))).await?;
        Ok(pdf_response(bytes, &format!("prescriptions-{}", pid.0)))
    }

    /// One prescription.
    #[oai(path = "/prescriptions/:id/", method = "get", operation_id = "prescriptions_get")]
    async fn get(
        &self,
        state: Data<&AppState>,
        auth: Auth,
        id: Path<i64>,
    ) -> Result<PrescriptionResponse, ApiError> {
        Ok(PrescriptionResponse::Ok(Json(prescriptions::get(&state, &auth.0, id.0).await?.into())))
    }

    /// Edit, discontinue (`active: false`) or reactivate a prescription; never deleted.
    /// Needs `patients|rx` write.
    #[oai(path = "/prescriptions/:id/", method = "patch", operation_id = "prescriptions_update")]
    async fn update(
        &self,
        state: Data<&AppState>,
        auth: Auth,
        id: Path<i64>,
        body: Json<PrescriptionBody>,
    ) -> Result<PrescriptionResponse, ApiError> {
        let (key, input) = body.0.split();
        if key.is_some() {
            let mut problems = Issues::default();
            problems.add("external_id", "is set on create only");
            return Err(problems.into());
        }
        Ok(PrescriptionResponse::Ok(Json(prescriptions::update(&state, &auth.0, id.0, input).await?.into())))
    }

    /// The printable prescription (paper size from OpenEMR's `rx_paper_size`).
    #[oai(path = "/prescriptions/:id/pdf", method = "get", operation_id = "prescriptions_pdf")]
    async fn pdf(&self, state: Data<&AppState>, auth: Auth, id: Path<i64>) -> Result<PdfResponse, ApiError> {
        let bytes = prescription_pdf::pdf(&state, &auth.0, &[id.0], None).await?;
        Ok(pdf_response(bytes, &format!("prescription-{}", id.0)))
    }
}
