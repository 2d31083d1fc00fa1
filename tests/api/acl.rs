use std::sync::Arc;

use mmt_sidecar::{
    domain::acl::{AclGroup, AclLevel, Aco, Permissions},
    service::acl::{Acl, AclError},
};

use crate::helpers::TestDb;

async fn permissions(db: &TestDb, username: &str) -> Arc<Permissions> {
    Acl::new(db.pool.clone()).permissions(username).await.unwrap()
}

async fn add_acl(db: &TestDb, id: i64, allow: bool, enabled: bool, level: &str, aco: Aco) {
    sqlx::query("INSERT INTO gacl_acl (id, section_value, allow, enabled, return_value, note) VALUES (?, 'system', ?, ?, ?, 'test')")
        .bind(id)
        .bind(allow)
        .bind(enabled)
        .bind(level)
        .execute(&db.pool)
        .await
        .unwrap();
    sqlx::query("INSERT INTO gacl_aco_map (acl_id, section_value, value) VALUES (?, ?, ?)")
        .bind(id)
        .bind(aco.section)
        .bind(aco.value)
        .execute(&db.pool)
        .await
        .unwrap();
}

async fn grant_to_group(db: &TestDb, acl_id: i64, group_value: &str) {
    sqlx::query("INSERT INTO gacl_aro_groups_map (acl_id, group_id) SELECT ?, id FROM gacl_aro_groups WHERE value = ?")
        .bind(acl_id)
        .bind(group_value)
        .execute(&db.pool)
        .await
        .unwrap();
}

/// The best level each ACO allows, `None` if nothing is allowed.
fn best(p: &Permissions, aco: Aco) -> Option<AclLevel> {
    [AclLevel::Write, AclLevel::Wsome, AclLevel::Addonly, AclLevel::View]
        .into_iter()
        .find(|&l| p.allows(aco, l))
}

#[tokio::test]
async fn each_demo_group_has_its_default_permissions() {
    use AclLevel::*;
    let db = TestDb::openemr().await;
    let acos = [
        Aco::PATIENTS_DEMO,
        Aco::PATIENTS_MED,
        Aco::PATIENTS_APPT,
        Aco::ENCOUNTERS_NOTES,
        Aco::ENCOUNTERS_NOTES_A,
    ];
    let expected: [(&str, [Option<AclLevel>; 5]); 8] = [
        ("admin", [Some(Write); 5]),
        ("emergency", [Some(Write); 5]),
        ("drgarcia", [Some(Write); 5]),
        ("drokafor", [Some(Write); 5]),
        ("nkim", [Some(Addonly), Some(Write), Some(Write), Some(Write), None]),
        ("fdmiller", [Some(Write), None, Some(Write), None, None]),
        ("fdoconnor", [Some(Write), None, Some(Write), None, None]),
        ("acctbrown", [Some(Write), None, Some(Write), None, None]),
    ];
    for (user, levels) in expected {
        let p = permissions(&db, user).await;
        let found: Vec<Option<AclLevel>> = acos.iter().map(|&aco| best(&p, aco)).collect();
        assert_eq!(found, levels, "{user}");
        let superuser = p.allows(Aco::ADMIN_SUPER, Write);
        assert_eq!(superuser, matches!(user, "admin" | "emergency"), "{user}");
    }
}

#[tokio::test]
async fn groups_include_their_ancestors() {
    let db = TestDb::openemr().await;
    let p = permissions(&db, "drgarcia").await;
    let group = |value: &str, name: &str| AclGroup { value: value.into(), name: name.into() };
    assert_eq!(p.groups, vec![group("doc", "Physicians"), group("users", "OpenEMR Users")]);
}

#[tokio::test]
async fn effective_lists_the_best_allowed_level_per_aco() {
    let db = TestDb::openemr().await;
    let effective = permissions(&db, "fdmiller").await.effective();
    let level = |aco: &str| effective.iter().find(|(a, _)| a == aco).map(|(_, l)| *l);
    assert_eq!(level("patients|demo"), Some(AclLevel::Write));
    assert_eq!(level("patients|alert"), Some(AclLevel::View));
    assert_eq!(level("placeholder|filler"), Some(AclLevel::Addonly));
    assert_eq!(level("patients|med"), None);
    assert!(effective.windows(2).all(|w| w[0].0 < w[1].0));
}

