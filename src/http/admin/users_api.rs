//! OpenEMR's staff accounts and phpGACL roles, administered as Administration > Users does
//! (`service::admin::users`). Every operation needs `admin|users`.

use poem::web::Data;
use poem_openapi::{
    ApiResponse, Object, OpenApi,
    param::{Path, Query},
    payload::Json,
};

use crate::{
    app::AppState,
    domain::{
        admin::user_account::{Field, Requested},
        validation::Issues,
    },
    http::{ApiTags, auth::Auth, problem::ApiError},
    service::admin::users::{self, Account, AccountChange, NewAccount, Role},
    storage::openemr::uuid_registry,
};

/// A role a user is in: a phpGACL group, by its value (`doc`) and title (`Physicians`).
#[derive(Object)]
pub struct RoleRef {
    pub value: String,
    pub name: String,
}

#[derive(Object)]
#[oai(skip_serializing_if_is_none)]
pub struct UserAccount {
    pub id: i64,
    pub uuid: Option<String>,
    pub username: String,
    pub first_name: Option<String>,
    pub middle_name: Option<String>,
    pub last_name: Option<String>,
    pub suffix: Option<String>,
    pub email: Option<String>,
    pub active: bool,
    /// May sign notes and be chosen as a provider (OpenEMR's `authorized`).
    pub provider: bool,
    /// Listed in the calendar's providers.
    pub calendar: bool,
    pub facility_id: i64,
    pub facility: Option<String>,
    pub billing_facility_id: i64,
    pub billing_facility: Option<String>,
    pub npi: Option<String>,
    pub tax_id: Option<String>,
    pub taxonomy: String,
    pub specialty: Option<String>,
    pub state_license_number: Option<String>,
    pub info: Option<String>,
    /// Whose authorizations the user sees: 1 none, 2 only mine, 3 all.
    pub see_auth: i64,
    /// OpenEMR's auth group (`groups.name`), usually `Default`.
    pub auth_group: Option<String>,
    /// The phpGACL groups the user is in directly.
    pub roles: Vec<RoleRef>,
    /// Facilities the user may work in where OpenEMR restricts users to facilities.
    pub facilities: Vec<i64>,
    /// Whether a second factor (TOTP or U2F) is registered.
    pub mfa: bool,
    pub password_changed_at: Option<chrono::NaiveDateTime>,
}

impl From<Account> for UserAccount {
    fn from(a: Account) -> Self {
        let r = a.row;
        Self {
            id: r.id,
            uuid: uuid_registry::to_string(r.uuid.as_deref()),
            username: r.username,
            first_name: r.fname,
            middle_name: r.mname,
            last_name: r.lname,
            suffix: r.suffix,
            email: r.email,
            active: r.active,
            provider: r.authorized,
            calendar: r.calendar,
            facility_id: r.facility_id,
            facility: r.facility,
            billing_facility_id: r.billing_facility_id,
            billing_facility: r.billing_facility,
            npi: r.npi,
            tax_id: r.federaltaxid,
            taxonomy: r.taxonomy,
            specialty: r.specialty,
            state_license_number: r.state_license_number,
            info: r.info,
            see_auth: r.see_auth,
            auth_group: r.auth_group,
            roles: a.roles.into_iter().map(|g| RoleRef { value: g.value, name: g.name }).collect(),
            facilities: a.facilities,
            mfa: r.mfa,
            password_changed_at: r.last_update_password,
        }
    }
}

/// An account's fields. A new account needs `username`, `password`, `admin_password`, `roles`,
/// `first_name` and `last_name`; a change sends only what changes (`null` leaves a field as it
/// is). Usernames never change (phpGACL and OpenEMR's logs name users by them), and roles change
/// through `PUT /admin/users/{id}/roles/`.
#[derive(Object, Default)]
#[oai(deny_unknown_fields)]
pub struct UserAccountInput {
    /// Letters, digits and `._@-`, at most 150 characters; unique regardless of case.
    pub username: Option<String>,
    /// Must pass OpenEMR's password globals (length, strength); on a change, recent passwords are
    /// refused.
    #[oai(write_only)]
    pub password: Option<String>,
    /// Your own current password: OpenEMR asks an administrator for it to set anyone's password.
    #[oai(write_only)]
    pub admin_password: Option<String>,
    /// Role values from `GET /admin/roles/`, at least one (e.g. `["clin"]`).
    pub roles: Option<Vec<String>>,
    /// OpenEMR's auth group (`groups.name`); `Default` unless given.
    pub auth_group: Option<String>,
    /// Facilities the user may work in where OpenEMR restricts users to facilities.
    pub facilities: Option<Vec<i64>>,
    /// `false` deactivates the account (OpenEMR never deletes users) and revokes its sidecar
    /// tokens.
    pub active: Option<bool>,
    pub first_name: Option<String>,
    pub middle_name: Option<String>,
    pub last_name: Option<String>,
    pub suffix: Option<String>,
    pub email: Option<String>,
    /// May sign notes and be chosen as a provider.
    pub provider: Option<bool>,
    /// Listed in the calendar; a new provider is unless told otherwise.
    pub calendar: Option<bool>,
    pub facility_id: Option<i64>,
    pub billing_facility_id: Option<i64>,
    /// 10-digit NPI; its check digit is verified.
    pub npi: Option<String>,
    pub tax_id: Option<String>,
    /// Provider taxonomy code, e.g. `207Q00000X`.
    pub taxonomy: Option<String>,
    pub specialty: Option<String>,
    pub state_license_number: Option<String>,
    pub info: Option<String>,
    /// 1 none, 2 only mine, 3 all.
    pub see_auth: Option<i64>,
}

