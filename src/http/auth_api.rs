use poem::{
    Request,
    http::HeaderMap,
    web::{Data, RemoteAddr},
};
use poem_openapi::{ApiResponse, Object, OpenApi, payload::Json};

use crate::{
    app::AppState,
    domain::user::Caller,
    http::{
        ApiTags,
        auth::{ACCESS_COOKIE, Auth, openemr_session},
        dashboard::labelled,
        problem::ApiError,
    },
    service::{
        audit, mfa,
        sign_in::{self, Issued},
    },
};

#[derive(Object)]
pub struct LoginRequest {
    /// OpenEMR username.
    #[oai(validator(min_length = 1, max_length = 255))]
    pub username: String,
    /// OpenEMR password; never logged or stored.
    #[oai(validator(min_length = 1, max_length = 1024))]
    pub password: String,
    /// The 6-digit code from the authenticator app, for accounts with a TOTP second factor in
    /// OpenEMR (a first attempt without it answers 401 with `mfa_required`). Each code works once.
    #[oai(validator(max_length = 16))]
    pub totp_code: Option<String>,
}

#[derive(Object)]
pub struct PasswordConfirmation {
    /// The caller's current OpenEMR password, asked again before a security change.
    #[oai(validator(min_length = 1, max_length = 1024))]
    pub password: String,
}

#[derive(Object)]
pub struct TotpCode {
    /// The 6-digit code the authenticator app shows now.
    #[oai(validator(min_length = 1, max_length = 16))]
    pub code: String,
}

#[derive(Object)]
pub struct TotpRemoval {
    /// The caller's current OpenEMR password.
    #[oai(validator(min_length = 1, max_length = 1024))]
    pub password: String,
    /// A current code from the authenticator app being removed.
    #[oai(validator(min_length = 1, max_length = 16))]
    pub code: String,
}

#[derive(Object)]
pub struct TotpEnrolment {
    /// Scan into an authenticator app (issuer `OpenEMR`, SHA-1, 6 digits, 30 s), or type `secret`.
    pub otpauth_uri: String,
    /// The base32 secret, shown this once.
    pub secret: String,
    /// The otpauth URI as a QR code (SVG document).
    pub qr_svg: String,
    /// Confirm within this many seconds with POST /api/auth/mfa/totp/verify/.
    pub expires_in: u64,
}

#[derive(ApiResponse)]
pub enum EnrolmentStarted {
    /// A secret was made; nothing is registered in OpenEMR until a first code confirms it.
    #[oai(status = 201)]
    Created(Json<TotpEnrolment>),
}

#[derive(ApiResponse)]
pub enum MfaChanged {
    /// Done; OpenEMR's login screen sees the change too.
    #[oai(status = 204)]
    Done,
}

#[derive(Object)]
pub struct RefreshRequest {
    /// The refresh token from the last sign-in or refresh; each one works once.
    #[oai(validator(max_length = 128))]
    pub refresh_token: String,
}

#[derive(Object)]
#[oai(skip_serializing_if_is_none)]
pub struct UserSummary {
    /// OpenEMR `users.id`.
    pub id: i64,
    pub username: String,
    pub name: String,
    pub facility_id: i64,
    pub facility: Option<String>,
    /// `password`, `bridge` (OpenEMR session) or `guest`.
    pub sign_in_method: String,
}

impl From<&Caller> for UserSummary {
    fn from(c: &Caller) -> Self {
        Self {
            id: c.user_id.0,
            username: c.username.clone(),
            name: c.display_name(),
            facility_id: c.facility_id,
            facility: c.facility.clone(),
            sign_in_method: c.method.as_str().into(),
        }
    }
}

#[derive(Object)]
pub struct TokenResponse {
    /// Send as `Authorization: Bearer <access_token>`.
    pub access_token: String,
    /// Exchange at /api/auth/refresh/ for a new pair; single use.
    pub refresh_token: String,
    pub token_type: String,
    /// Seconds until the access token expires.
    pub expires_in: u64,
    /// Seconds until the refresh token expires.
    pub refresh_expires_in: u64,
    pub user: UserSummary,
}

#[derive(Object)]
pub struct GroupView {
    /// phpGACL group value, e.g. `doc`.
    pub value: String,
    /// Group title, e.g. `Physicians`.
    pub name: String,
}

#[derive(Object)]
pub struct PermissionView {
    /// OpenEMR ACO as `section|value`, e.g. `patients|med`.
    pub aco: String,
    /// Highest level granted: `view`, `addonly`, `wsome` or `write`.
    pub level: String,
}

#[derive(Object)]
pub struct CurrentUser {
    #[oai(flatten)]
    pub user: UserSummary,
    pub first_name: String,
    pub last_name: String,
    /// OpenEMR ACL groups, with their ancestors.
    pub groups: Vec<GroupView>,
    /// Effective OpenEMR permissions.
    pub permissions: Vec<PermissionView>,
}

