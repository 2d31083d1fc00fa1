//! Staff accounts and roles administered as OpenEMR's Administration > Users screen does.

use std::process::Command;

use poem::http::StatusCode;
use serde_json::{Value, json};

use crate::{auth, helpers::TestDb, patients::Api};

const ADMIN_PASSWORD: &str = "Sidecar-Admin-1";
const MILLER: (&str, &str) = ("fdmiller", "Front-Miller-5");
const GARCIA: (&str, &str) = ("drgarcia", "Physician-Garcia-2");

fn new_doctor(username: &str) -> Value {
    json!({"username": username, "password": "Tidal-Harbour-42!", "admin_password": ADMIN_PASSWORD,
        "roles": ["doc"], "first_name": "Ana", "middle_name": "Lucia", "last_name": "Ruiz", "provider": true,
        "facility_id": 3, "npi": "1234567893", "taxonomy": "207Q00000X", "specialty": "Family Medicine",
        "email": "ana.ruiz@clinic.example"})
}

/// PHP's own `password_verify`, the check OpenEMR's login screen makes.
fn php_verifies(password: &str, hash: &str) -> bool {
    let out = Command::new("php")
        .args(["-r", "echo password_verify($argv[1], $argv[2]) ? 'yes' : 'no';", password, hash])
        .output()
        .expect("php is required (Debian php-cli; scripts/test.sh installs it)");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout) == "yes"
}

async fn set_global(db: &TestDb, name: &str, value: &str) {
    sqlx::query("REPLACE INTO globals (gl_name, gl_index, gl_value) VALUES (?, 0, ?)")
        .bind(name)
        .bind(value)
        .execute(&db.pool)
        .await
        .unwrap();
}

async fn stored_hash(db: &TestDb, username: &str) -> String {
    db.scalar_text(&format!("SELECT password FROM users_secure WHERE username = '{username}'")).await
}

#[tokio::test]
async fn a_created_user_is_the_rows_openemrs_screen_writes_and_signs_in_everywhere() {
    let api = Api::admin().await;
    let aro_before = api.db.scalar("SELECT id FROM gacl_aro_seq").await;
    let (status, created) = api.call("POST", "/api/admin/users/", Some(new_doctor("aruiz"))).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert!(created.get("password").is_none() && created.get("admin_password").is_none(), "{created}");
    let id = created["id"].as_i64().unwrap();
    assert_eq!(created["roles"], json!([{"value": "doc", "name": "Physicians"}]));
    assert_eq!(
        (created["calendar"].as_bool(), created["facility"].as_str()),
        (Some(true), Some("Riverside Family Health"))
    );

    let users_row: (String, String, i8, i8, String, String, String) = sqlx::query_as(
        "SELECT password, CAST(facility AS CHAR), authorized, calendar, main_menu_role, npi, CAST(uuid_registry.table_name AS CHAR) \
         FROM users JOIN uuid_registry ON uuid_registry.uuid = users.uuid WHERE users.id = ?",
    )
    .bind(id)
    .fetch_one(&api.db.pool)
    .await
    .unwrap();
    assert_eq!(
        users_row,
        (
            "NoLongerUsed".into(),
            "Riverside Family Health".into(),
            1,
            1,
            "standard".into(),
            "1234567893".into(),
            "users".into()
        )
    );
    let hash = stored_hash(&api.db, "aruiz").await;
    assert!(hash.starts_with("$2y$10$"), "PHP's PASSWORD_DEFAULT at its default cost: {hash}");
    assert!(php_verifies("Tidal-Harbour-42!", &hash), "OpenEMR's own login accepts the hash");
    assert!(!php_verifies("Tidal-Harbour-43!", &hash));
    let secure_id = api
        .db
        .scalar("SELECT id FROM users_secure WHERE username = 'aruiz' AND last_update_password IS NOT NULL")
        .await;
    assert_eq!(secure_id, id);
    assert_eq!(api.db.scalar_text("SELECT name FROM `groups` WHERE user = 'aruiz'").await, "Default");
    let aro: (i64, i64, String, i64) = sqlx::query_as(
        "SELECT CAST(o.id AS SIGNED), CAST(o.order_value AS SIGNED), o.name, CAST(m.group_id AS SIGNED) FROM gacl_aro o \
         JOIN gacl_groups_aro_map m ON m.aro_id = o.id WHERE o.section_value = 'users' AND o.value = 'aruiz'",
    )
    .fetch_one(&api.db.pool)
    .await
    .unwrap();
    assert_eq!(
        aro,
        (aro_before + 1, 10, "Ana Lucia Ruiz".into(), 13),
        "phpGACL's add_object and add_group_object"
    );
    assert_eq!(api.db.scalar("SELECT id FROM gacl_aro_seq").await, aro_before + 1);
    let audited = api
        .db
        .scalar(&format!(
            "SELECT COUNT(*) FROM log WHERE event = 'security-administration-insert' AND category = 'Security' \
             AND user = 'admin' AND FROM_BASE64(comments) LIKE '%user {id} (aruiz) added%'"
        ))
        .await;
    assert_eq!(audited, 1);
    let logged_secret = api
        .db
        .scalar("SELECT COUNT(*) FROM log WHERE FROM_BASE64(comments) LIKE '%Tidal-Harbour%' OR comments LIKE '%Tidal-Harbour%'")
        .await;
    assert_eq!(logged_secret, 0, "no password in the audit log");

    let (status, signed_in) = auth::login(&api.db, "aruiz", "Tidal-Harbour-42!").await;
    assert_eq!(status, StatusCode::OK, "the new user signs in to the sidecar: {signed_in}");
    let doctor = Api { db: api.db.clone_handle(), token: signed_in["access_token"].as_str().unwrap().into() };
    let (status, chart) = doctor.get("/api/patients/1/").await;
    assert_eq!(status, StatusCode::OK, "the Physicians role reads charts: {chart}");
}

