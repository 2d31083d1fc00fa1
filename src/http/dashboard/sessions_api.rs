use chrono::{DateTime, NaiveDateTime, Utc};
use poem::{
    http::HeaderMap,
    web::{Data, RemoteAddr},
};
use poem_openapi::{ApiResponse, Object, OpenApi, param::Path, payload::Json};

use crate::{
    app::AppState,
    http::{
        ApiTags,
        auth::Auth,
        auth_api::{TokenIssued, address, issued},
        problem::ApiError,
    },
    service::dashboard::sessions::{self, Device},
};

/// One signed-in device: a sidecar sign-in and the tokens refreshed from it.
#[derive(Object)]
#[oai(skip_serializing_if_is_none)]
pub struct SignedInDevice {
    /// Pass to DELETE /api/auth/sessions/{id}/ to sign this device out.
    pub id: String,
    /// `password`, `bridge` (OpenEMR session) or `guest`.
    pub sign_in_method: String,
    /// The client's User-Agent, as it said at sign-in or its latest refresh.
    pub client: Option<String>,
    /// The client address of its latest sign-in or refresh.
    pub address: String,
    /// UTC.
    pub signed_in_at: NaiveDateTime,
    /// UTC; recorded at most once a minute.
    pub last_used_at: NaiveDateTime,
    /// This request came with this device's token.
    pub current: bool,
}

impl From<Device> for SignedInDevice {
    fn from(d: Device) -> Self {
        Self {
            id: d.id.to_string(),
            sign_in_method: d.method,
            client: d.user_agent,
            address: d.address,
            signed_in_at: d.signed_in_at,
            last_used_at: d.last_used_at,
            current: d.current,
        }
    }
}

#[derive(Object)]
pub struct DeviceList {
    /// Most recently used first.
    pub items: Vec<SignedInDevice>,
}

#[derive(Object)]
pub struct ActiveRefreshRequest {
    /// The refresh token from the last sign-in or refresh; each one works once.
    #[oai(validator(max_length = 128))]
    pub refresh_token: String,
    /// When the user last did something on this device (RFC 3339). Older than the server's idle
    /// timeout (`MMT_IDLE_TIMEOUT_SECS`), the device is signed out instead of refreshed.
    pub last_activity_at: DateTime<Utc>,
}

#[derive(ApiResponse)]
pub enum DevicesResponse {
    #[oai(status = 200)]
    Ok(Json<DeviceList>),
}

#[derive(ApiResponse)]
pub enum DeviceSignedOut {
    /// Signed out; its tokens no longer work on any replica.
    #[oai(status = 204)]
    Done,
}

#[derive(Default)]
pub struct SessionsApi;

#[OpenApi(prefix_path = "/auth", tag = "ApiTags::Auth")]
impl SessionsApi {
    /// The caller's signed-in devices (live sidecar sign-ins), the current one marked.
    #[oai(path = "/sessions/", method = "get", operation_id = "auth_sessions_list")]
    async fn list(&self, state: Data<&AppState>, auth: Auth) -> Result<DevicesResponse, ApiError> {
        let items = sessions::list(&state, &auth.0).await?.into_iter().map(SignedInDevice::from).collect();
        Ok(DevicesResponse::Ok(Json(DeviceList { items })))
    }

    /// Sign one of the caller's devices out. Another user's device is 404.
    #[oai(path = "/sessions/:id/", method = "delete", operation_id = "auth_sessions_delete")]
    async fn delete(
        &self,
        state: Data<&AppState>,
        auth: Auth,
        id: Path<String>,
    ) -> Result<DeviceSignedOut, ApiError> {
        sessions::sign_out(&state, &auth.0, &id.0).await?;
        Ok(DeviceSignedOut::Done)
    }

    /// Refresh as /api/auth/refresh/ does, only if the user was active lately.
    ///
    /// A client reports when its user last did something. Within `MMT_IDLE_TIMEOUT_SECS` the
    /// tokens rotate; past it the device's sign-in ends and the answer is 401
    /// (`urn:mmt-sidecar:problem:idle`), so an unattended device does not stay signed in by
    /// refreshing in the background.
    #[oai(path = "/refresh-if-active/", method = "post", operation_id = "auth_refresh_if_active")]
    async fn refresh_if_active(
        &self,
        state: Data<&AppState>,
        remote: &RemoteAddr,
        headers: &HeaderMap,
        body: Json<ActiveRefreshRequest>,
    ) -> Result<TokenIssued, ApiError> {
        let b = body.0;
        let done =
            sessions::refresh_if_active(&state, &b.refresh_token, &address(remote), b.last_activity_at)
                .await?;
        Ok(issued(&state, super::labelled(&state, done, headers).await))
    }
}