#[tokio::test]
async fn an_enabled_deny_beats_an_allow_and_a_disabled_one_does_not() {
    let db = TestDb::openemr().await;
    add_acl(&db, 100, false, false, "view", Aco::PATIENTS_MED).await;
    grant_to_group(&db, 100, "doc").await;
    assert!(permissions(&db, "drgarcia").await.allows(Aco::PATIENTS_MED, AclLevel::Write));

    add_acl(&db, 101, false, true, "view", Aco::PATIENTS_MED).await;
    grant_to_group(&db, 101, "doc").await;
    let p = permissions(&db, "drgarcia").await;
    assert!(!p.allows(Aco::PATIENTS_MED, AclLevel::View));
    assert!(p.allows(Aco::PATIENTS_DEMO, AclLevel::Write));
    assert!(!p.effective().iter().any(|(aco, _)| aco == "patients|med"));
}

#[tokio::test]
async fn a_grant_to_an_ancestor_group_applies_to_its_members() {
    let db = TestDb::openemr().await;
    add_acl(&db, 100, true, true, "view", Aco::PATIENTS_MED).await;
    grant_to_group(&db, 100, "users").await;
    let p = permissions(&db, "fdmiller").await;
    assert!(p.allows(Aco::PATIENTS_MED, AclLevel::View));
    assert!(!p.allows(Aco::PATIENTS_MED, AclLevel::Addonly));
}

#[tokio::test]
async fn a_direct_user_grant_counts_and_usernames_match_exactly() {
    let db = TestDb::openemr().await;
    add_acl(&db, 100, true, true, "write", Aco::ENCOUNTERS_NOTES).await;
    sqlx::query("INSERT INTO gacl_aro_map (acl_id, section_value, value) VALUES (100, 'users', 'fdmiller')")
        .execute(&db.pool)
        .await
        .unwrap();
    assert!(permissions(&db, "fdmiller").await.allows(Aco::ENCOUNTERS_NOTES, AclLevel::Write));
    assert!(!permissions(&db, "fdoconnor").await.allows(Aco::ENCOUNTERS_NOTES, AclLevel::View));

    let other_case = permissions(&db, "FDMILLER").await;
    assert!(other_case.groups.is_empty());
    assert!(other_case.effective().is_empty());
}

#[tokio::test]
async fn require_names_the_missing_permission() {
    let db = TestDb::openemr().await;
    let acl = Acl::new(db.pool.clone());
    acl.require("nkim", Aco::ENCOUNTERS_NOTES, AclLevel::Write).await.unwrap();
    let err = acl.require("nkim", Aco::ENCOUNTERS_NOTES_A, AclLevel::Write).await.unwrap_err();
    assert!(matches!(err, AclError::Denied { aco: Aco::ENCOUNTERS_NOTES_A, level: AclLevel::Write }));
    assert_eq!(err.to_string(), "requires OpenEMR permission encounters|notes_a (write)");
    assert!(acl.require("nobody", Aco::PATIENTS_DEMO, AclLevel::View).await.is_err());
}

#[tokio::test]
async fn permissions_are_cached_per_user() {
    let db = TestDb::openemr().await;
    let acl = Acl::new(db.pool.clone());
    acl.require("drgarcia", Aco::PATIENTS_MED, AclLevel::Write).await.unwrap();
    add_acl(&db, 100, false, true, "write", Aco::PATIENTS_MED).await;
    grant_to_group(&db, 100, "doc").await;
    acl.require("drgarcia", Aco::PATIENTS_MED, AclLevel::Write).await.unwrap();
    assert!(acl.require("drokafor", Aco::PATIENTS_MED, AclLevel::Write).await.is_err());
}
