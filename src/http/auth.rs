//! The `Auth` extractor: every protected operation takes one. It accepts, in order, a bearer access
//! token, the `mmt_access` cookie, or OpenEMR's own session cookie (single sign-on).

use poem::{Request, RequestBody, http::StatusCode};
use poem_openapi::{
    ApiExtractor, ApiExtractorType, ExtractParamOptions,
    registry::{MetaSecurityScheme, Registry},
};

use crate::{
    app::AppState,
    domain::user::Caller,
    http::problem::ApiError,
    service::{session_bridge, sign_in},
};

pub const ACCESS_COOKIE: &str = "mmt_access";

/// An authenticated caller.
pub struct Auth(pub Caller);

const SCHEMES: [&str; 3] = ["BearerAuth", "AccessCookie", "OpenEmrSession"];

impl<'a> ApiExtractor<'a> for Auth {
    const TYPES: &'static [ApiExtractorType] = &[ApiExtractorType::SecurityScheme];
    type ParamType = ();
    type ParamRawType = ();

    fn register(registry: &mut Registry) {
        let scheme = |ty, description, name, key_in, scheme| MetaSecurityScheme {
            ty,
            description: Some(description),
            name,
            key_in,
            scheme,
            bearer_format: None,
            flows: None,
            openid_connect_url: None,
        };
        registry.create_security_scheme(
            SCHEMES[0],
            scheme(
                "http",
                "Access token from /api/auth/login/, /api/auth/refresh/ or /api/auth/bridge/.",
                None,
                None,
                Some("bearer"),
            ),
        );
        registry.create_security_scheme(
            SCHEMES[1],
            scheme(
                "apiKey",
                "The HttpOnly access-token cookie set at sign-in, for browsers.",
                Some(ACCESS_COOKIE),
                Some("cookie"),
                None,
            ),
        );
        registry.create_security_scheme(
            SCHEMES[2],
            scheme(
                "apiKey",
                "OpenEMR's PHP session cookie: a browser already signed in to OpenEMR is signed in here too \
                 (the cookie name is configurable with OPENEMR_SESSION_COOKIE).",
                Some("OpenEMR"),
                Some("cookie"),
                None,
            ),
        );
    }

    fn security_schemes() -> Vec<&'static str> {
        SCHEMES.to_vec()
    }

    async fn from_request(
        req: &'a Request,
        _body: &mut RequestBody,
        _: ExtractParamOptions<()>,
    ) -> poem::Result<Self> {
        let state = req.data::<AppState>().expect("AppState is attached to every route");
        authenticate(state, req).await.map(Auth).map_err(poem::Error::from)
    }
}

async fn authenticate(state: &AppState, req: &Request) -> Result<Caller, ApiError> {
    Credential::of(state, req)?.caller(state).await
}

/// A credential as the client presented it, kept by long-lived streams to check it again later.
pub(crate) enum Credential {
    Bearer(String),
    AccessCookie(String),
    OpenEmrSession(String),
}

impl Credential {
    /// The request's credential, in `Auth`'s order of preference; cookies must pass the origin check.
    pub(crate) fn of(state: &AppState, req: &Request) -> Result<Self, ApiError> {
        if let Some(token) = bearer_token(req) {
            return Ok(Self::Bearer(token));
        }
        let cookies = req.cookie();
        let credential = if let Some(cookie) = cookies.get(ACCESS_COOKIE) {
            Self::AccessCookie(cookie.value_str().to_string())
        } else if let Some(cookie) = cookies.get(&state.config.auth.session_cookie) {
            Self::OpenEmrSession(cookie.value_str().to_string())
        } else {
            return Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "authentication required: send `Authorization: Bearer <access token>` (POST /api/auth/login/), \
                 the mmt_access cookie, or an OpenEMR session cookie",
            ));
        };
        require_same_origin(state, req)?;
        Ok(credential)
    }

    /// Who the credential signs in now: one that worked once may since have been revoked.
    pub(crate) async fn caller(&self, state: &AppState) -> Result<Caller, ApiError> {
        Ok(match self {
            Self::Bearer(token) | Self::AccessCookie(token) => {
                sign_in::caller_for_access_token(state, token).await?
            }
            Self::OpenEmrSession(id) => session_bridge::caller_for_session(state, id).await?,
        })
    }

    pub(crate) fn is_cookie(&self) -> bool {
        !matches!(self, Self::Bearer(_))
    }
}

/// Who OpenEMR's session cookie signs in, whatever other credential the request carries (the
/// session bridge exchanges that cookie and nothing else); the origin check applies as for any
/// change authenticated by cookie.
pub(crate) async fn openemr_session(state: &AppState, req: &Request) -> Result<Option<Caller>, ApiError> {
    let Some(cookie) = req.cookie().get(&state.config.auth.session_cookie) else { return Ok(None) };
    require_same_origin(state, req)?;
    Ok(Some(session_bridge::caller_for_session(state, cookie.value_str()).await?))
}

pub(crate) fn bearer_token(req: &Request) -> Option<String> {
    let value = req.headers().get(poem::http::header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim().to_string())
}

/// Browsers send cookies with cross-site requests, so a change authenticated by cookie must come
/// from a page of this server (or of an origin the operator allowed): `Origin`, or failing that
/// `Referer`, must match. Bearer tokens are never sent by a browser on its own and need no check.
fn require_same_origin(state: &AppState, req: &Request) -> Result<(), ApiError> {
    if req.method().is_safe() {
        return Ok(());
    }
    require_origin(state, req)
}

/// The origin check without regard to the method: a WebSocket upgrade is a GET, yet browsers
/// apply no same-origin policy to WebSockets, so a cookie-authenticated upgrade needs it too.
pub(crate) fn require_origin(state: &AppState, req: &Request) -> Result<(), ApiError> {
    let header = |name| req.headers().get(name).and_then(|v| v.to_str().ok());
    let origin = header(poem::http::header::ORIGIN)
        .filter(|o| *o != "null")
        .or_else(|| header(poem::http::header::REFERER))
        .and_then(origin_of);
    let host = header(poem::http::header::HOST);
    let allowed = origin.as_deref().is_some_and(|origin| {
        host.is_some_and(|h| {
            origin.split_once("://").is_some_and(|(_, authority)| authority.eq_ignore_ascii_case(h))
        }) || state.config.auth.allowed_origins.iter().any(|a| a.eq_ignore_ascii_case(origin))
    });
    if allowed {
        return Ok(());
    }
    Err(ApiError::new(
        StatusCode::FORBIDDEN,
        "a change authenticated by cookie must come from this server's own pages: send an Origin header \
         matching the server (or listed in MMT_ALLOWED_ORIGINS), or use an Authorization bearer token",
    ))
}

/// `scheme://host[:port]` of an Origin or Referer value.
fn origin_of(value: &str) -> Option<String> {
    let (scheme, rest) = value.split_once("://")?;
    let authority = rest.split(['/', '?', '#']).next()?;
    (!authority.is_empty()).then(|| format!("{scheme}://{authority}"))
}