#[derive(ApiResponse)]
pub enum TokenIssued {
    /// Signed in. The access token is also set as an HttpOnly cookie for browsers.
    #[oai(status = 200)]
    Ok(Json<TokenResponse>, #[oai(header = "Set-Cookie")] String),
}

#[derive(ApiResponse)]
pub enum SignedOut {
    /// Signed out; the tokens no longer work on any replica.
    #[oai(status = 204)]
    Done(#[oai(header = "Set-Cookie")] String),
}

#[derive(ApiResponse)]
pub enum UserResponse {
    #[oai(status = 200)]
    Ok(Json<CurrentUser>),
}

#[derive(Default)]
pub struct AuthApi;

pub(crate) fn address(remote: &RemoteAddr) -> String {
    remote.as_socket_addr().map(|a| a.ip().to_string()).unwrap_or_else(|| "unknown".into())
}

fn cookie(state: &AppState, value: &str, max_age: u64) -> String {
    let secure = if state.config.auth.secure_cookie { "; Secure" } else { "" };
    format!("{ACCESS_COOKIE}={value}; Path=/api; HttpOnly; SameSite=Strict; Max-Age={max_age}{secure}")
}

pub(crate) fn issued(state: &AppState, issued: Issued) -> TokenIssued {
    let set_cookie = cookie(state, &issued.access_token, issued.access_expires_in);
    TokenIssued::Ok(
        Json(TokenResponse {
            user: UserSummary::from(&issued.caller),
            access_token: issued.access_token,
            refresh_token: issued.refresh_token,
            token_type: "Bearer".into(),
            expires_in: issued.access_expires_in,
            refresh_expires_in: issued.refresh_expires_in,
        }),
        set_cookie,
    )
}

#[OpenApi(prefix_path = "/auth", tag = "ApiTags::Auth")]
impl AuthApi {
    /// Sign in with OpenEMR credentials.
    ///
    /// Verified against `users_secure` exactly as OpenEMR does, for every hash format OpenEMR has
    /// stored. Unknown users, wrong passwords and inactive accounts all get the same 401.
    /// Repeated failures per username and per client address are throttled (429, `Retry-After`).
    #[oai(path = "/login/", method = "post", operation_id = "auth_login")]
    async fn login(
        &self,
        state: Data<&AppState>,
        remote: &RemoteAddr,
        headers: &HeaderMap,
        body: Json<LoginRequest>,
    ) -> Result<TokenIssued, ApiError> {
        let Json(LoginRequest { username, password, totp_code }) = body;
        let attempt = sign_in::LoginAttempt { username, password, totp_code };
        let done = labelled(&state, sign_in::login(&state, attempt, &address(remote)).await?, headers).await;
        Ok(issued(&state, done))
    }

    /// Start registering an authenticator app (TOTP) as the second factor.
    ///
    /// Asks for the password again, as OpenEMR does. Returns the secret as an otpauth URI and a
    /// QR code; nothing is registered until POST /api/auth/mfa/totp/verify/ confirms a first code.
    /// The registration is OpenEMR's own, so the same app works on OpenEMR's login screen.
    #[oai(path = "/mfa/totp/", method = "post", operation_id = "auth_mfa_totp_enrol")]
    async fn enrol_totp(
        &self,
        state: Data<&AppState>,
        remote: &RemoteAddr,
        auth: Auth,
        body: Json<PasswordConfirmation>,
    ) -> Result<EnrolmentStarted, ApiError> {
        let user = sign_in::reauthenticate(&state, &auth.0, body.0.password, &address(remote)).await?;
        let started = mfa::start_enrolment(&state, &user).await?;
        Ok(EnrolmentStarted::Created(Json(TotpEnrolment {
            otpauth_uri: started.otpauth_uri,
            secret: started.secret,
            qr_svg: started.qr_svg,
            expires_in: 600,
        })))
    }

    /// Confirm an authenticator app with its first code, registering it in OpenEMR.
    #[oai(path = "/mfa/totp/verify/", method = "post", operation_id = "auth_mfa_totp_confirm")]
    async fn confirm_totp(
        &self,
        state: Data<&AppState>,
        auth: Auth,
        body: Json<TotpCode>,
    ) -> Result<MfaChanged, ApiError> {
        let user = sign_in::current_user(&state, &auth.0).await?;
        mfa::confirm_enrolment(&state, &user, &body.0.code).await?;
        Ok(MfaChanged::Done)
    }