#[tokio::test]
async fn new_hashes_follow_openemrs_hash_algorithm_global() {
    let api = Api::admin().await;
    for (i, (algo, option, prefix)) in [
        ("ARGON2ID", ("gbl_auth_argon_hash_memory_cost", "1024"), "$argon2id$v=19$m=1024,t=4,p=1$"),
        ("SHA512HASH", ("gbl_auth_sha512_rounds", "1000"), "$6$rounds=1000$"),
        ("BCRYPT", ("gbl_auth_bcrypt_hash_cost", "5"), "$2y$05$"),
    ]
    .into_iter()
    .enumerate()
    {
        set_global(&api.db, "gbl_auth_hash_algo", algo).await;
        set_global(&api.db, option.0, option.1).await;
        let username = format!("hashed{i}");
        let (status, body) = api.call("POST", "/api/admin/users/", Some(new_doctor(&username))).await;
        assert_eq!(status, StatusCode::CREATED, "{algo}: {body}");
        let hash = stored_hash(&api.db, &username).await;
        assert!(hash.starts_with(prefix), "{algo}: {hash}");
        assert!(php_verifies("Tidal-Harbour-42!", &hash), "{algo}: PHP verifies {hash}");
        let (status, _) = auth::login(&api.db, &username, "Tidal-Harbour-42!").await;
        assert_eq!(status, StatusCode::OK, "{algo}");
    }
}

#[tokio::test]
async fn passwords_must_pass_openemrs_password_globals_and_a_refusal_writes_nothing() {
    let api = Api::admin().await;
    let users_before = api.db.scalar("SELECT COUNT(*) FROM users").await;
    let weak = json!({"password": "alllowercase1"});
    let mut body = new_doctor("weakling");
    body.as_object_mut().unwrap().extend(weak.as_object().unwrap().clone());
    let (status, problem) = api.call("POST", "/api/admin/users/", Some(body)).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{problem}");
    assert_eq!(problem["errors"][0]["field"], "password", "{problem}");
    assert!(problem["errors"][0]["message"].as_str().unwrap().contains("uppercase"), "{problem}");
    assert!(!problem.to_string().contains("alllowercase1"), "the password is never echoed");

    set_global(&api.db, "gbl_minimum_password_length", "20").await;
    let (status, problem) = api.call("POST", "/api/admin/users/", Some(new_doctor("shorty"))).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{problem}");
    assert!(problem["errors"][0]["message"].as_str().unwrap().contains("at least 20"), "{problem}");

    set_global(&api.db, "gbl_minimum_password_length", "9").await;
    set_global(&api.db, "secure_password", "0").await;
    let mut body = new_doctor("relaxed");
    body["password"] = json!("plainpassword");
    let (status, created) = api.call("POST", "/api/admin/users/", Some(body)).await;
    assert_eq!(status, StatusCode::CREATED, "strength is off when OpenEMR's global says so: {created}");
    assert_eq!(api.db.scalar("SELECT COUNT(*) FROM users").await, users_before + 1);
}

