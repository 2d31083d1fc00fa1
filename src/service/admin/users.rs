//! Staff accounts and their roles, created and changed as OpenEMR's Administration > Users
//! screen does, for holders of `admin|users`: the acting administrator confirms with their own
//! password (as `AuthUtils::updatePassword` demands), new passwords follow OpenEMR's security
//! globals and are hashed with its configured algorithm, every change is one transaction with its
//! audit row, and an administrator without `admin|super` cannot grant or touch it.

use std::collections::{HashMap, HashSet};

use super::{AdminError, Result};
use crate::{
    app::AppState,
    domain::{
        acl::{AclGroup, AclLevel, Aco, Permissions},
        admin::user_account::{self as rules, Field, PasswordPolicy, Requested, Value},
        audit::AuditEntry,
        user::{Caller, UserId},
        validation::Issues,
    },
    php::password::HashScheme,
    service::permission,
    storage::{
        StorageError,
        advisory_lock::{self, Held},
        mmt::tokens,
        openemr::{
            acl, audit_log, globals,
            user_accounts::{self as store, AccountRow},
            users,
        },
    },
};

/// An account with its direct roles and the facilities it may work in.
pub struct Account {
    pub row: AccountRow,
    pub roles: Vec<AclGroup>,
    pub facilities: Vec<i64>,
}

pub struct NewAccount {
    pub username: String,
    pub password: String,
    pub admin_password: String,
    pub auth_group: Option<String>,
    pub roles: Vec<String>,
    pub facilities: Vec<i64>,
    pub fields: Vec<(Field, Requested)>,
}

pub struct AccountChange {
    pub fields: Vec<(Field, Requested)>,
    pub password: Option<String>,
    pub admin_password: Option<String>,
    pub facilities: Option<Vec<i64>>,
}

/// A phpGACL group with what its members may do (its own ACLs and its ancestors').
pub struct Role {
    pub id: i64,
    pub value: String,
    pub name: String,
    pub parent: Option<String>,
    pub members: i64,
    pub permissions: Vec<(String, AclLevel)>,
}

pub async fn list(state: &AppState, caller: &Caller, include_inactive: bool) -> Result<Vec<Account>> {
    let mine = allowed(state, caller).await?;
    let rows = store::list(&state.pool, include_inactive).await?;
    let mut conn = state.pool.acquire().await.map_err(StorageError::from_sqlx)?;
    let mut accounts = Vec::with_capacity(rows.len());
    let mine = Manager::of(&mine);
    for row in rows {
        if mine.may_manage(state, &row.username).await? {
            accounts.push(with_details(&mut conn, row).await?);
        }
    }
    Ok(accounts)
}

pub async fn get(state: &AppState, caller: &Caller, id: i64) -> Result<Account> {
    let mine = allowed(state, caller).await?;
    let account = load(state, id).await?;
    guard(state, &mine, &account.row.username).await?;
    Ok(account)
}

pub async fn create(state: &AppState, caller: &Caller, new: NewAccount) -> Result<Account> {
    let mine = allowed(state, caller).await?;
    let mut issues = Issues::default();
    let username = rules::username(&mut issues, &new.username);
    let facilities = facilities_named(&new.fields, &new.facilities);
    let values = rules::validate(new.fields, true).unwrap_or_else(|found| {
        issues.0.extend(found.0);
        Vec::new()
    });
    let policy = password_policy(state).await?;
    if let Err(message) = policy.check(&new.password) {
        issues.add("password", message);
    }
    let group_ids = role_ids(&all_roles(state).await?, &mine, &new.roles, &mut issues)?;
    let auth_group = new.auth_group.unwrap_or_else(|| "Default".into());
    if !store::auth_group_exists(&state.pool, &auth_group).await? {
        issues.add("auth_group", "must be one of OpenEMR's auth groups (`groups.name`), usually Default");
    }
    check_facilities(state, facilities, &mut issues).await?;
    let values = issues.into_result(values)?;
    confirm(state, caller, &new.admin_password).await?;
    let hash = new_hash(state, new.password).await?;

    let row = Insert {
        username,
        hash,
        auth_group,
        values,
        group_ids,
        roles: new.roles,
        facilities: new.facilities,
    };
    // `users.username` has no unique key: creates take turns so two cannot both find it free.
    let mut held = Held::take(&state.pool, "mmt-user-accounts", advisory_lock::WRITE_WAIT_SECS).await?;
    let result = insert_locked(held.conn(), caller, row).await;
    held.release().await?;
    load(state, result?).await
}

struct Insert {
    username: String,
    hash: String,
    auth_group: String,
    values: Vec<(Field, Value)>,
    group_ids: Vec<i64>,
    roles: Vec<String>,
    facilities: Vec<i64>,
}

