use poem::web::Data;
use poem_openapi::{ApiResponse, Object, OpenApi, payload::Json};

use crate::{
    app::AppState,
    domain::dashboard::profile::Field,
    http::{ApiTags, auth::Auth, problem::ApiError},
    service::dashboard::profile::{self, Profile},
};

/// The signed-in user's OpenEMR user record (`users`).
#[derive(Object)]
#[oai(skip_serializing_if_is_none)]
pub struct ProfileView {
    /// OpenEMR `users.id`.
    pub id: i64,
    pub username: String,
    pub title: Option<String>,
    pub fname: Option<String>,
    pub mname: Option<String>,
    pub lname: Option<String>,
    pub suffix: Option<String>,
    pub valedictory: Option<String>,
    pub specialty: Option<String>,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub phone_work: Option<String>,
    pub phone_cell: Option<String>,
    pub fax: Option<String>,
    pub npi: Option<String>,
    pub taxonomy: String,
    pub state_license_number: Option<String>,
    pub facility_id: i64,
    pub facility: Option<String>,
    /// A provider in OpenEMR (`users.authorized`).
    pub provider: bool,
    /// The fields PATCH accepts from this user: OpenEMR lets a user change their own record
    /// only with `admin|users` (names, specialty, identifiers) or `admin|practice` (email and
    /// phone numbers, as the address book does); otherwise none.
    pub editable: Vec<String>,
}

impl From<Profile> for ProfileView {
    fn from(p: Profile) -> Self {
        let r = p.row;
        Self {
            id: r.id,
            username: r.username,
            title: r.title,
            fname: r.fname,
            mname: r.mname,
            lname: r.lname,
            suffix: r.suffix,
            valedictory: r.valedictory,
            specialty: r.specialty,
            email: r.email,
            phone: r.phone,
            phone_work: r.phonew1,
            phone_cell: r.phonecell,
            fax: r.fax,
            npi: r.npi,
            taxonomy: r.taxonomy,
            state_license_number: r.state_license_number,
            facility_id: r.facility_id,
            facility: r.facility,
            provider: r.authorized,
            editable: p.editable.into_iter().map(|f| f.name().to_string()).collect(),
        }
    }
}

/// Changes to the caller's own record. Only these fields exist (any other, such as `username`,
/// `active` or `facility_id`, is refused with 400); each needs the OpenEMR permission that
/// `editable` reflects, else the whole change is refused with 403 naming the fields.
#[derive(Object)]
#[oai(deny_unknown_fields)]
pub struct ProfileChange {
    pub fname: Option<String>,
    pub mname: Option<String>,
    pub lname: Option<String>,
    pub suffix: Option<String>,
    pub valedictory: Option<String>,
    pub specialty: Option<String>,
    pub npi: Option<String>,
    pub taxonomy: Option<String>,
    pub state_license_number: Option<String>,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub phone_work: Option<String>,
    pub phone_cell: Option<String>,
    pub fax: Option<String>,
}

impl ProfileChange {
    fn requested(self) -> Vec<(Field, String)> {
        [
            (Field::Fname, self.fname),
            (Field::Mname, self.mname),
            (Field::Lname, self.lname),
            (Field::Suffix, self.suffix),
            (Field::Valedictory, self.valedictory),
            (Field::Specialty, self.specialty),
            (Field::Npi, self.npi),
            (Field::Taxonomy, self.taxonomy),
            (Field::StateLicenseNumber, self.state_license_number),
            (Field::Email, self.email),
            (Field::Phone, self.phone),
            (Field::PhoneWork, self.phone_work),
            (Field::PhoneCell, self.phone_cell),
            (Field::Fax, self.fax),
        ]
        .into_iter()
        .filter_map(|(field, value)| value.map(|v| (field, v)))
        .collect()
    }
}

#[derive(ApiResponse)]
pub enum ProfileResponse {
    #[oai(status = 200)]
    Ok(Json<ProfileView>),
}

#[derive(Default)]
pub struct ProfileApi;

#[OpenApi(prefix_path = "/auth", tag = "ApiTags::Auth")]
impl ProfileApi {
    /// The caller's OpenEMR user record, with the fields they may change.
    #[oai(path = "/profile/", method = "get", operation_id = "auth_profile_get")]
    async fn get(&self, state: Data<&AppState>, auth: Auth) -> Result<ProfileResponse, ApiError> {
        Ok(ProfileResponse::Ok(Json(profile::get(&state, &auth.0).await?.into())))
    }

    /// Change the caller's own OpenEMR user record, as OpenEMR's user and address-book editors
    /// would (422 names each invalid field; 403 names fields the caller's OpenEMR permissions do
    /// not let them change). Audited as OpenEMR audits `users` changes.
    #[oai(path = "/profile/", method = "patch", operation_id = "auth_profile_update")]
    async fn update(
        &self,
        state: Data<&AppState>,
        auth: Auth,
        body: Json<ProfileChange>,
    ) -> Result<ProfileResponse, ApiError> {
        let updated = profile::update(&state, &auth.0, body.0.requested()).await?;
        Ok(ProfileResponse::Ok(Json(updated.into())))
    }
}