impl UserAccountInput {
    fn into_new(self) -> Result<NewAccount, Issues> {
        let mut issues = Issues::default();
        let mut required = |field: &str, present: bool| {
            if !present {
                issues.add(field, "is required");
            }
        };
        required("username", self.username.is_some());
        required("password", self.password.is_some());
        required("admin_password", self.admin_password.is_some());
        required("roles", self.roles.is_some());
        if self.active == Some(false) {
            issues.add("active", "a new account starts active");
        }
        let mut this = self;
        let new = NewAccount {
            username: this.username.take().unwrap_or_default(),
            password: this.password.take().unwrap_or_default(),
            admin_password: this.admin_password.take().unwrap_or_default(),
            auth_group: this.auth_group.take(),
            roles: this.roles.take().unwrap_or_default(),
            facilities: this.facilities.take().unwrap_or_default(),
            fields: this.requested(),
        };
        issues.into_result(new)
    }

    fn into_change(mut self) -> Result<AccountChange, Issues> {
        let mut issues = Issues::default();
        if self.username.is_some() {
            issues.add("username", "cannot be changed");
        }
        if self.roles.is_some() {
            issues.add("roles", "change with PUT /admin/users/{id}/roles/");
        }
        if self.auth_group.is_some() {
            issues.add("auth_group", "cannot be changed here");
        }
        let change = AccountChange {
            password: self.password.take(),
            admin_password: self.admin_password.take(),
            facilities: self.facilities.take(),
            fields: self.requested(),
        };
        issues.into_result(change)
    }

    fn requested(self) -> Vec<(Field, Requested)> {
        let text = [
            (Field::FirstName, self.first_name),
            (Field::MiddleName, self.middle_name),
            (Field::LastName, self.last_name),
            (Field::Suffix, self.suffix),
            (Field::Email, self.email),
            (Field::Npi, self.npi),
            (Field::TaxId, self.tax_id),
            (Field::Taxonomy, self.taxonomy),
            (Field::Specialty, self.specialty),
            (Field::StateLicense, self.state_license_number),
            (Field::Info, self.info),
        ];
        let flags = [
            (Field::Provider, self.provider),
            (Field::Calendar, self.calendar),
            (Field::Active, self.active),
        ];
        let numbers = [
            (Field::FacilityId, self.facility_id),
            (Field::BillingFacilityId, self.billing_facility_id),
            (Field::SeeAuth, self.see_auth),
        ];
        let mut requested: Vec<(Field, Requested)> =
            text.into_iter().filter_map(|(f, v)| Some((f, Requested::Text(v?)))).collect();
        requested.extend(flags.into_iter().filter_map(|(f, v)| Some((f, Requested::Flag(v?)))));
        requested.extend(numbers.into_iter().filter_map(|(f, v)| Some((f, Requested::Number(v?)))));
        requested
    }
}

#[derive(Object)]
#[oai(deny_unknown_fields)]
pub struct RolesInput {
    /// Role values, at least one; they replace the user's current roles.
    pub roles: Vec<String>,
}

#[derive(Object)]
pub struct Permission {
    /// `section|value`, e.g. `patients|demo`.
    pub aco: String,
    /// The strongest level granted: `view`, `addonly`, `wsome` or `write`.
    pub level: String,
}

#[derive(Object)]
pub struct RoleOut {
    pub value: String,
    pub name: String,
    /// The group it sits under, when that is a role too.
    pub parent: Option<String>,
    /// Users placed in it directly.
    pub members: i64,
    /// What members may do, through this group and those above it; denied ACOs are left out.
    pub permissions: Vec<Permission>,
}

