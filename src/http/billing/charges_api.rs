use chrono::NaiveDateTime;
use poem::web::Data;
use poem_openapi::{ApiResponse, Object, OpenApi, param::Header, param::Path, payload::Json};
use rust_decimal::Decimal;

use crate::{
    app::AppState,
    domain::billing::charge::{self, LineState},
    http::{
        ApiTags,
        auth::Auth,
        billing::Money,
        etag::{etag, parse_if_match},
        problem::ApiError,
    },
    service::billing::charges::{self, ChargeEdit, ChargeInput, VisitCharges, Written},
    storage::openemr::billing::charges::ChargeRow,
};

/// A new fee-sheet line: a billable code (CPT4, HCPCS) priced from the fee schedule at the
/// patient's price level, or a diagnosis (ICD10) for charges to be justified by.
#[derive(Object)]
#[oai(deny_unknown_fields)]
pub struct ChargeCreate {
    /// An active code type, e.g. `CPT4`, `HCPCS` or `ICD10`.
    pub code_type: String,
    /// The code, e.g. `99213` or `E11.9`.
    pub code: String,
    /// Up to four two-character modifiers, e.g. `["25"]`.
    pub modifiers: Option<Vec<String>>,
    /// 1 to 9999; defaults to 1.
    pub units: Option<i64>,
    /// A unit price other than the fee schedule's; needs OpenEMR `acct|disc` or `acct|bill`.
    pub price: Option<Money>,
    /// Diagnosis codes already on the encounter that justify this charge, e.g. `["E11.9"]`.
    pub justify: Option<Vec<String>>,
    /// Rendering provider (users.id); defaults to the encounter's provider.
    pub provider_id: Option<i64>,
}

/// Changes to an open line; fields not sent are kept, and the fee is unit price × units.
#[derive(Object)]
#[oai(deny_unknown_fields)]
pub struct ChargePatch {
    pub modifiers: Option<Vec<String>>,
    pub units: Option<i64>,
    /// Needs OpenEMR `acct|disc` or `acct|bill`.
    pub price: Option<Money>,
    pub justify: Option<Vec<String>>,
    pub provider_id: Option<i64>,
}

/// A fee-sheet line (`billing` row).
#[derive(Object)]
pub struct Charge {
    /// billing.id
    pub id: i64,
    pub pid: i64,
    pub encounter: i64,
    pub code_type: String,
    pub code: String,
    pub code_text: String,
    pub modifiers: Vec<String>,
    pub units: i32,
    /// Unit price.
    pub price: Money,
    /// Line total: price × units.
    pub fee: Money,
    pub justify: Vec<String>,
    pub provider_id: Option<i32>,
    /// users.id of whoever entered the line.
    pub entered_by: Option<i32>,
    pub date: Option<NaiveDateTime>,
    /// `open` (editable) or `billed` (locked by OpenEMR's billing).
    pub status: String,
    /// The price level the price came from, e.g. `standard`.
    pub price_level: Option<String>,
}

fn view(r: ChargeRow) -> Charge {
    let units = r.units.unwrap_or(1);
    let fee = r.fee.unwrap_or_default();
    Charge {
        id: i64::from(r.id),
        pid: r.pid.unwrap_or_default(),
        encounter: r.encounter.map(i64::from).unwrap_or_default(),
        code_type: r.code_type.unwrap_or_default(),
        code: r.code.unwrap_or_default(),
        code_text: r.code_text.unwrap_or_default(),
        modifiers: charge::modifiers_of(r.modifier.as_deref().unwrap_or_default()),
        units,
        price: charge::unit_price(fee, units).into(),
        fee: fee.into(),
        justify: charge::justified(r.justify.as_deref().unwrap_or_default()),
        provider_id: r.provider_id,
        entered_by: r.user,
        date: r.date,
        status: LineState::of(r.billed == Some(1), r.activity == Some(1)).as_str().into(),
        price_level: r.pricelevel.filter(|l| !l.is_empty()),
    }
}

/// An encounter's fee sheet. `checksum` is OpenEMR's fee-sheet checksum, also the `ETag`.
#[derive(Object)]
pub struct ChargeList {
    pub pid: i64,
    pub encounter: i64,
    pub checksum: u32,
    /// Sum of the lines' fees.
    pub total: Money,
    pub items: Vec<Charge>,
}

