//! OpenEMR's reference data that clients pick from: facilities and providers. Not PHI, but still
//! only for signed-in callers.

use poem::web::Data;
use poem_openapi::{ApiResponse, Object, OpenApi, payload::Json};

use crate::{
    app::AppState,
    http::{ApiTags, auth::Auth, problem::ApiError},
    storage::openemr::{
        facilities::{self, FacilityRow},
        providers, uuid_registry,
    },
};

#[derive(Object)]
#[oai(skip_serializing_if_is_none)]
pub struct Facility {
    pub id: i64,
    pub uuid: Option<String>,
    pub name: String,
    pub phone: Option<String>,
    pub fax: Option<String>,
    pub street: Option<String>,
    pub city: Option<String>,
    pub state: Option<String>,
    pub postal_code: Option<String>,
    pub country_code: String,
    pub email: Option<String>,
    pub website: Option<String>,
    /// Federal tax id (EIN).
    pub tax_id: Option<String>,
    pub tax_id_type: String,
    pub npi: Option<String>,
    pub taxonomy: Option<String>,
    /// CMS place-of-service code.
    pub pos_code: Option<i64>,
    pub service_location: bool,
    pub billing_location: bool,
    pub accepts_assignment: bool,
    pub primary_business_entity: bool,
    pub color: String,
    pub active: bool,
}

impl From<FacilityRow> for Facility {
    fn from(f: FacilityRow) -> Self {
        Self {
            id: f.id,
            uuid: uuid_registry::to_string(f.uuid.as_deref()),
            name: f.name.unwrap_or_default(),
            phone: f.phone,
            fax: f.fax,
            street: f.street,
            city: f.city,
            state: f.state,
            postal_code: f.postal_code,
            country_code: f.country_code,
            email: f.email,
            website: f.website,
            tax_id: f.federal_ein,
            tax_id_type: f.tax_id_type,
            npi: f.facility_npi,
            taxonomy: f.facility_taxonomy,
            pos_code: f.pos_code.map(i64::from),
            service_location: f.service_location,
            billing_location: f.billing_location,
            accepts_assignment: f.accepts_assignment,
            primary_business_entity: f.primary_business_entity,
            color: f.color,
            active: !f.inactive,
        }
    }
}

#[derive(Object)]
#[oai(skip_serializing_if_is_none)]
pub struct Provider {
    /// OpenEMR `users.id`.
    pub id: i64,
    pub username: String,
    pub name: String,
    pub title: Option<String>,
    pub specialty: Option<String>,
    pub npi: Option<String>,
    pub facility_id: i64,
    pub facility: Option<String>,
}

#[derive(ApiResponse)]
pub enum FacilitiesResponse {
    #[oai(status = 200)]
    Ok(Json<Vec<Facility>>),
}

#[derive(ApiResponse)]
pub enum ProvidersResponse {
    #[oai(status = 200)]
    Ok(Json<Vec<Provider>>),
}

#[derive(Default)]
pub struct ReferenceApi;

#[OpenApi(prefix_path = "/openemr", tag = "ApiTags::Reference")]
impl ReferenceApi {
    /// OpenEMR facilities.
    #[oai(path = "/facilities/", method = "get", operation_id = "facilities_list")]
    async fn facilities(&self, state: Data<&AppState>, _auth: Auth) -> Result<FacilitiesResponse, ApiError> {
        let rows = facilities::list(&state.pool).await?;
        Ok(FacilitiesResponse::Ok(Json(rows.into_iter().map(Facility::from).collect())))
    }

    /// Active OpenEMR users who provide care (`authorized`), with specialty and facility.
    ///
    /// Not for guests: usernames are half of a sign-in.
    #[oai(path = "/providers/", method = "get", operation_id = "providers_list")]
    async fn providers(&self, state: Data<&AppState>, auth: Auth) -> Result<ProvidersResponse, ApiError> {
        if auth.0.is_guest() {
            return Err(ApiError::new(
                poem::http::StatusCode::FORBIDDEN,
                "guests cannot list OpenEMR's providers; sign in with an OpenEMR account",
            ));
        }
        let rows = providers::list(&state.pool).await?;
        Ok(ProvidersResponse::Ok(Json(
            rows.into_iter()
                .map(|p| Provider {
                    id: p.id,
                    name: format!("{} {}", p.fname.unwrap_or_default(), p.lname.unwrap_or_default())
                        .trim()
                        .to_string(),
                    username: p.username,
                    title: p.title,
                    specialty: p.specialty,
                    npi: p.npi,
                    facility_id: p.facility_id,
                    facility: p.facility,
                })
                .collect(),
        )))
    }
}