#[tokio::test]
async fn bad_fields_are_named_together_and_nothing_is_written() {
    let api = Api::admin().await;
    let counts = "SELECT (SELECT COUNT(*) FROM users) + (SELECT COUNT(*) FROM users_secure) \
                  + (SELECT COUNT(*) FROM gacl_aro) + (SELECT COUNT(*) FROM `groups`)";
    let before = api.db.scalar(counts).await;
    let body = json!({"username": "two words", "password": "Tidal-Harbour-42!", "admin_password": ADMIN_PASSWORD,
        "roles": ["wizard"], "first_name": "Ana", "last_name": "Ruiz", "npi": "1234567890", "facility_id": 999,
        "see_auth": 7});
    let (status, problem) = api.call("POST", "/api/admin/users/", Some(body)).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{problem}");
    let mut fields: Vec<&str> =
        problem["errors"].as_array().unwrap().iter().map(|e| e["field"].as_str().unwrap()).collect();
    fields.sort_unstable();
    assert_eq!(fields, ["facility_id", "npi", "roles", "see_auth", "username"], "{problem}");
    let (status, problem) = api.call("POST", "/api/admin/users/", Some(json!({"username": "x"}))).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{problem}");
    assert_eq!(api.db.scalar(counts).await, before);
}

#[tokio::test]
async fn a_wrong_admin_password_is_refused_and_nothing_is_written() {
    let api = Api::admin().await;
    let mut body = new_doctor("noconfirm");
    body["admin_password"] = json!("Sidecar-Admin-2");
    let (status, problem) = api.call("POST", "/api/admin/users/", Some(body)).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{problem}");
    assert!(problem["detail"].as_str().unwrap().contains("admin_password"), "{problem}");
    assert_eq!(api.db.scalar("SELECT COUNT(*) FROM users WHERE username = 'noconfirm'").await, 0);
}

#[tokio::test]
async fn concurrent_creates_of_one_username_make_one_account_whatever_the_case() {
    let api = Api::admin().await;
    let names = ["twin", "TWIN", "Twin", "twin"];
    let calls = names.map(|name| api.call("POST", "/api/admin/users/", Some(new_doctor(name))));
    let results = futures_util::future::join_all(calls).await;
    let statuses: Vec<StatusCode> = results.iter().map(|(s, _)| *s).collect();
    assert_eq!(statuses.iter().filter(|s| **s == StatusCode::CREATED).count(), 1, "{results:?}");
    assert_eq!(statuses.iter().filter(|s| **s == StatusCode::CONFLICT).count(), 3, "{results:?}");
    assert_eq!(api.db.scalar("SELECT COUNT(*) FROM users WHERE username = 'twin'").await, 1);
    assert_eq!(api.db.scalar("SELECT COUNT(*) FROM gacl_aro WHERE value = 'twin'").await, 1);
    let (status, _) = api.call("POST", "/api/admin/users/", Some(new_doctor("ADMIN"))).await;
    assert_eq!(status, StatusCode::CONFLICT, "OpenEMR's username check ignores case");
}

#[tokio::test]
async fn roles_list_phpgacls_groups_with_their_effective_permissions() {
    let api = Api::admin().await;
    let (status, roles) = api.get("/api/admin/roles/").await;
    assert_eq!(status, StatusCode::OK, "{roles}");
    let values: Vec<&str> = roles.as_array().unwrap().iter().map(|r| r["value"].as_str().unwrap()).collect();
    assert_eq!(values, ["admin", "clin", "doc", "front", "back", "breakglass"]);
    let front = roles.as_array().unwrap().iter().find(|r| r["value"] == "front").unwrap();
    assert_eq!((front["name"].as_str(), front["members"].as_i64()), (Some("Front Office"), Some(2)));
    let level = |aco: &str| {
        front["permissions"].as_array().unwrap().iter().find(|p| p["aco"] == aco).map(|p| p["level"].clone())
    };
    assert_eq!(level("patients|appt"), Some(json!("write")));
    assert_eq!(level("patients|alert"), Some(json!("view")));
    assert_eq!(level("patients|med"), None);
    let expected = api
        .db
        .scalar(
            "SELECT COUNT(DISTINCT ac.section_value, ac.value) FROM gacl_aro_groups g \
             JOIN gacl_aro_groups_map arg ON arg.group_id = g.id JOIN gacl_acl a ON a.id = arg.acl_id AND a.enabled = 1 \
             JOIN gacl_aco_map ac ON ac.acl_id = a.id WHERE g.value = 'front'",
        )
        .await;
    assert_eq!(front["permissions"].as_array().unwrap().len() as i64, expected, "{front}");
    let admin = roles.as_array().unwrap().iter().find(|r| r["value"] == "admin").unwrap();
    assert!(admin["permissions"].as_array().unwrap().iter().any(|p| p["aco"] == "admin|super"), "{admin}");
}