impl From<Role> for RoleOut {
    fn from(r: Role) -> Self {
        Self {
            value: r.value,
            name: r.name,
            parent: r.parent,
            members: r.members,
            permissions: r
                .permissions
                .into_iter()
                .map(|(aco, level)| Permission { aco, level: level.as_str().to_string() })
                .collect(),
        }
    }
}

#[derive(ApiResponse)]
pub enum UsersResponse {
    #[oai(status = 200)]
    Ok(Json<Vec<UserAccount>>),
}

#[derive(ApiResponse)]
pub enum UserCreated {
    #[oai(status = 201)]
    Created(Json<UserAccount>),
}

#[derive(ApiResponse)]
pub enum UserResponse {
    #[oai(status = 200)]
    Ok(Json<UserAccount>),
}

#[derive(ApiResponse)]
pub enum RolesResponse {
    #[oai(status = 200)]
    Ok(Json<Vec<RoleOut>>),
}

#[derive(Default)]
pub struct UsersApi;

#[OpenApi(prefix_path = "/admin", tag = "ApiTags::Administration")]
impl UsersApi {
    /// Staff accounts.
    ///
    /// An administrator without `admin|super` sees only users whose every permission they hold
    /// too, as OpenEMR's list shows them.
    #[oai(path = "/users/", method = "get", operation_id = "admin_users_list")]
    async fn list(
        &self,
        state: Data<&AppState>,
        auth: Auth,
        /// Include deactivated accounts.
        include_inactive: Query<Option<bool>>,
    ) -> Result<UsersResponse, ApiError> {
        let accounts = users::list(&state, &auth.0, include_inactive.0.unwrap_or(false)).await?;
        Ok(UsersResponse::Ok(Json(accounts.into_iter().map(UserAccount::from).collect())))
    }

    /// Create a staff account, as OpenEMR's Add User screen does.
    ///
    /// Writes `users` (with a uuid), `users_secure` (the password hashed with OpenEMR's configured
    /// algorithm), the auth group row and the phpGACL memberships, in one transaction. The new user
    /// can sign in to OpenEMR itself and to the sidecar at once. A taken username is a 409; a
    /// wrong `admin_password` a 403.
    #[oai(path = "/users/", method = "post", operation_id = "admin_users_create")]
    async fn create(
        &self,
        state: Data<&AppState>,
        auth: Auth,
        body: Json<UserAccountInput>,
    ) -> Result<UserCreated, ApiError> {
        let new = body.0.into_new()?;
        Ok(UserCreated::Created(Json(users::create(&state, &auth.0, new).await?.into())))
    }

    /// One staff account.
    #[oai(path = "/users/:id/", method = "get", operation_id = "admin_users_get")]
    async fn get(&self, state: Data<&AppState>, auth: Auth, id: Path<i64>) -> Result<UserResponse, ApiError> {
        Ok(UserResponse::Ok(Json(users::get(&state, &auth.0, id.0).await?.into())))
    }

    /// Change a staff account: its fields, its password, or deactivate it.
    #[oai(path = "/users/:id/", method = "patch", operation_id = "admin_users_update")]
    async fn update(
        &self,
        state: Data<&AppState>,
        auth: Auth,
        id: Path<i64>,
        body: Json<UserAccountInput>,
    ) -> Result<UserResponse, ApiError> {
        let change = body.0.into_change()?;
        Ok(UserResponse::Ok(Json(users::update(&state, &auth.0, id.0, change).await?.into())))
    }

    /// Set a user's roles (phpGACL group membership).
    ///
    /// Replaces the user's groups with these. OpenEMR's installed `admin` user (and any user
    /// marked `gacl_protect`) stays in Administrators. Granting a role that carries `admin|super`
    /// needs `admin|super`.
    #[oai(path = "/users/:id/roles/", method = "put", operation_id = "admin_users_roles_set")]
    async fn set_roles(
        &self,
        state: Data<&AppState>,
        auth: Auth,
        id: Path<i64>,
        body: Json<RolesInput>,
    ) -> Result<UserResponse, ApiError> {
        Ok(UserResponse::Ok(Json(users::set_roles(&state, &auth.0, id.0, body.0.roles).await?.into())))
    }

    /// Roles: OpenEMR's phpGACL groups with their effective permissions.
    #[oai(path = "/roles/", method = "get", operation_id = "admin_roles_list")]
    async fn roles(&self, state: Data<&AppState>, auth: Auth) -> Result<RolesResponse, ApiError> {
        let roles = users::roles(&state, &auth.0).await?;
        Ok(RolesResponse::Ok(Json(roles.into_iter().map(RoleOut::from).collect())))
    }
}
