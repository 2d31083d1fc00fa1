//! Practitioner and Organization: OpenEMR's providers and facilities, which are not PHI and are
//! read by any signed-in OpenEMR user, as `/api/openemr/`'s lists are.

use poem::{Request, http::StatusCode, web::Data};
use poem_openapi::{OpenApi, param::Path, payload::Json};

use super::{
    FhirError, Found, Links, entry,
    model::{Address, Bundle, ContactPoint, HumanName, Identifier, Meta, Organization, Practitioner},
    text, uuid_of,
};
use crate::{
    app::AppState,
    http::{auth::Auth, problem::ApiError},
    storage::openemr::{
        facilities::{self, FacilityRow},
        providers::{self, ProviderRow},
        uuid_registry,
    },
};

pub const US_CORE_PRACTITIONER: &str = "http://hl7.org/fhir/us/core/StructureDefinition/us-core-practitioner";
pub const US_CORE_ORGANIZATION: &str = "http://hl7.org/fhir/us/core/StructureDefinition/us-core-organization";

fn not_found(what: &str) -> FhirError {
    ApiError::new(StatusCode::NOT_FOUND, format!("no {what} with this id")).into()
}

#[derive(Default)]
pub struct PractitionerApi;

#[OpenApi(prefix_path = "/Practitioner")]
impl PractitionerApi {
    /// One provider. Not for guests.
    #[oai(path = "/:id", method = "get", operation_id = "fhir_practitioner_read")]
    async fn read(
        &self,
        state: Data<&AppState>,
        auth: Auth,
        id: Path<String>,
    ) -> Result<Found<Practitioner>, FhirError> {
        let wanted = uuid_of(&id.0).ok_or_else(|| not_found("practitioner"))?;
        let found = practitioners(&state, &auth).await?.into_iter().find(|p| uuid_of(&p.id) == Some(wanted));
        Ok(Found::Ok(Json(found.ok_or_else(|| not_found("practitioner"))?)))
    }

    /// Every active provider, by name, on one page. Not for guests.
    #[oai(path = "/", method = "get", operation_id = "fhir_practitioner_search")]
    async fn search(
        &self,
        state: Data<&AppState>,
        auth: Auth,
        req: &Request,
    ) -> Result<Found<Bundle<Practitioner>>, FhirError> {
        let links = Links::of(req, "Practitioner");
        let entries: Vec<_> =
            practitioners(&state, &auth).await?.into_iter().map(|p| entry(&links, p.id.clone(), p)).collect();
        Ok(Found::Ok(Json(links.whole(entries))))
    }
}

#[derive(Default)]
pub struct OrganizationApi;

#[OpenApi(prefix_path = "/Organization")]
impl OrganizationApi {
    /// One facility.
    #[oai(path = "/:id", method = "get", operation_id = "fhir_organization_read")]
    async fn read(
        &self,
        state: Data<&AppState>,
        _auth: Auth,
        id: Path<String>,
    ) -> Result<Found<Organization>, FhirError> {
        let wanted = uuid_of(&id.0).ok_or_else(|| not_found("organization"))?;
        let found = facilities::list(&state.pool)
            .await?
            .into_iter()
            .filter_map(organization_of)
            .find(|o| uuid_of(&o.id) == Some(wanted));
        Ok(Found::Ok(Json(found.ok_or_else(|| not_found("organization"))?)))
    }

    /// Every facility, on one page.
    #[oai(path = "/", method = "get", operation_id = "fhir_organization_search")]
    async fn search(
        &self,
        state: Data<&AppState>,
        _auth: Auth,
        req: &Request,
    ) -> Result<Found<Bundle<Organization>>, FhirError> {
        let links = Links::of(req, "Organization");
        let entries: Vec<_> = facilities::list(&state.pool)
            .await?
            .into_iter()
            .filter_map(organization_of)
            .map(|o| entry(&links, o.id.clone(), o))
            .collect();
        Ok(Found::Ok(Json(links.whole(entries))))
    }
}

async fn practitioners(state: &AppState, auth: &Auth) -> Result<Vec<Practitioner>, FhirError> {
    if auth.0.is_guest() {
        return Err(ApiError::new(StatusCode::FORBIDDEN, "guests cannot read OpenEMR's providers").into());
    }
    Ok(providers::list(&state.pool).await?.into_iter().filter_map(practitioner_of).collect())
}

fn practitioner_of(row: ProviderRow) -> Option<Practitioner> {
    let id = uuid_registry::to_string(row.uuid.as_deref())?;
    let npi = row.npi.as_deref().and_then(text).map(|npi| Identifier {
        use_: Some("official".into()),
        kind: None,
        system: Some("http://hl7.org/fhir/sid/us-npi".into()),
        value: Some(npi),
    });
    let user = Identifier {
        use_: Some("usual".into()),
        kind: None,
        system: Some("urn:openemr:user".into()),
        value: Some(row.id.to_string()),
    };
    Some(Practitioner {
        resource_type: "Practitioner".into(),
        id,
        meta: Meta { version_id: None, last_updated: None, profile: vec![US_CORE_PRACTITIONER.into()] },
        identifier: npi.into_iter().chain([user]).collect(),
        active: true,
        name: vec![HumanName {
            use_: Some("official".into()),
            family: row.lname.as_deref().and_then(text),
            given: row.fname.as_deref().and_then(text).into_iter().collect(),
        }],
    })
}

fn organization_of(row: FacilityRow) -> Option<Organization> {
    let id = uuid_registry::to_string(row.uuid.as_deref())?;
    let part = |v: &Option<String>| v.as_deref().and_then(text);
    let address = Address {
        line: part(&row.street).into_iter().collect(),
        city: part(&row.city),
        state: part(&row.state),
        postal_code: part(&row.postal_code),
    };
    let has_address = !address.line.is_empty() || address.city.is_some() || address.postal_code.is_some();
    Some(Organization {
        resource_type: "Organization".into(),
        id,
        meta: Meta { version_id: None, last_updated: None, profile: vec![US_CORE_ORGANIZATION.into()] },
        active: !row.inactive,
        name: part(&row.name).unwrap_or_else(|| "Unnamed facility".into()),
        telecom: part(&row.phone)
            .map(|phone| ContactPoint {
                system: Some("phone".into()),
                value: Some(phone),
                use_: Some("work".into()),
            })
            .into_iter()
            .collect(),
        address: has_address.then_some(address).into_iter().collect(),
    })
}
