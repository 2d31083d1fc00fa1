//! FHIR bulk export: the Bulk Data kick-off, status and file requests, run as a job by a real
//! worker, for OpenEMR administrators only; files sealed on disk, every exported patient audited.

use std::{
    collections::{BTreeMap, HashSet},
    time::{Duration, Instant},
};

use mmt_sidecar::service::{
    fhir_export,
    jobs::{Tasks, Workers},
};
use poem::http::StatusCode;
use serde_json::Value;

use crate::{
    auth::{ADMIN, tokens},
    helpers::TestDb,
};

const GARCIA: (&str, &str) = ("drgarcia", "Physician-Garcia-2");

struct Export {
    db: TestDb,
    dir: std::path::PathBuf,
    env: Vec<(&'static str, String)>,
    admin: String,
    _workers: Tasks,
}

struct Reply {
    status: StatusCode,
    headers: poem::http::HeaderMap,
    body: Vec<u8>,
}

impl Reply {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }

    fn header(&self, name: &str) -> &str {
        self.headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default()
    }
}

impl Drop for Export {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Export {
    async fn new(ttl_secs: &str) -> Self {
        let db = TestDb::migrated().await;
        let dir = std::env::temp_dir().join(format!("mmt-fhir-export-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        let env = vec![
            ("MMT_FHIR_EXPORT_DIR", dir.to_str().unwrap().to_string()),
            ("MMT_FHIR_EXPORT_TTL_SECS", ttl_secs.to_string()),
            ("MMT_JOB_POLL_MS", "20".to_string()),
        ];
        let settings: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let workers = Workers::new(db.state_with(&settings)).spawn(1);
        let (admin, _) = tokens(&db, ADMIN).await;
        Self { db, dir, env, admin, _workers: workers }
    }

    async fn send(&self, token: &str, method: &str, url: &str) -> Reply {
        let settings: Vec<(&str, &str)> = self.env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let client = self.db.client_with(&settings);
        let path = url.strip_prefix("http://ehr.example").unwrap_or(url);
        let method = poem::http::Method::from_bytes(method.as_bytes()).unwrap();
        let resp = client
            .request(method, path)
            .header("host", "ehr.example")
            .header("authorization", format!("Bearer {token}"))
            .send()
            .await;
        let status = resp.0.status();
        let headers = resp.0.headers().clone();
        Reply { status, headers, body: resp.0.into_body().into_vec().await.unwrap() }
    }

    /// Kicks off an export and follows it to its manifest.
    async fn export(&self, query: &str) -> Value {
        let started = self.send(&self.admin, "GET", &format!("/fhir/r4/Patient/$export{query}")).await;
        assert_eq!(started.status, StatusCode::ACCEPTED, "{:?}", started.json());
        self.manifest(started.header("content-location")).await
    }

    async fn manifest(&self, status_url: &str) -> Value {
        assert!(status_url.starts_with("http://ehr.example/fhir/r4/$export-status/"), "{status_url}");
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let reply = self.send(&self.admin, "GET", status_url).await;
            match reply.status {
                StatusCode::OK => return reply.json(),
                StatusCode::ACCEPTED => assert!(reply.header("x-progress").contains('%')),
                other => panic!("status {other}: {:?}", reply.json()),
            }
            assert!(Instant::now() < deadline, "the export did not finish in 30 s");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Every file of a manifest, its lines parsed, by type.
    async fn files(&self, manifest: &Value) -> BTreeMap<String, Vec<Value>> {
        let mut files = BTreeMap::new();
        for output in manifest["output"].as_array().unwrap() {
            let reply = self.send(&self.admin, "GET", output["url"].as_str().unwrap()).await;
            assert_eq!(reply.status, StatusCode::OK);
            assert_eq!(reply.header("content-type"), "application/fhir+ndjson");
            let lines: Vec<Value> = String::from_utf8(reply.body)
                .unwrap()
                .lines()
                .map(|l| serde_json::from_str(l).unwrap())
                .collect();
            assert_eq!(Some(lines.len() as u64), output["count"].as_u64(), "{output}");
            files.insert(output["type"].as_str().unwrap().to_string(), lines);
        }
        files
    }
}

fn ids(lines: &[Value]) -> HashSet<String> {
    lines.iter().map(|r| r["id"].as_str().unwrap().to_string()).collect()
}

#[tokio::test]
async fn an_administrator_exports_every_patient_as_sealed_ndjson_that_reads_back_audited() {
    let export = Export::new("3600").await;
    let db = &export.db;
    let manifest = export.export("").await;
    assert_eq!(manifest["requiresAccessToken"], true);
    assert_eq!(manifest["request"], "http://ehr.example/fhir/r4/Patient/$export");
    let files = export.files(&manifest).await;

    let patients = db.scalar("SELECT COUNT(*) FROM patient_data WHERE uuid IS NOT NULL").await;
    assert_eq!(files["Patient"].len() as i64, patients);
    let patient_ids = ids(&files["Patient"]);
    for (kind, lines) in &files {
        assert_eq!(ids(lines).len(), lines.len(), "{kind} ids are unique");
        for resource in lines {
            assert_eq!(resource["resourceType"].as_str(), Some(kind.as_str()));
            let subject = resource.get("subject").or(resource.get("patient"));
            if let Some(reference) = subject.and_then(|s| s["reference"].as_str()) {
                let id = reference.strip_prefix("Patient/").unwrap();
                assert!(patient_ids.contains(id), "{kind} names a patient not exported: {reference}");
            }
        }
    }
    let encounters = db.scalar("SELECT COUNT(*) FROM form_encounter WHERE uuid IS NOT NULL").await;
    assert_eq!(files.get("Encounter").map_or(0, Vec::len) as i64, encounters);
    let allergies = db.scalar("SELECT COUNT(*) FROM lists WHERE type = 'allergy' AND uuid IS NOT NULL").await;
    assert_eq!(files.get("AllergyIntolerance").map_or(0, Vec::len) as i64, allergies);

    let audited = "SELECT COUNT(DISTINCT patient_id) FROM log WHERE category = 'FHIR Export' \
                   AND patient_id IS NOT NULL AND user = 'admin'";
    assert_eq!(db.scalar(audited).await, patients);
    let downloads = "SELECT COUNT(*) FROM log WHERE category = 'FHIR Export' AND patient_id IS NULL";
    assert_eq!(db.scalar(downloads).await, files.len() as i64);

    let surname = db.scalar_text("SELECT lname FROM patient_data ORDER BY pid LIMIT 1").await;
    for entry in walkdir(&export.dir) {
        let bytes = std::fs::read(&entry).unwrap();
        let plain = bytes.windows(surname.len()).any(|w| w == surname.as_bytes());
        assert!(!plain, "{} holds a patient's name in the clear", entry.display());
    }
}

fn walkdir(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() { found.extend(walkdir(&path)) } else { found.push(path) }
    }
    found
}

#[tokio::test]
async fn only_administrators_export_and_each_bad_parameter_is_named() {
    let export = Export::new("3600").await;
    let (garcia, _) = tokens(&export.db, GARCIA).await;
    let refused = export.send(&garcia, "GET", "/fhir/r4/Patient/$export").await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert_eq!(refused.json()["resourceType"], "OperationOutcome");
    for (query, parameter) in [
        ("_type=Patient,Practitioner", "_type"),
        ("_since=yesterday", "_since"),
        ("_outputFormat=text/csv", "_outputFormat"),
    ] {
        let reply = export.send(&export.admin, "GET", &format!("/fhir/r4/Patient/$export?{query}")).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{query}");
        assert_eq!(reply.json()["issue"][0]["expression"][0], parameter, "{:?}", reply.json());
    }
    let unknown = "/fhir/r4/Group/6f0c3c8e-0000-4000-8000-000000000000/$export";
    assert_eq!(export.send(&export.admin, "GET", unknown).await.status, StatusCode::NOT_FOUND);
    assert_eq!(export.db.scalar("SELECT COUNT(*) FROM mmt_jobs WHERE kind = 'fhir.export'").await, 0);

    let started = export.send(&export.admin, "GET", "/fhir/r4/Patient/$export?_type=Patient").await;
    let status_url = started.header("content-location").to_string();
    export.manifest(&status_url).await;
    assert_eq!(export.send(&garcia, "GET", &status_url).await.status, StatusCode::FORBIDDEN);
    let file = format!("{}/Patient.ndjson", status_url.replace("$export-status", "$export-file"));
    assert_eq!(export.send(&garcia, "GET", &file).await.status, StatusCode::FORBIDDEN);
    let other = file.replace("Patient.ndjson", "Encounter.ndjson");
    assert_eq!(export.send(&export.admin, "GET", &other).await.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn type_since_and_group_narrow_an_export() {
    let export = Export::new("3600").await;
    let db = &export.db;
    let manifest = export.export("?_type=Patient,Condition").await;
    let kinds: Vec<&str> =
        manifest["output"].as_array().unwrap().iter().map(|o| o["type"].as_str().unwrap()).collect();
    assert!(kinds.iter().all(|k| ["Patient", "Condition"].contains(k)), "{kinds:?}");
    assert!(kinds.contains(&"Patient"));

    let future = export.export("?_type=Patient&_since=2999-01-01T00:00:00Z").await;
    assert_eq!(future["output"].as_array().unwrap().len(), 0, "{future}");

    // The Group OpenEMR's GroupService gives Dr. Garcia once she has an NPI: her patients.
    let garcia = db.scalar("SELECT id FROM users WHERE username = 'drgarcia'").await;
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "UPDATE users SET npi = '1234567893' WHERE id = {garcia} AND (npi IS NULL OR npi = '')"
    )))
    .execute(&db.pool)
    .await
    .unwrap();
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "UPDATE patient_data SET providerID = {garcia} WHERE pid IN (1, 2)"
    )))
    .execute(&db.pool)
    .await
    .unwrap();
    let mine = db.scalar(&format!("SELECT COUNT(*) FROM patient_data WHERE providerID = {garcia}")).await;
    let mapped = "SELECT COUNT(*) FROM uuid_mapping m JOIN uuid_registry r ON r.uuid = m.uuid AND r.mapped = 1 \
                  WHERE m.resource = 'Group' AND m.`table` = 'users'";
    assert_eq!(db.scalar(mapped).await, 0);
    let (listed, again) = (
        export.send(&export.admin, "GET", "/fhir/r4/Group").await.json(),
        export.send(&export.admin, "GET", "/fhir/r4/Group").await.json(),
    );
    assert_eq!(listed["entry"], again["entry"], "a Group keeps its id");
    let users = db.scalar("SELECT COUNT(*) FROM users WHERE uuid IS NOT NULL").await;
    assert_eq!(db.scalar(mapped).await, users, "one Group id per user, as OpenEMR's GroupService maps them");
    let group = listed["entry"]
        .as_array()
        .expect("the provider groups are listed")
        .iter()
        .map(|e| &e["resource"])
        .find(|g| g["name"] == "Elena García Patients")
        .expect("Dr. García has a Group")
        .clone();
    assert_eq!((group["type"].as_str(), group["quantity"].as_i64()), (Some("person"), Some(mine)), "{group}");
    let id = group["id"].as_str().unwrap();
    let read = export.send(&export.admin, "GET", &format!("/fhir/r4/Group/{id}")).await;
    assert_eq!(
        (read.status, read.json()["member"].as_array().map(Vec::len)),
        (StatusCode::OK, Some(mine as usize))
    );
    let (physician, _) = tokens(db, GARCIA).await;
    assert_eq!(export.send(&physician, "GET", "/fhir/r4/Group").await.status, StatusCode::FORBIDDEN);
    let started =
        export.send(&export.admin, "GET", &format!("/fhir/r4/Group/{id}/$export?_type=Patient")).await;
    assert_eq!(started.status, StatusCode::ACCEPTED);
    let manifest = export.manifest(started.header("content-location")).await;
    assert_eq!(export.files(&manifest).await["Patient"].len() as i64, mine);
}

