//! Stripe's REST API, the two calls the sidecar makes: create a Checkout Session and create a
//! Refund. Form-encoded, the secret key as Bearer, an `Idempotency-Key` on every POST so a retry
//! never charges or refunds twice; Stripe's error message is passed on, the key never.

use std::time::Duration;

use secrecy::ExposeSecret;
use serde::Deserialize;

use crate::app::AppState;

#[derive(Debug, thiserror::Error)]
pub enum StripeError {
    #[error("online payment is not configured on this server (STRIPE_SECRET_KEY)")]
    NotConfigured,
    #[error("Stripe refused the request: {0}")]
    Refused(String),
    #[error("Stripe could not be reached: {0}")]
    Unreachable(String),
}

pub struct NewCheckout<'a> {
    pub amount_minor: i64,
    pub product: &'a str,
    pub expires_at: i64,
    /// Ours, echoed back in webhooks as `client_reference_id`.
    pub reference: &'a str,
    pub appointment: u32,
    pub idempotency_key: &'a str,
}

#[derive(Debug, Deserialize)]
pub struct Session {
    pub id: String,
    pub url: Option<String>,
    pub expires_at: i64,
}

#[derive(Debug, Deserialize)]
pub struct Refund {
    pub id: String,
    pub amount: i64,
    pub status: Option<String>,
}

#[derive(Deserialize)]
struct ErrorBody {
    error: ErrorDetail,
}

#[derive(Deserialize)]
struct ErrorDetail {
    message: Option<String>,
}

const TIMEOUT: Duration = Duration::from_secs(20);

/// The client for Stripe's API; `AppState` keeps one (see `AppState::stripe_http`).
fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(TIMEOUT)
        .connect_timeout(Duration::from_secs(5))
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("mmt-sidecar/", env!("CARGO_PKG_VERSION")))
        .build()
        .expect("the Stripe HTTP client builds")
}

async fn post<T: for<'de> Deserialize<'de>>(
    state: &AppState,
    path: &str,
    form: &[(String, String)],
    idempotency_key: &str,
) -> Result<T, StripeError> {
    let config = &state.config.stripe;
    let key = config.secret_key.as_ref().ok_or(StripeError::NotConfigured)?;
    let response = state
        .stripe_http
        .get_or_init(http_client)
        .post(format!("{}{path}", config.api_base))
        .bearer_auth(key.expose_secret())
        .header("Idempotency-Key", idempotency_key)
        .form(form)
        .send()
        .await
        .map_err(unreachable)?;
    let status = response.status();
    let body = response.bytes().await.map_err(unreachable)?;
    if !status.is_success() {
        let message = serde_json::from_slice::<ErrorBody>(&body)
            .ok()
            .and_then(|e| e.error.message)
            .unwrap_or_else(|| format!("HTTP {status}"));
        return Err(if status.is_server_error() {
            StripeError::Unreachable(message)
        } else {
            StripeError::Refused(message)
        });
    }
    serde_json::from_slice(&body).map_err(|e| StripeError::Refused(format!("unexpected answer: {e}")))
}

/// What went wrong on the way, cause by cause ("error sending request: connection closed…"), so
/// a failure says more than reqwest's top line; the URL is left out.
fn unreachable(err: reqwest::Error) -> StripeError {
    let err = err.without_url();
    let mut message = err.to_string();
    let mut source = std::error::Error::source(&err);
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    StripeError::Unreachable(message)
}

fn pair(k: &str, v: impl ToString) -> (String, String) {
    (k.to_string(), v.to_string())
}

/// A hosted Checkout Session for one line: the visit at its price.
pub async fn create_checkout(state: &AppState, new: &NewCheckout<'_>) -> Result<Session, StripeError> {
    let config = &state.config.stripe;
    let form = [
        pair("mode", "payment"),
        pair("line_items[0][price_data][currency]", &config.currency),
        pair("line_items[0][price_data][unit_amount]", new.amount_minor),
        pair("line_items[0][price_data][product_data][name]", new.product),
        pair("line_items[0][quantity]", 1),
        pair("success_url", &config.success_url),
        pair("cancel_url", &config.cancel_url),
        pair("expires_at", new.expires_at),
        pair("client_reference_id", new.reference),
        pair("metadata[appointment]", new.appointment),
        pair("payment_intent_data[metadata][appointment]", new.appointment),
    ];
    post(state, "/v1/checkout/sessions", &form, new.idempotency_key).await
}

/// Gives back `amount_minor` (all that is left when None) of a payment.
pub async fn refund(
    state: &AppState,
    payment_intent: &str,
    amount_minor: Option<i64>,
    idempotency_key: &str,
) -> Result<Refund, StripeError> {
    let mut form = vec![pair("payment_intent", payment_intent), pair("reason", "requested_by_customer")];
    form.extend(amount_minor.map(|a| pair("amount", a)));
    post(state, "/v1/refunds", &form, idempotency_key).await
}
