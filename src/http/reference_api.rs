//! OpenEMR's reference data that clients pick from: providers (facilities: `admin::facilities_api`).
//! Not PHI, but still only for signed-in callers.

use poem::web::Data;
use poem_openapi::{ApiResponse, Object, OpenApi, payload::Json};

use crate::{
    app::AppState,
    http::{ApiTags, auth::Auth, problem::ApiError},
    storage::openemr::providers,
};

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
pub enum ProvidersResponse {
    #[oai(status = 200)]
    Ok(Json<Vec<Provider>>),
}

#[derive(Default)]
pub struct ReferenceApi;

#[OpenApi(prefix_path = "/openemr", tag = "ApiTags::Reference")]
impl ReferenceApi {
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