#[tokio::test]
async fn setting_roles_replaces_phpgacl_membership_and_permissions_follow() {
    let api = Api::admin().await;
    let nkim =
        Api { db: api.db.clone_handle(), token: auth::tokens(&api.db, ("nkim", "Clinician-Kim-4")).await.0 };
    let (status, _) = nkim.get("/api/patients/1/problems/").await;
    assert_eq!(status, StatusCode::OK);
    let id = api.db.scalar("SELECT id FROM users WHERE username = 'nkim'").await;
    let (status, changed) =
        api.call("PUT", &format!("/api/admin/users/{id}/roles/"), Some(json!({"roles": ["front"]}))).await;
    assert_eq!(status, StatusCode::OK, "{changed}");
    assert_eq!(changed["roles"], json!([{"value": "front", "name": "Front Office"}]));
    let groups = api
        .db
        .scalar_text(
            "SELECT GROUP_CONCAT(g.value) FROM gacl_aro o JOIN gacl_groups_aro_map m ON m.aro_id = o.id \
             JOIN gacl_aro_groups g ON g.id = m.group_id WHERE o.value = 'nkim'",
        )
        .await;
    assert_eq!(groups, "front");
    let (status, _) = nkim.get("/api/patients/1/problems/").await;
    assert_eq!(status, StatusCode::FORBIDDEN, "Front Office has no patients|med");

    let own = Some(json!({"roles": ["clin"]}));
    let (status, problem) = api.call("PUT", "/api/admin/users/1/roles/", own).await;
    assert_eq!(
        (status, problem["errors"][0]["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("roles")),
        "an administrator does not change their own roles: {problem}"
    );
    let (status, _) = api.call("PATCH", "/api/admin/users/1/", Some(json!({"active": false}))).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "nor lock themselves out");
    let mut second = new_doctor("deputy");
    second["roles"] = json!(["admin"]);
    let (status, _) = api.call("POST", "/api/admin/users/", Some(second)).await;
    assert_eq!(status, StatusCode::CREATED);
    let deputy = Api {
        db: api.db.clone_handle(),
        token: auth::tokens(&api.db, ("deputy", "Tidal-Harbour-42!")).await.0,
    };
    let (status, admin) =
        deputy.call("PUT", "/api/admin/users/1/roles/", Some(json!({"roles": ["clin"]}))).await;
    assert_eq!(status, StatusCode::OK, "{admin}");
    let values: Vec<&str> =
        admin["roles"].as_array().unwrap().iter().map(|r| r["value"].as_str().unwrap()).collect();
    assert_eq!(values, ["admin", "clin"], "OpenEMR's installed admin stays an administrator");
    let (status, problem) =
        api.call("PUT", &format!("/api/admin/users/{id}/roles/"), Some(json!({"roles": []}))).await;
    assert_eq!(
        (status, problem["errors"][0]["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("roles"))
    );
}

/// Front Office given `admin|users`, as an OpenEMR administrator might in the ACL screen.
async fn front_office_manages_users(db: &TestDb) {
    for sql in [
        "INSERT INTO gacl_acl (id, section_value, allow, enabled, return_value, note, updated_date) \
         VALUES (900, 'system', 1, 1, 'write', 'front office manages users', 0)",
        "INSERT INTO gacl_aco_map (acl_id, section_value, value) VALUES (900, 'admin', 'users')",
        "INSERT INTO gacl_aro_groups_map (acl_id, group_id) SELECT 900, id FROM gacl_aro_groups WHERE value = 'front'",
    ] {
        sqlx::query(sqlx::AssertSqlSafe(sql)).execute(&db.pool).await.unwrap();
    }
}

#[tokio::test]
async fn an_administrator_without_super_manages_only_users_within_reach() {
    let db = TestDb::migrated().await;
    front_office_manages_users(&db).await;
    let miller = Api { db: db.clone_handle(), token: auth::tokens(&db, MILLER).await.0 };
    let (status, listed) = miller.get("/api/admin/users/").await;
    assert_eq!(status, StatusCode::OK, "{listed}");
    let names: Vec<&str> =
        listed.as_array().unwrap().iter().map(|u| u["username"].as_str().unwrap()).collect();
    assert!(names.contains(&"fdoconnor"), "{names:?}");
    assert!(
        !names.contains(&"admin") && !names.contains(&"drgarcia"),
        "users with more rights are hidden: {names:?}"
    );

    let mut body = new_doctor("sneaky");
    body["admin_password"] = json!(MILLER.1);
    body["roles"] = json!(["admin"]);
    let (status, problem) = miller.call("POST", "/api/admin/users/", Some(body.clone())).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{problem}");
    let (status, _) = miller.call("PATCH", "/api/admin/users/1/", Some(json!({"active": false}))).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) =
        miller.call("PUT", "/api/admin/users/1/roles/", Some(json!({"roles": ["front"]}))).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(db.scalar("SELECT active FROM users WHERE id = 1").await, 1);

    body["roles"] = json!(["front"]);
    let (status, created) = miller.call("POST", "/api/admin/users/", Some(body)).await;
    assert_eq!(status, StatusCode::CREATED, "a role within reach: {created}");

    let garcia = Api { db: db.clone_handle(), token: auth::tokens(&db, GARCIA).await.0 };
    let (status, _) = garcia.get("/api/admin/users/").await;
    assert_eq!(status, StatusCode::FORBIDDEN, "no admin|users, no user administration");
    let (status, _) = garcia.get("/api/admin/roles/").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn deactivating_keeps_the_account_and_ends_its_sign_ins() {
    let api = Api::admin().await;
    let (status, created) = api.call("POST", "/api/admin/users/", Some(new_doctor("leaving"))).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let id = created["id"].as_i64().unwrap();
    let leaving = Api {
        db: api.db.clone_handle(),
        token: auth::tokens(&api.db, ("leaving", "Tidal-Harbour-42!")).await.0,
    };
    let (status, changed) =
        api.call("PATCH", &format!("/api/admin/users/{id}/"), Some(json!({"active": false}))).await;
    assert_eq!((status, changed["active"].as_bool()), (StatusCode::OK, Some(false)), "{changed}");
    assert_eq!(api.db.scalar(&format!("SELECT COUNT(*) FROM users WHERE id = {id} AND active = 0")).await, 1);
    let (status, _) = leaving.get("/api/patients/1/").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = auth::login(&api.db, "leaving", "Tidal-Harbour-42!").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (_, listed) = api.get("/api/admin/users/").await;
    assert!(!listed.as_array().unwrap().iter().any(|u| u["id"] == id));
    let (_, all) = api.get("/api/admin/users/?include_inactive=true").await;
    assert!(all.as_array().unwrap().iter().any(|u| u["id"] == id));
}

#[tokio::test]
async fn a_password_reset_keeps_openemrs_history_and_refuses_reuse() {
    let api = Api::admin().await;
    let (_, created) = api.call("POST", "/api/admin/users/", Some(new_doctor("resetme"))).await;
    let id = created["id"].as_i64().unwrap();
    let first = stored_hash(&api.db, "resetme").await;
    let path = format!("/api/admin/users/{id}/");
    let (status, problem) = api.call("PATCH", &path, Some(json!({"password": "Second-Tide-43!"}))).await;
    assert_eq!(
        (status, problem["errors"][0]["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("admin_password"))
    );
    let change = json!({"password": "Second-Tide-43!", "admin_password": ADMIN_PASSWORD});
    let (status, changed) = api.call("PATCH", &path, Some(change)).await;
    assert_eq!(status, StatusCode::OK, "{changed}");
    let history =
        api.db.scalar_text(&format!("SELECT password_history1 FROM users_secure WHERE id = {id}")).await;
    assert_eq!(history, first, "the old hash moves to password_history1");
    let (status, _) = auth::login(&api.db, "resetme", "Second-Tide-43!").await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = auth::login(&api.db, "resetme", "Tidal-Harbour-42!").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let back = json!({"password": "Tidal-Harbour-42!", "admin_password": ADMIN_PASSWORD});
    let (status, problem) = api.call("PATCH", &path, Some(back)).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "a recent password is refused: {problem}");
    let (status, problem) = api.call("PATCH", &path, Some(json!({"username": "renamed"}))).await;
    assert_eq!(
        (status, problem["errors"][0]["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("username"))
    );
}