/// Every row of a new account, as OpenEMR's screen writes them, in one transaction.
async fn insert_locked(conn: &mut sqlx::MySqlConnection, caller: &Caller, new: Insert) -> Result<i64> {
    let mut tx = sqlx::Connection::begin(conn).await.map_err(StorageError::from_sqlx)?;
    let username = new.username.as_str();
    if store::username_taken(&mut tx, username).await? {
        return Err(AdminError::Conflict(format!("user {username} already exists")));
    }
    let id = store::insert(&mut tx, username, &new.values).await?;
    store::copy_facility_names(&mut tx, id).await?;
    store::insert_credentials(&mut tx, id, username, &new.hash).await?;
    store::insert_auth_group(&mut tx, &new.auth_group, username).await?;
    acl::set_groups(&mut tx, username, &full_name(&new.values, None), &new.group_ids).await?;
    if !new.facilities.is_empty() {
        store::set_facility_access(&mut tx, id, &new.facilities).await?;
    }
    let comments = format!("mmt-sidecar: user {id} ({username}) added; roles: {}", new.roles.join(", "));
    audit(&mut tx, caller, "security-administration-insert", comments).await?;
    tx.commit().await.map_err(StorageError::from_sqlx)?;
    Ok(id)
}

/// Changes the fields sent; a new password needs the administrator's own password too.
pub async fn update(state: &AppState, caller: &Caller, id: i64, change: AccountChange) -> Result<Account> {
    let mine = allowed(state, caller).await?;
    let before = load(state, id).await?;
    guard(state, &mine, &before.row.username).await?;
    let mut issues = Issues::default();
    if id == caller.user_id.0
        && change.fields.iter().any(|(f, v)| *f == Field::Active && matches!(v, Requested::Flag(false)))
    {
        issues.add("active", "you cannot deactivate your own account; ask another administrator");
    }
    let facilities = facilities_named(&change.fields, change.facilities.as_deref().unwrap_or_default());
    let values = rules::validate(change.fields, false).unwrap_or_else(|found| {
        issues.0.extend(found.0);
        Vec::new()
    });
    check_facilities(state, facilities, &mut issues).await?;
    let policy = match &change.password {
        Some(password) => {
            let policy = password_policy(state).await?;
            if let Err(message) = policy.check(password) {
                issues.add("password", message);
            }
            if change.admin_password.is_none() {
                issues.add("admin_password", "is required to set a password: your own current password");
            }
            Some(policy)
        }
        None => None,
    };
    let values = issues.into_result(values)?;
    let hash = match (change.password, policy) {
        (Some(password), Some(policy)) => {
            confirm(state, caller, change.admin_password.as_deref().unwrap_or_default()).await?;
            refuse_reuse(state, id, &password, policy.history).await?;
            Some((new_hash(state, password).await?, policy.history > 0))
        }
        _ => None,
    };

    let mut tx = state.pool.begin().await.map_err(StorageError::from_sqlx)?;
    if !store::lock(&mut tx, id).await? {
        return Err(not_found(id));
    }
    let mut changed: Vec<&str> = values.iter().map(|(f, _)| f.name()).collect();
    if !values.is_empty() {
        store::update(&mut tx, id, &values).await?;
        if values.iter().any(|(f, _)| matches!(f, Field::FacilityId | Field::BillingFacilityId)) {
            store::copy_facility_names(&mut tx, id).await?;
        }
    }
    if let Some((hash, keep_history)) = &hash {
        store::replace_password(&mut tx, id, hash, *keep_history).await?;
        changed.push("password");
    }
    if let Some(facilities) = &change.facilities {
        store::set_facility_access(&mut tx, id, facilities).await?;
        changed.push("facilities");
    }
    if !changed.is_empty() {
        let comments =
            format!("mmt-sidecar: user {id} ({}) changed: {}", before.row.username, changed.join(", "));
        audit(&mut tx, caller, "security-administration-update", comments).await?;
    }
    tx.commit().await.map_err(StorageError::from_sqlx)?;
    if values.contains(&(Field::Active, Value::Flag(false))) {
        // A deactivated account's tokens would fail their next check anyway; revoking them says so
        // in the sessions list at once.
        tokens::revoke_user(&state.pool, UserId(id), chrono::Utc::now().naive_utc()).await?;
    }
    load(state, id).await
}