#[derive(ApiResponse)]
pub enum ListResponse {
    #[oai(status = 200)]
    Ok(Json<ChargeList>, #[oai(header = "ETag")] String),
}

#[derive(ApiResponse)]
pub enum OneResponse {
    /// The line; the `ETag` is the encounter's new fee-sheet checksum after a change.
    #[oai(status = 200)]
    Ok(Json<Charge>, #[oai(header = "ETag")] String),
}

#[derive(ApiResponse)]
pub enum CreatedResponse {
    #[oai(status = 201)]
    Created(Json<Charge>, #[oai(header = "ETag")] String, #[oai(header = "Location")] String),
}

#[derive(ApiResponse)]
pub enum DeletedResponse {
    /// Deleted as OpenEMR's fee sheet deletes (`activity = 0`).
    #[oai(status = 204)]
    Deleted(#[oai(header = "ETag")] String),
}

fn written(w: Written) -> (Json<Charge>, String) {
    (Json(view(w.charge)), etag(w.checksum))
}

#[derive(Default)]
pub struct ChargesApi;

#[OpenApi(tag = "ApiTags::Billing")]
impl ChargesApi {
    /// The encounter's fee sheet: diagnoses and charges, with OpenEMR's checksum as `ETag`.
    ///
    /// Needs `encounters|coding` on the caller's own encounters (`coding_a` for others').
    #[oai(path = "/encounters/:encounter/charges/", method = "get", operation_id = "encounter_charges")]
    async fn list(
        &self,
        state: Data<&AppState>,
        auth: Auth,
        encounter: Path<i64>,
    ) -> Result<ListResponse, ApiError> {
        let VisitCharges { pid, encounter, checksum, lines } =
            charges::list(&state, &auth.0, encounter.0).await?;
        let total = Money::from(lines.iter().filter_map(|l| l.fee).sum::<Decimal>());
        let items = lines.into_iter().map(view).collect();
        Ok(ListResponse::Ok(Json(ChargeList { pid, encounter, checksum, total, items }), etag(checksum)))
    }

    /// Add a line to the fee sheet as OpenEMR's `addBilling` writes it.
    ///
    /// Send the fee sheet's `ETag` as `If-Match` to refuse the write (412) if anyone, in OpenEMR or
    /// here, changed the encounter's charges since. The change makes a fee sheet already open in
    /// OpenEMR refuse its stale save, as OpenEMR's own checksum intends.
    #[oai(
        path = "/encounters/:encounter/charges/",
        method = "post",
        operation_id = "encounter_charges_create"
    )]
    async fn create(
        &self,
        state: Data<&AppState>,
        auth: Auth,
        encounter: Path<i64>,
        #[oai(name = "If-Match")] if_match: Header<Option<String>>,
        body: Json<ChargeCreate>,
    ) -> Result<CreatedResponse, ApiError> {
        let if_match = parse_if_match(if_match.0);
        let b = body.0;
        let input = ChargeInput {
            code_type: b.code_type,
            code: b.code,
            modifiers: b.modifiers.unwrap_or_default(),
            units: b.units,
            price: b.price.map(|p| p.0),
            justify: b.justify.unwrap_or_default(),
            provider_id: b.provider_id,
        };
        let (charge, tag) = written(charges::add(&state, &auth.0, encounter.0, input, if_match).await?);
        let location = format!("/api/charges/{}/", charge.0.id);
        Ok(CreatedResponse::Created(charge, tag, location))
    }

    /// One fee-sheet line.
    #[oai(path = "/charges/:id/", method = "get", operation_id = "charge_get")]
    async fn get(&self, state: Data<&AppState>, auth: Auth, id: Path<i64>) -> Result<OneResponse, ApiError> {
        let (charge, tag) = written(charges::get(&state, &auth.0, id.0).await?);
        Ok(OneResponse::Ok(charge, tag))
    }

    /// Change an open line (not yet billed); a billed line is 409.
    #[oai(path = "/charges/:id/", method = "patch", operation_id = "charge_update")]
    async fn update(
        &self,
        state: Data<&AppState>,
        auth: Auth,
        id: Path<i64>,
        #[oai(name = "If-Match")] if_match: Header<Option<String>>,
        body: Json<ChargePatch>,
    ) -> Result<OneResponse, ApiError> {
        let if_match = parse_if_match(if_match.0);
        let b = body.0;
        let edit = ChargeEdit {
            modifiers: b.modifiers,
            units: b.units,
            price: b.price.map(|p| p.0),
            justify: b.justify,
            provider_id: b.provider_id,
        };
        let (charge, tag) = written(charges::edit(&state, &auth.0, id.0, edit, if_match).await?);
        Ok(OneResponse::Ok(charge, tag))
    }

    /// Delete an open line as the fee sheet does (it stays, with `activity = 0`); billed lines are 409.
    #[oai(path = "/charges/:id/", method = "delete", operation_id = "charge_delete")]
    async fn delete(
        &self,
        state: Data<&AppState>,
        auth: Auth,
        id: Path<i64>,
        #[oai(name = "If-Match")] if_match: Header<Option<String>>,
    ) -> Result<DeletedResponse, ApiError> {
        let if_match = parse_if_match(if_match.0);
        let checksum = charges::delete(&state, &auth.0, id.0, if_match).await?;
        Ok(DeletedResponse::Deleted(etag(checksum)))
    }
}