#[tokio::test]
async fn an_expired_export_is_gone_and_housekeeping_removes_its_files() {
    let export = Export::new("2").await;
    let started = export.send(&export.admin, "GET", "/fhir/r4/Patient/$export?_type=Patient").await;
    let status_url = started.header("content-location").to_string();
    export.manifest(&status_url).await;
    tokio::time::sleep(Duration::from_millis(3100)).await;
    let expired = export.send(&export.admin, "GET", &status_url).await;
    assert_eq!(expired.status, StatusCode::GONE, "{:?}", expired.json());
    assert!(!walkdir(&export.dir).is_empty(), "housekeeping has not run yet");
    let settings: Vec<(&str, &str)> = export.env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let removed = fhir_export::remove_expired(&export.db.state_with(&settings)).await.unwrap();
    assert_eq!((removed, walkdir(&export.dir).len()), (1, 0), "housekeeping removes expired files");
}

#[tokio::test]
async fn a_deleted_export_loses_its_files() {
    let export = Export::new("3600").await;
    let started = export.send(&export.admin, "GET", "/fhir/r4/Patient/$export?_type=Patient").await;
    let status_url = started.header("content-location").to_string();
    export.manifest(&status_url).await;
    assert!(!walkdir(&export.dir).is_empty());
    assert_eq!(export.send(&export.admin, "DELETE", &status_url).await.status, StatusCode::ACCEPTED);
    assert!(walkdir(&export.dir).is_empty(), "the files are removed");
    assert_eq!(export.send(&export.admin, "GET", &status_url).await.status, StatusCode::NOT_FOUND);
}