/// Puts the user in exactly these roles (`AclExtended::setUserAro`); the installed `admin` and
/// `gacl_protect` users always stay administrators.
pub async fn set_roles(state: &AppState, caller: &Caller, id: i64, roles: Vec<String>) -> Result<Account> {
    let mine = allowed(state, caller).await?;
    let before = load(state, id).await?;
    guard(state, &mine, &before.row.username).await?;
    let mut issues = Issues::default();
    if id == caller.user_id.0 {
        issues.add("roles", "you cannot change your own roles; ask another administrator");
    }
    let all = all_roles(state).await?;
    let mut group_ids = role_ids(&all, &mine, &roles, &mut issues)?;
    issues.into_result(())?;
    let username = before.row.username.clone();

    let mut tx = state.pool.begin().await.map_err(StorageError::from_sqlx)?;
    if !store::lock(&mut tx, id).await? {
        return Err(not_found(id));
    }
    if rules::keeps_admin_group(&username, store::is_protected(&mut tx, id).await?)
        && let Some(admin) = all.iter().find(|r| r.value == "admin")
        && !group_ids.contains(&admin.id)
    {
        group_ids.push(admin.id);
    }
    acl::set_groups(&mut tx, &username, &full_name(&[], Some(&before.row)), &group_ids).await?;
    let comments = format!("mmt-sidecar: user {id} ({username}) roles set: {}", roles.join(", "));
    audit(&mut tx, caller, "security-administration-update", comments).await?;
    tx.commit().await.map_err(StorageError::from_sqlx)?;
    state.acl.forget(&username);
    load(state, id).await
}

pub async fn roles(state: &AppState, caller: &Caller) -> Result<Vec<Role>> {
    allowed(state, caller).await?;
    all_roles(state).await
}

async fn all_roles(state: &AppState) -> Result<Vec<Role>> {
    let rows = acl::roles(&state.pool).await?;
    let mut grants: HashMap<i64, Vec<_>> = HashMap::new();
    for (group, section, value, grant) in acl::role_grants(&state.pool).await? {
        grants.entry(group).or_default().push((section, value, grant));
    }
    let names: HashMap<i64, String> = rows.iter().map(|r| (r.id, r.value.clone())).collect();
    Ok(rows
        .into_iter()
        .map(|row| Role {
            id: row.id,
            parent: names.get(&row.parent_id).cloned(),
            permissions: Permissions::new(Vec::new(), grants.remove(&row.id).unwrap_or_default()).effective(),
            value: row.value,
            name: row.name,
            members: row.members,
        })
        .collect())
}

/// `admin|users` opens OpenEMR's user administration. Returns the caller's own permissions.
async fn allowed(state: &AppState, caller: &Caller) -> Result<std::sync::Arc<Permissions>> {
    permission::require(state, caller, Aco::ADMIN_USERS, AclLevel::Write).await?;
    Ok(state.acl.permissions(&caller.username).await?)
}

fn is_super(permissions: &Permissions) -> bool {
    permissions.allows(Aco::ADMIN_SUPER, AclLevel::Write)
}

/// What the caller holds, worked out once for every user they might manage.
struct Manager {
    is_super: bool,
    holds: Vec<(String, AclLevel)>,
}

impl Manager {
    fn of(mine: &Permissions) -> Self {
        Self { is_super: is_super(mine), holds: mine.effective() }
    }

    async fn may_manage(&self, state: &AppState, username: &str) -> Result<bool> {
        if self.is_super {
            return Ok(true);
        }
        let theirs = state.acl.permissions(username).await?;
        Ok(!is_super(&theirs) && rules::holds_all_of(&self.holds, &theirs.effective()))
    }
}

async fn guard(state: &AppState, mine: &Permissions, username: &str) -> Result<()> {
    if Manager::of(mine).may_manage(state, username).await? {
        Ok(())
    } else {
        Err(AdminError::Forbidden(format!(
            "{username} holds permissions you do not (only an administrator with admin|super may manage them)"
        )))
    }
}

/// The group ids for role values, each checked to exist; granting a role that carries
/// `admin|super` takes `admin|super` (`AclExtended::isGroupIncludeSuperuser`).
fn role_ids(all: &[Role], mine: &Permissions, roles: &[String], issues: &mut Issues) -> Result<Vec<i64>> {
    if roles.is_empty() {
        issues.add("roles", "must name at least one role; a user in none cannot sign in");
        return Ok(Vec::new());
    }
    let mut wanted = Vec::new();
    let mut seen = HashSet::new();
    for value in roles.iter().filter(|v| seen.insert(v.as_str())) {
        match all.iter().find(|r| &r.value == value) {
            Some(role) => {
                if !is_super(mine) && role.permissions.iter().any(|(aco, _)| aco == "admin|super") {
                    return Err(AdminError::Forbidden(format!(
                        "role {value} includes admin|super, which only an administrator with admin|super may grant"
                    )));
                }
                wanted.push(role.id);
            }
            None => {
                let known: Vec<&str> = all.iter().map(|r| r.value.as_str()).collect();
                issues.add("roles", format!("{value} is not a role; roles are {}", known.join(", ")));
            }
        }
    }
    Ok(wanted)
}

