use chrono::{NaiveDate, NaiveDateTime};
use poem::web::Data;
use poem_openapi::{
    ApiResponse, Object, OpenApi,
    param::{Path, Query},
    payload::Json,
};

use crate::{
    app::AppState,
    domain::{care_team::MemberFields, patient::Pid},
    http::{ApiTags, auth::Auth, problem::ApiError},
    service::care_team::{self, CareTeam},
    storage::openemr::{
        care_teams::{MemberRow, TeamRow},
        uuid_registry,
    },
};

/// A member to add: a staff user (`users.id`) and their role on the team.
#[derive(Object)]
#[oai(deny_unknown_fields)]
pub struct NewMemberBody {
    /// `users.id` of an active staff account.
    pub user_id: i64,
    /// An option id of OpenEMR's list `care_team_roles`, e.g. `nurse`, `specialist`, `primary_care_provider`.
    pub role: String,
    /// YYYY-MM-DD, not in the future.
    pub provider_since: Option<String>,
    /// An option id of `Care_Team_Status`; default `active`.
    pub status: Option<String>,
    pub note: Option<String>,
}

/// The member's fields to change; fields left out keep their values.
#[derive(Object, Default)]
#[oai(deny_unknown_fields)]
pub struct MemberPatchBody {
    /// An option id of `care_team_roles`.
    pub role: Option<String>,
    /// YYYY-MM-DD, not in the future; `""` clears it.
    pub provider_since: Option<String>,
    /// An option id of `Care_Team_Status` (`inactive` is what removing does).
    pub status: Option<String>,
    pub note: Option<String>,
}

/// The team's name or status (`Care_Team_Status`).
#[derive(Object, Default)]
#[oai(deny_unknown_fields)]
pub struct TeamPatchBody {
    /// 1 to 255 characters.
    pub name: Option<String>,
    pub status: Option<String>,
}

#[derive(Object)]
pub struct MemberOut {
    /// care_team_member.id
    pub id: i64,
    pub care_team_id: i64,
    /// users.id
    pub user_id: Option<i64>,
    pub username: Option<String>,
    /// The user's first and last name.
    pub name: String,
    /// Option id of `care_team_roles`.
    pub role: String,
    /// The role's title in `care_team_roles`.
    pub role_title: Option<String>,
    /// Option id of `Care_Team_Status`.
    pub status: Option<String>,
    pub provider_since: Option<NaiveDate>,
    pub note: String,
    /// users.id of whoever added the member.
    pub created_by: Option<i64>,
    /// users.id of whoever last changed it.
    pub updated_by: Option<i64>,
    pub date_created: Option<NaiveDateTime>,
    pub date_updated: Option<NaiveDateTime>,
}

impl From<MemberRow> for MemberOut {
    fn from(m: MemberRow) -> Self {
        let name = [m.fname.unwrap_or_default(), m.lname.unwrap_or_default()]
            .into_iter()
            .filter(|s| !s.trim().is_empty())
            .collect::<Vec<_>>()
            .join(" ");
        Self {
            id: m.id,
            care_team_id: m.care_team_id,
            user_id: m.user_id,
            username: m.username,
            name,
            role: m.role,
            role_title: m.role_title,
            status: m.status,
            provider_since: m.provider_since,
            note: m.note.unwrap_or_default(),
            created_by: m.created_by,
            updated_by: m.updated_by,
            date_created: m.date_created,
            date_updated: m.date_updated,
        }
    }
}

#[derive(Object)]
pub struct TeamOut {
    /// care_teams.id
    pub id: i64,
    pub uuid: Option<String>,
    pub pid: i64,
    pub name: Option<String>,
    /// Option id of `Care_Team_Status`.
    pub status: Option<String>,
    pub created_by: Option<i64>,
    pub updated_by: Option<i64>,
    pub date_created: Option<NaiveDateTime>,
    pub date_updated: Option<NaiveDateTime>,
    pub members: Vec<MemberOut>,
}

impl TeamOut {
    fn new(t: TeamRow, members: Vec<MemberRow>) -> Self {
        Self {
            id: t.id,
            uuid: uuid_registry::to_string(t.uuid.as_deref()),
            pid: t.pid,
            name: t.team_name,
            status: t.status,
            created_by: t.created_by,
            updated_by: t.updated_by,
            date_created: t.date_created,
            date_updated: t.date_updated,
            members: members.into_iter().map(MemberOut::from).collect(),
        }
    }
}

/// The patient's care team, or none yet.
#[derive(Object)]
pub struct CareTeamView {
    pub pid: i64,
    /// Absent when the patient has no care team (adding a member makes one).
    #[oai(skip_serializing_if_is_none)]
    pub team: Option<TeamOut>,
}

#[derive(ApiResponse)]
pub enum TeamResponse {
    #[oai(status = 200)]
    Ok(Json<CareTeamView>),
}

