use chrono::NaiveDateTime;
use poem::web::Data;
use poem_openapi::{ApiResponse, Object, OpenApi, param::Query, payload::Json};

use crate::{
    app::AppState,
    http::{ApiTags, auth::Auth, billing::Money, problem::ApiError},
    service::billing::pricing::{self, PriceInput},
    storage::mmt::visit_prices::PriceRow,
};

/// A visit price: for a calendar category (or every category) and a kind of patient.
#[derive(Object)]
#[oai(deny_unknown_fields)]
pub struct PriceRuleBody {
    /// A patient visit category (`pc_catid`); leave out for the practice-wide price.
    pub category_id: Option<i64>,
    /// `new` (no earlier visit or no-show) or `returning`.
    pub patient_kind: String,
    pub amount: Money,
}

#[derive(Object)]
#[oai(deny_unknown_fields)]
pub struct PriceList {
    pub rules: Vec<PriceRuleBody>,
}

#[derive(Object)]
pub struct PriceRuleView {
    pub category_id: Option<i64>,
    pub patient_kind: String,
    pub amount: Money,
    /// users.id of the administrator who set it.
    pub updated_by: i64,
    pub updated_at: NaiveDateTime,
}

#[derive(Object)]
pub struct PriceRules {
    pub rules: Vec<PriceRuleView>,
}

fn rules(rows: Vec<PriceRow>) -> PriceRules {
    PriceRules {
        rules: rows
            .into_iter()
            .map(|r| PriceRuleView {
                category_id: (r.category_id != 0).then_some(i64::from(r.category_id)),
                patient_kind: r.patient_kind,
                amount: r.amount.into(),
                updated_by: r.updated_by,
                updated_at: r.updated_at,
            })
            .collect(),
    }
}

/// What a patient pays for a visit of a category.
#[derive(Object)]
pub struct PriceQuote {
    pub pid: i64,
    pub category_id: i64,
    /// `new` or `returning` (an earlier visit or no-show).
    pub patient_kind: String,
    /// None when no rule prices this visit.
    pub amount: Option<Money>,
    /// The category of the rule that applied; none for the practice-wide price.
    pub rule_category_id: Option<i64>,
}

#[derive(ApiResponse)]
pub enum RulesResponse {
    #[oai(status = 200)]
    Ok(Json<PriceRules>),
}

#[derive(ApiResponse)]
pub enum QuoteResponse {
    #[oai(status = 200)]
    Ok(Json<PriceQuote>),
}

#[derive(Default)]
pub struct PricesApi;

#[OpenApi(tag = "ApiTags::Billing")]
impl PricesApi {
    /// The practice's visit prices. Needs OpenEMR `acct|bill`.
    #[oai(path = "/billing/prices/", method = "get", operation_id = "billing_prices")]
    async fn list(&self, state: Data<&AppState>, auth: Auth) -> Result<RulesResponse, ApiError> {
        Ok(RulesResponse::Ok(Json(rules(pricing::rules(&state, &auth.0).await?))))
    }

    /// Replace the visit prices (all of them, in one change). Administrators only (`admin|super`).
    #[oai(path = "/billing/prices/", method = "put", operation_id = "billing_prices_replace")]
    async fn replace(
        &self,
        state: Data<&AppState>,
        auth: Auth,
        body: Json<PriceList>,
    ) -> Result<RulesResponse, ApiError> {
        let inputs = body
            .0
            .rules
            .into_iter()
            .map(|r| PriceInput {
                category_id: r.category_id,
                patient_kind: r.patient_kind,
                amount: r.amount.0,
            })
            .collect();
        Ok(RulesResponse::Ok(Json(rules(pricing::replace(&state, &auth.0, inputs).await?))))
    }

    /// The price of a visit of `category_id` for patient `pid`: the returning price once the
    /// patient has had a visit or missed one, else the new-patient price. Needs `patients|appt`.
    #[oai(path = "/billing/prices/quote/", method = "get", operation_id = "billing_price_quote")]
    async fn quote(
        &self,
        state: Data<&AppState>,
        auth: Auth,
        pid: Query<i64>,
        category_id: Query<i64>,
    ) -> Result<QuoteResponse, ApiError> {
        let q = pricing::quote(&state, &auth.0, pid.0, category_id.0).await?;
        Ok(QuoteResponse::Ok(Json(PriceQuote {
            pid: q.pid,
            category_id: q.category_id,
            patient_kind: q.patient_kind.as_str().into(),
            amount: q.rule.as_ref().map(|r| r.amount.into()),
            rule_category_id: q.rule.and_then(|r| r.category_id),
        })))
    }
}
