//! Reaching a patient outside one's panel under the assigned-patient policy: break-glass.

use chrono::NaiveDateTime;
use poem::web::Data;
use poem_openapi::{ApiResponse, Object, OpenApi, param::Path, payload::Json};

use crate::{
    app::AppState,
    domain::patient::Pid,
    http::{ApiTags, auth::Auth, problem::ApiError},
    service::patient_access,
};

#[derive(Object)]
pub struct BreakGlassRequest {
    /// Why you need this chart now (10 to 500 characters); kept in OpenEMR's audit log.
    pub reason: String,
}

/// Access to one patient outside the caller's panel, until it expires.
#[derive(Object)]
pub struct BreakGlassGrant {
    pub id: u64,
    pub pid: i64,
    /// Local wall-clock time, as OpenEMR stores times.
    pub granted_at: NaiveDateTime,
    pub expires_at: NaiveDateTime,
}

#[derive(ApiResponse)]
pub enum Granted {
    /// Granted and audited; the primary provider and the administrators are notified.
    #[oai(status = 201)]
    Created(Json<BreakGlassGrant>),
}

#[derive(Default)]
pub struct PatientAccessApi;

#[OpenApi(prefix_path = "/patients", tag = "ApiTags::Patients")]
impl PatientAccessApi {
    /// Break the glass: reach a patient outside your panel.
    ///
    /// With `MMT_PATIENT_ACCESS=assigned`, grants the caller this one patient for
    /// `MMT_BREAK_GLASS_HOURS` (default 4), writes a `breakglass` row to OpenEMR's audit log with
    /// the reason, and notifies the patient's primary provider and the administrators. The
    /// caller's role must already allow reading demographics (`patients|demo`). 409 when the
    /// policy is off.
    #[oai(path = "/:pid/break-glass/", method = "post", operation_id = "patients_break_glass")]
    async fn break_glass(
        &self,
        state: Data<&AppState>,
        auth: Auth,
        pid: Path<i64>,
        body: Json<BreakGlassRequest>,
    ) -> Result<Granted, ApiError> {
        let granted = patient_access::break_glass(&state, &auth.0, Pid(pid.0), &body.0.reason).await?;
        Ok(Granted::Created(Json(BreakGlassGrant {
            id: granted.id,
            pid: granted.pid.0,
            granted_at: granted.granted_at,
            expires_at: granted.expires_at,
        })))
    }
}
