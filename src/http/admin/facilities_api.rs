//! OpenEMR's facilities: listed and read by every signed-in caller (reference data clients pick
//! from), created and changed as OpenEMR's Administration > Clinic > Facilities screen does
//! (`service::admin::facilities`).

use poem::web::Data;
use poem_openapi::{ApiResponse, Object, OpenApi, param::Path, payload::Json};

use crate::{
    app::AppState,
    domain::admin::facility::{Field, Requested},
    http::{ApiTags, auth::Auth, problem::ApiError},
    service::admin::facilities,
    storage::openemr::{facilities::FacilityRow, uuid_registry},
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

/// A facility's fields; on a change, only those sent are changed (`null` leaves one as it is).
#[derive(Object, Default)]
#[oai(deny_unknown_fields)]
pub struct FacilityInput {
    /// Required on create; 2 to 255 characters.
    pub name: Option<String>,
    pub phone: Option<String>,
    pub fax: Option<String>,
    pub street: Option<String>,
    pub city: Option<String>,
    pub state: Option<String>,
    pub postal_code: Option<String>,
    pub country_code: Option<String>,
    pub email: Option<String>,
    pub website: Option<String>,
    /// Federal tax id (EIN), OpenEMR's `federal_ein`.
    pub tax_id: Option<String>,
    /// OpenEMR's tax id type, e.g. `EI` or `SY`.
    pub tax_id_type: Option<String>,
    /// The facility's 10-digit NPI; its check digit is verified.
    pub npi: Option<String>,
    pub taxonomy: Option<String>,
    /// CMS place-of-service code, 1 to 99 (11 = office).
    pub pos_code: Option<i64>,
    pub service_location: Option<bool>,
    pub billing_location: Option<bool>,
    pub accepts_assignment: Option<bool>,
    /// At most one facility is the primary business entity; marking a second is a 409.
    pub primary_business_entity: Option<bool>,
    /// Calendar colour, e.g. `#1a7f37`.
    pub color: Option<String>,
    /// `false` retires the facility from pick lists (OpenEMR's `inactive`).
    pub active: Option<bool>,
}

impl FacilityInput {
    fn requested(self) -> Vec<(Field, Requested)> {
        let text = [
            (Field::Name, self.name),
            (Field::Phone, self.phone),
            (Field::Fax, self.fax),
            (Field::Street, self.street),
            (Field::City, self.city),
            (Field::State, self.state),
            (Field::PostalCode, self.postal_code),
            (Field::CountryCode, self.country_code),
            (Field::Email, self.email),
            (Field::Website, self.website),
            (Field::TaxId, self.tax_id),
            (Field::TaxIdType, self.tax_id_type),
            (Field::Npi, self.npi),
            (Field::Taxonomy, self.taxonomy),
            (Field::Color, self.color),
        ];
        let flags = [
            (Field::ServiceLocation, self.service_location),
            (Field::BillingLocation, self.billing_location),
            (Field::AcceptsAssignment, self.accepts_assignment),
            (Field::PrimaryBusinessEntity, self.primary_business_entity),
            (Field::Active, self.active),
        ];
        let mut requested: Vec<(Field, Requested)> =
            text.into_iter().filter_map(|(f, v)| Some((f, Requested::Text(v?)))).collect();
        requested.extend(flags.into_iter().filter_map(|(f, v)| Some((f, Requested::Flag(v?)))));
        if self.pos_code.is_some() {
            requested.push((Field::PosCode, Requested::Code(self.pos_code)));
        }
        requested
    }
}

#[derive(ApiResponse)]
pub enum FacilitiesResponse {
    #[oai(status = 200)]
    Ok(Json<Vec<Facility>>),
}

#[derive(ApiResponse)]
pub enum FacilityCreated {
    #[oai(status = 201)]
    Created(Json<Facility>),
}

#[derive(ApiResponse)]
pub enum FacilityResponse {
    #[oai(status = 200)]
    Ok(Json<Facility>),
}

#[derive(Default)]
pub struct FacilitiesApi;

/// Reads are reference data (tagged with the providers), changes administration.
#[OpenApi(prefix_path = "/openemr")]
impl FacilitiesApi {
    /// OpenEMR facilities.
    #[oai(
        path = "/facilities/",
        method = "get",
        operation_id = "facilities_list",
        tag = "ApiTags::Reference"
    )]
    async fn list(&self, state: Data<&AppState>, _auth: Auth) -> Result<FacilitiesResponse, ApiError> {
        let rows = facilities::list(&state).await?;
        Ok(FacilitiesResponse::Ok(Json(rows.into_iter().map(Facility::from).collect())))
    }

    /// Add a facility, as OpenEMR's facility editor does.
    ///
    /// Needs `admin|super` or `admin|practice`. The facility gets an OpenEMR uuid at once (the one
    /// FHIR Organization reads use); it is not the primary business entity unless asked.
    #[oai(
        path = "/facilities/",
        method = "post",
        operation_id = "facilities_create",
        tag = "ApiTags::Administration"
    )]
    async fn create(
        &self,
        state: Data<&AppState>,
        auth: Auth,
        body: Json<FacilityInput>,
    ) -> Result<FacilityCreated, ApiError> {
        let row = facilities::create(&state, &auth.0, body.0.requested()).await?;
        Ok(FacilityCreated::Created(Json(row.into())))
    }

    /// One facility.
    #[oai(
        path = "/facilities/:id/",
        method = "get",
        operation_id = "facilities_get",
        tag = "ApiTags::Reference"
    )]
    async fn get(
        &self,
        state: Data<&AppState>,
        _auth: Auth,
        id: Path<i64>,
    ) -> Result<FacilityResponse, ApiError> {
        Ok(FacilityResponse::Ok(Json(facilities::get(&state, id.0).await?.into())))
    }

    /// Replace a facility.
    ///
    /// Needs `admin|super` or `admin|practice`. Saves every field as OpenEMR's editor does: what
    /// the body leaves out is cleared (text emptied, boxes unticked, the facility kept active),
    /// and `name` is required. A new name is copied to the users who work there.
    #[oai(
        path = "/facilities/:id/",
        method = "put",
        operation_id = "facilities_replace",
        tag = "ApiTags::Administration"
    )]
    async fn replace(
        &self,
        state: Data<&AppState>,
        auth: Auth,
        id: Path<i64>,
        body: Json<FacilityInput>,
    ) -> Result<FacilityResponse, ApiError> {
        let row = facilities::replace(&state, &auth.0, id.0, body.0.requested()).await?;
        Ok(FacilityResponse::Ok(Json(row.into())))
    }

    /// Change a facility's fields.
    ///
    /// Needs `admin|super` or `admin|practice`. A new name is copied to the users who work there
    /// (`users.facility`), as OpenEMR's editor does.
    #[oai(
        path = "/facilities/:id/",
        method = "patch",
        operation_id = "facilities_update",
        tag = "ApiTags::Administration"
    )]
    async fn update(
        &self,
        state: Data<&AppState>,
        auth: Auth,
        id: Path<i64>,
        body: Json<FacilityInput>,
    ) -> Result<FacilityResponse, ApiError> {
        let row = facilities::update(&state, &auth.0, id.0, body.0.requested()).await?;
        Ok(FacilityResponse::Ok(Json(row.into())))
    }
}