    /// Remove the authenticator app (needs the password and a current code).
    #[oai(path = "/mfa/totp/", method = "delete", operation_id = "auth_mfa_totp_remove")]
    async fn remove_totp(
        &self,
        state: Data<&AppState>,
        remote: &RemoteAddr,
        auth: Auth,
        body: Json<TotpRemoval>,
    ) -> Result<MfaChanged, ApiError> {
        let Json(TotpRemoval { password, code }) = body;
        let user = sign_in::reauthenticate(&state, &auth.0, password, &address(remote)).await?;
        mfa::remove(&state, &user, &code).await?;
        Ok(MfaChanged::Done)
    }

    /// Exchange a refresh token for a new token pair.
    ///
    /// Refresh tokens rotate: each works once. Presenting one that was already used revokes every
    /// token of that sign-in, on the assumption it was stolen.
    #[oai(path = "/refresh/", method = "post", operation_id = "auth_refresh")]
    async fn refresh(
        &self,
        state: Data<&AppState>,
        remote: &RemoteAddr,
        headers: &HeaderMap,
        body: Json<RefreshRequest>,
    ) -> Result<TokenIssued, ApiError> {
        let done = sign_in::refresh(&state, &body.0.refresh_token, &address(remote)).await?;
        Ok(issued(&state, labelled(&state, done, headers).await))
    }

    /// Exchange an OpenEMR browser session for sidecar tokens (single sign-on).
    ///
    /// Send OpenEMR's session cookie (any bearer token beside it is not what is exchanged). It is
    /// accepted only while OpenEMR itself would accept it: the user is active, the password has
    /// not changed since, and the session is not idle past OpenEMR's timeout.
    #[oai(path = "/bridge/", method = "post", operation_id = "auth_bridge")]
    async fn bridge(
        &self,
        state: Data<&AppState>,
        req: &Request,
        remote: &RemoteAddr,
        headers: &HeaderMap,
        auth: Auth,
    ) -> Result<TokenIssued, ApiError> {
        let address = address(remote);
        let caller = match auth.0.method {
            crate::domain::user::SignInMethod::OpenEmrSession => auth.0,
            _ => openemr_session(&state, req).await?.ok_or_else(|| {
                sign_in::AuthError::SessionRejected("send the OpenEMR session cookie".into())
            })?,
        };
        let done = labelled(&state, sign_in::issue(&state, caller, &address).await?, headers).await;
        let comment = format!("success: {address}. OpenEMR session bridge");
        audit::sign_in(&state, &done.caller.username, &done.caller.auth_group, true, &comment).await;
        Ok(issued(&state, done))
    }

    /// Sign in as a read-only guest, when the server enables it (`MMT_GUEST_LOGIN=true`).
    ///
    /// Guests see no patient data.
    #[oai(path = "/guest/", method = "post", operation_id = "auth_guest")]
    async fn guest(
        &self,
        state: Data<&AppState>,
        remote: &RemoteAddr,
        headers: &HeaderMap,
    ) -> Result<TokenIssued, ApiError> {
        let done = labelled(&state, sign_in::guest(&state, &address(remote)).await?, headers).await;
        Ok(issued(&state, done))
    }

    /// Sign out on this device.
    #[oai(path = "/logout/", method = "post", operation_id = "auth_logout")]
    async fn logout(&self, state: Data<&AppState>, auth: Auth) -> Result<SignedOut, ApiError> {
        sign_in::logout(&state, &auth.0).await?;
        Ok(SignedOut::Done(cookie(&state, "", 0)))
    }

    /// Sign out everywhere: every token of this user, on every device and replica.
    #[oai(path = "/logout-all/", method = "post", operation_id = "auth_logout_all")]
    async fn logout_all(&self, state: Data<&AppState>, auth: Auth) -> Result<SignedOut, ApiError> {
        sign_in::logout_all(&state, &auth.0).await?;
        Ok(SignedOut::Done(cookie(&state, "", 0)))
    }

    /// The signed-in user, with OpenEMR ACL groups and effective permissions.
    #[oai(path = "/user/", method = "get", operation_id = "auth_user")]
    async fn user(&self, state: Data<&AppState>, auth: Auth) -> Result<UserResponse, ApiError> {
        let caller = auth.0;
        let (groups, permissions) = if caller.is_guest() {
            (Vec::new(), Vec::new())
        } else {
            let p = state.acl.permissions(&caller.username).await?;
            let groups =
                p.groups.iter().map(|g| GroupView { value: g.value.clone(), name: g.name.clone() }).collect();
            let permissions = p
                .effective()
                .into_iter()
                .map(|(aco, level)| PermissionView { aco, level: level.as_str().into() })
                .collect();
            (groups, permissions)
        };
        Ok(UserResponse::Ok(Json(CurrentUser {
            user: UserSummary::from(&caller),
            first_name: caller.first_name,
            last_name: caller.last_name,
            groups,
            permissions,
        })))
    }
}