/// Every facility a request names, with the field naming it.
fn facilities_named(fields: &[(Field, Requested)], access: &[i64]) -> Vec<(&'static str, i64)> {
    let mut named: Vec<(&str, i64)> = fields
        .iter()
        .filter_map(|(f, v)| match (f, v) {
            (Field::FacilityId | Field::BillingFacilityId, Requested::Number(n)) => Some((f.name(), *n)),
            _ => None,
        })
        .collect();
    named.extend(access.iter().map(|id| ("facilities", *id)));
    named
}

async fn check_facilities(
    state: &AppState,
    asked: Vec<(&'static str, i64)>,
    issues: &mut Issues,
) -> Result<()> {
    let ids: Vec<i64> = asked.iter().map(|(_, id)| *id).collect();
    let known = store::existing_facilities(&state.pool, &ids).await?;
    for (field, id) in asked {
        if !known.contains(&id) {
            issues.add(field, format!("facility {id} does not exist"));
        }
    }
    Ok(())
}

async fn password_policy(state: &AppState) -> Result<PasswordPolicy> {
    Ok(PasswordPolicy::from_globals(&globals::values(&state.pool, &PasswordPolicy::GLOBALS).await?))
}

/// OpenEMR makes an administrator re-enter their own password to set anyone's.
async fn confirm(state: &AppState, caller: &Caller, admin_password: &str) -> Result<()> {
    let hash = users::by_id(&state.pool, caller.user_id).await?.map(|u| u.password_hash);
    if state.verifier.verify(admin_password.to_string(), hash).await.map_err(busy)? {
        Ok(())
    } else {
        Err(AdminError::Forbidden("admin_password is not your current password".into()))
    }
}

/// `password_history` forbids the current password and the ones before it, up to five.
async fn refuse_reuse(state: &AppState, id: i64, password: &str, history: usize) -> Result<()> {
    let mut conn = state.pool.acquire().await.map_err(StorageError::from_sqlx)?;
    let hashes = store::lock_hashes(&mut conn, id).await?.unwrap_or_default();
    for hash in hashes.into_iter().take(history).flatten() {
        if state.verifier.verify(password.to_string(), Some(hash)).await.map_err(busy)? {
            let mut issues = Issues::default();
            issues.add("password", "was used before; OpenEMR forbids reusing a recent password");
            return Err(issues.into());
        }
    }
    Ok(())
}

async fn new_hash(state: &AppState, password: String) -> Result<String> {
    let scheme = HashScheme::from_globals(&globals::values(&state.pool, &HashScheme::GLOBALS).await?);
    state.verifier.hash(password, scheme).await.map_err(busy)?.ok_or_else(|| {
        AdminError::Conflict("OpenEMR's password hashing globals name options out of range".into())
    })
}

fn busy(err: crate::service::credentials::VerifierBusy) -> AdminError {
    AdminError::Storage(StorageError::Busy(err.to_string()))
}

/// The ARO's name as `setUserAro` composes it from the account's names.
fn full_name(values: &[(Field, Value)], row: Option<&AccountRow>) -> String {
    let pick = |field: Field, stored: Option<&Option<String>>| {
        values
            .iter()
            .find_map(|(f, v)| match v {
                Value::Text(t) if *f == field => Some(t.clone()),
                _ => None,
            })
            .or_else(|| stored.cloned().flatten())
            .unwrap_or_default()
    };
    let first = pick(Field::FirstName, row.map(|r| &r.fname));
    let middle = pick(Field::MiddleName, row.map(|r| &r.mname));
    let last = pick(Field::LastName, row.map(|r| &r.lname));
    [first, middle, last].into_iter().filter(|s| !s.is_empty()).collect::<Vec<_>>().join(" ")
}

async fn load(state: &AppState, id: i64) -> Result<Account> {
    let mut conn = state.pool.acquire().await.map_err(StorageError::from_sqlx)?;
    let row = store::get(&mut conn, id).await?.ok_or_else(|| not_found(id))?;
    with_details(&mut conn, row).await
}

async fn with_details(conn: &mut sqlx::MySqlConnection, row: AccountRow) -> Result<Account> {
    let roles = acl::direct_groups(conn, &row.username).await?;
    let facilities = store::facility_access(conn, row.id).await?;
    Ok(Account { row, roles, facilities })
}

async fn audit(
    conn: &mut sqlx::MySqlConnection,
    caller: &Caller,
    event: &str,
    comments: String,
) -> Result<()> {
    let entry = AuditEntry::phi(caller, event, "Security", None, comments);
    audit_log::record(conn, &entry).await?;
    Ok(())
}

fn not_found(id: i64) -> AdminError {
    AdminError::NotFound(format!("no user {id}"))
}