#[derive(ApiResponse)]
pub enum TeamUpdated {
    /// The team as it is now; members are listed by `GET …/care-team/`.
    #[oai(status = 200)]
    Ok(Json<TeamOut>),
}

#[derive(ApiResponse)]
pub enum MemberAdded {
    /// The user was already in the team (in any status); their row now has the values sent.
    #[oai(status = 200)]
    Updated(Json<MemberOut>),
    /// Added (and the team made, if the patient had none).
    #[oai(status = 201)]
    Created(Json<MemberOut>, #[oai(header = "Location")] String),
}

#[derive(ApiResponse)]
pub enum MemberResponse {
    #[oai(status = 200)]
    Ok(Json<MemberOut>),
}

#[derive(ApiResponse)]
pub enum Removed {
    /// Marked inactive; the row is kept, as OpenEMR keeps it.
    #[oai(status = 204)]
    Removed,
}

#[derive(Default)]
pub struct CareTeamApi;

#[OpenApi(tag = "ApiTags::Patients")]
impl CareTeamApi {
    /// The patient's care team as OpenEMR's care team card shows it: the first active team (else
    /// the first not entered in error) and its members, without inactive or entered-in-error
    /// ones unless `include_inactive`. Needs `patients|demo` view.
    #[oai(path = "/patients/:pid/care-team/", method = "get", operation_id = "patient_care_team")]
    async fn get(
        &self,
        state: Data<&AppState>,
        auth: Auth,
        pid: Path<i64>,
        /// Also list members who were removed (inactive) or entered in error.
        include_inactive: Query<Option<bool>>,
    ) -> Result<TeamResponse, ApiError> {
        let found = care_team::get(&state, &auth.0, Pid(pid.0), include_inactive.0.unwrap_or(false)).await?;
        let team = found.map(|CareTeam { team, members }| TeamOut::new(team, members));
        Ok(TeamResponse::Ok(Json(CareTeamView { pid: pid.0, team })))
    }

    /// Rename the patient's care team or change its status. Needs `patients|demo` write.
    #[oai(path = "/patients/:pid/care-team/", method = "patch", operation_id = "patient_care_team_update")]
    async fn update_team(
        &self,
        state: Data<&AppState>,
        auth: Auth,
        pid: Path<i64>,
        body: Json<TeamPatchBody>,
    ) -> Result<TeamUpdated, ApiError> {
        let team = care_team::update_team(&state, &auth.0, Pid(pid.0), body.0.name, body.0.status).await?;
        Ok(TeamUpdated::Ok(Json(TeamOut::new(team, Vec::new()))))
    }

    /// Add a staff user to the patient's care team, as OpenEMR's care team card saves one; the
    /// first member makes the team ("Care Team", active). Needs `patients|demo` write.
    #[oai(
        path = "/patients/:pid/care-team/members/",
        method = "post",
        operation_id = "patient_care_team_members_add"
    )]
    async fn add(
        &self,
        state: Data<&AppState>,
        auth: Auth,
        pid: Path<i64>,
        body: Json<NewMemberBody>,
    ) -> Result<MemberAdded, ApiError> {
        let b = body.0;
        let fields = MemberFields {
            role: Some(b.role),
            provider_since: b.provider_since,
            status: b.status,
            note: b.note,
        };
        let added = care_team::add_member(&state, &auth.0, Pid(pid.0), b.user_id, fields).await?;
        if added.created {
            let location = format!("/api/patients/{}/care-team/members/{}/", pid.0, added.member.id);
            Ok(MemberAdded::Created(Json(added.member.into()), location))
        } else {
            Ok(MemberAdded::Updated(Json(added.member.into())))
        }
    }

    /// Change a member's role, status, start date or note. Needs `patients|demo` write.
    #[oai(
        path = "/patients/:pid/care-team/members/:member_id/",
        method = "patch",
        operation_id = "patient_care_team_members_update"
    )]
    async fn update(
        &self,
        state: Data<&AppState>,
        auth: Auth,
        pid: Path<i64>,
        member_id: Path<i64>,
        body: Json<MemberPatchBody>,
    ) -> Result<MemberResponse, ApiError> {
        let b = body.0;
        let fields =
            MemberFields { role: b.role, provider_since: b.provider_since, status: b.status, note: b.note };
        let member = care_team::update_member(&state, &auth.0, Pid(pid.0), member_id.0, fields).await?;
        Ok(MemberResponse::Ok(Json(member.into())))
    }

    /// Remove a member: marked `inactive` and kept, as OpenEMR removes one. Needs `patients|demo` write.
    #[oai(
        path = "/patients/:pid/care-team/members/:member_id/",
        method = "delete",
        operation_id = "patient_care_team_members_remove"
    )]
    async fn remove(
        &self,
        state: Data<&AppState>,
        auth: Auth,
        pid: Path<i64>,
        member_id: Path<i64>,
    ) -> Result<Removed, ApiError> {
        care_team::remove_member(&state, &auth.0, Pid(pid.0), member_id.0).await?;
        Ok(Removed::Removed)
    }
}
