//! Patient documents in OpenEMR's own store: rows and files as `Document::createDocument` writes
//! them, CryptoGen files PHP can read and PHP-written files the sidecar can read, integrity,
//! category permissions, ranges and OpenEMR's soft delete.

use std::{
    io::Write,
    os::unix::fs::PermissionsExt,
    path::{Path, PathBuf},
    process::{Command, Stdio},
};

use poem::{
    http::{Method, StatusCode},
    test::{TestForm, TestFormField},
};
use serde_json::{Value, json};
use sha3::{Digest, Sha3_512};

use crate::{
    auth::{ADMIN, tokens},
    chart::{FRONT, GARCIA, NURSE, PID, field_errors},
    helpers::{TestDb, repo_path},
};

pub(crate) const MEDICAL_RECORD: i64 = 3;
/// `FHIR Export Document`, guarded by `admin|super`.
pub(crate) const FHIR_EXPORT: i64 = 30;

pub(crate) fn pdf(body: &str) -> Vec<u8> {
    format!("%PDF-1.4\n% {body}\n%%EOF\n").into_bytes()
}

/// A throwaway OpenEMR site folder with its `documents/`.
pub(crate) struct Site(PathBuf);

impl Site {
    fn new() -> Self {
        let dir = std::env::temp_dir().join(format!("mmt-docs-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(dir.join("documents")).unwrap();
        Self(dir.canonicalize().unwrap())
    }

    fn documents(&self) -> PathBuf {
        self.0.join("documents")
    }
}

impl Drop for Site {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub(crate) struct Docs {
    pub(crate) db: TestDb,
    site: Site,
}

pub(crate) struct Reply {
    pub(crate) status: StatusCode,
    pub(crate) headers: poem::http::HeaderMap,
    pub(crate) body: Vec<u8>,
}

impl Reply {
    pub(crate) fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }
}

impl Docs {
    pub(crate) async fn new() -> Self {
        Self { db: TestDb::migrated().await, site: Site::new() }
    }

    pub(crate) async fn token(&self, user: (&str, &str)) -> String {
        tokens(&self.db, user).await.0
    }

    pub(crate) fn env(&self) -> Vec<(&'static str, String)> {
        vec![("OPENEMR_SITE_DIR", self.site.0.to_str().unwrap().to_string())]
    }

    async fn send(
        &self,
        token: &str,
        method: Method,
        path: &str,
        form: Option<TestForm>,
        range: Option<&str>,
    ) -> Reply {
        let env = self.env();
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let client = self.db.client_with(&env);
        let mut req = client.request(method, path).header("authorization", format!("Bearer {token}"));
        if let Some(form) = form {
            req = req.multipart(form);
        }
        if let Some(range) = range {
            req = req.header("range", range);
        }
        let resp = req.send().await;
        let status = resp.0.status();
        let headers = resp.0.headers().clone();
        let body = resp.0.into_body().into_vec().await.unwrap();
        Reply { status, headers, body }
    }

    async fn upload(
        &self,
        token: &str,
        category: i64,
        name: &str,
        content_type: &str,
        bytes: Vec<u8>,
    ) -> Reply {
        let form = TestForm::new()
            .text("category", category.to_string())
            .field(TestFormField::bytes(bytes).name("file").filename(name).content_type(content_type));
        self.send(token, Method::POST, &format!("/api/patients/{PID}/documents/"), Some(form), None).await
    }

    pub(crate) async fn uploaded(&self, token: &str, category: i64, name: &str, bytes: Vec<u8>) -> i64 {
        let reply = self.upload(token, category, name, "application/pdf", bytes).await;
        assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.json());
        reply.json()["id"].as_i64().unwrap()
    }

    async fn get(&self, token: &str, path: &str) -> Reply {
        self.send(token, Method::GET, path, None, None).await
    }

    async fn json(&self, token: &str, method: Method, path: &str, body: Value) -> Reply {
        let env = self.env();
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let client = self.db.client_with(&env);
        let resp = client
            .request(method, path)
            .header("authorization", format!("Bearer {token}"))
            .body_json(&body)
            .send()
            .await;
        let status = resp.0.status();
        let headers = resp.0.headers().clone();
        let body = resp.0.into_body().into_vec().await.unwrap();
        Reply { status, headers, body }
    }

    async fn key(&self, name: &str) -> String {
        sqlx::query_scalar("SELECT value FROM `keys` WHERE name = ?")
            .bind(name)
            .fetch_one(&self.db.pool)
            .await
            .unwrap()
    }

    pub(crate) async fn text(&self, sql: &str) -> Vec<Option<String>> {
        use sqlx::Row;
        let row = sqlx::query(sqlx::AssertSqlSafe(sql.to_string())).fetch_one(&self.db.pool).await.unwrap();
        (0..row.len()).map(|i| row.try_get::<Option<String>, _>(i).unwrap()).collect()
    }

    async fn file_of(&self, id: i64) -> PathBuf {
        let url = self.text(&format!("SELECT url FROM documents WHERE id = {id}")).await.remove(0).unwrap();
        PathBuf::from(url.strip_prefix("file://").unwrap())
    }
}

/// Has PHP encrypt or decrypt `input` into `output` exactly as OpenEMR's CryptoGen does for files.
fn php_crypto(mode: &str, key_a: &str, key_b: &str, input: &Path, output: &Path) {
    let request = json!({"mode": mode, "key_a": key_a, "key_b": key_b, "in": input, "out": output});
    let mut php = Command::new("php")
        .arg(repo_path("tests/php/document_crypto.php"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("php is required (Debian php-cli; scripts/test.sh installs it)");
    php.stdin.take().unwrap().write_all(request.to_string().as_bytes()).unwrap();
    let out = php.wait_with_output().unwrap();
    let said = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success() && said.is_empty(), "php: {said}");
}

fn sha3_hex(bytes: &[u8]) -> String {
    hex::encode(Sha3_512::digest(bytes))
}

/// `createDocument` for the same upload: GenID id, uuid and drive uuid registered, the file named
/// by the drive uuid under `<site>/documents/<pid>/` (0600 in a 0700 folder), encrypted, hashed.
#[tokio::test]
async fn an_upload_is_the_row_and_file_openemr_writes() {
    let docs = Docs::new().await;
    let token = docs.token(GARCIA).await;
    let bytes = pdf("lab results, glucose 5.4 mmol/L");
    let reply =
        docs.upload(&token, MEDICAL_RECORD, "Lab report (June).pdf", "application/pdf", bytes.clone()).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.json());
    let out = reply.json();
    let id = out["id"].as_i64().unwrap();
    assert_eq!(reply.headers["location"], format!("/api/documents/{id}/").as_str());
    assert_eq!(docs.db.scalar("SELECT CAST(id AS SIGNED) FROM sequences").await, id, "the id is GenID's");
    assert_eq!(out["categories"], json!([{"id": MEDICAL_RECORD, "path": "Categories/Medical Record"}]));

    // Columns: type size mimetype owner foreign_id docdate hash list_id name storagemethod path_depth
    // encounter_id encrypted deleted date_expires thumb_url couch_docid revision-set date-is-now,
    // the uuid's and drive uuid's registry rows, url = file://<site>/documents/<pid>/<drive uuid>.
    let got = docs
        .text(&format!(
            "SELECT type, CAST(size AS CHAR), mimetype, CAST(owner AS CHAR), CAST(foreign_id AS CHAR), \
             CAST(docdate = CURDATE() AS CHAR), hash, CAST(list_id AS CHAR), name, CAST(storagemethod AS CHAR), \
             CAST(path_depth AS CHAR), CAST(encounter_id AS CHAR), CAST(encrypted AS CHAR), CAST(deleted AS CHAR), \
             CAST(date_expires AS CHAR), thumb_url, couch_docid, CAST(revision > '2000-01-01' AS CHAR), \
             CAST(ABS(TIMESTAMPDIFF(SECOND, date, NOW())) < 120 AS CHAR), \
             (SELECT CONCAT(table_name, '/', table_id, '/', document_drive) FROM uuid_registry r WHERE r.uuid = d.uuid), \
             (SELECT CONCAT('[', table_name, ']/', document_drive) FROM uuid_registry r WHERE r.uuid = d.drive_uuid), \
             CAST(url = CONCAT('file://{documents}/{PID}/', \
               LOWER(INSERT(INSERT(INSERT(INSERT(HEX(drive_uuid), 21, 0, '-'), 17, 0, '-'), 13, 0, '-'), 9, 0, '-'))) AS CHAR), \
             (SELECT GROUP_CONCAT(category_id) FROM categories_to_documents WHERE document_id = d.id) \
             FROM documents d WHERE id = {id}",
            documents = docs.site.documents().display()
        ))
        .await;
    let garcia = docs.db.scalar("SELECT id FROM users WHERE username = 'drgarcia'").await.to_string();
    let want: Vec<Option<String>> = [
        Some("file_url"),
        Some(&*bytes.len().to_string()),
        Some("application/pdf"),
        Some(&*garcia),
        Some(&*PID.to_string()),
        Some("1"),
        Some(&*sha3_hex(&bytes)),
        Some("0"),
        Some("Lab report (June).pdf"),
        Some("0"),
        Some("1"),
        Some("0"),
        Some("1"),
        Some("0"),
        None,
        None,
        None,
        Some("1"),
        Some("1"),
        Some("documents/id/0"),
        Some("[]/1"),
        Some("1"),
        Some("3"),
    ]
    .iter()
    .map(|v| v.map(str::to_string))
    .collect();
    assert_eq!(got, want);

    let path = docs.file_of(id).await;
    let stored = std::fs::read(&path).unwrap();
    assert!(stored.starts_with(b"007"), "CryptoGen version 007");
    assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
    assert_eq!(std::fs::metadata(path.parent().unwrap()).unwrap().permissions().mode() & 0o777, 0o700);
    let leftovers: Vec<_> =
        std::fs::read_dir(path.parent().unwrap()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(leftovers.len(), 1, "no temporary file is left: {leftovers:?}");

    // The keys were created as CryptoGen::createDatabaseKey creates them: base64 of 32 bytes.
    for name in ["sevena", "sevenb"] {
        let key = docs.key(name).await;
        assert_eq!(base64_len(&key), 32, "{name}");
    }
    let audited = docs
        .db
        .scalar(&format!(
            "SELECT COUNT(*) FROM log WHERE event = 'other-insert' AND patient_id = {PID} AND user = 'drgarcia'"
        ))
        .await;
    assert_eq!(audited, 1, "the upload is audited");

    let back = docs.get(&token, &format!("/api/documents/{id}/content")).await;
    assert_eq!(back.status, StatusCode::OK);
    assert_eq!(back.body, bytes);
    assert_eq!(back.headers["content-type"], "application/pdf");
    assert_eq!(
        back.headers["content-disposition"],
        "attachment; filename=\"Lab report (June).pdf\"; filename*=UTF-8''Lab%20report%20%28June%29.pdf"
    );
}

fn base64_len(value: &str) -> usize {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.decode(value).unwrap().len()
}

/// Both directions of interop: PHP's OpenSSL decrypts the sidecar's file, and the sidecar serves
/// a file PHP encrypted with the same database keys (registered as OpenEMR would register it).
#[tokio::test]
async fn php_reads_the_sidecars_files_and_the_sidecar_reads_phps() {
    let docs = Docs::new().await;
    let token = docs.token(GARCIA).await;
    let bytes: Vec<u8> = pdf("x").into_iter().chain((0..70_000u32).map(|i| (i * 7 % 256) as u8)).collect();
    let id = docs.uploaded(&token, MEDICAL_RECORD, "scan.pdf", bytes.clone()).await;
    let (a, b) = (docs.key("sevena").await, docs.key("sevenb").await);
    let plain = docs.site.0.join("php-plain");
    php_crypto("decrypt", &a, &b, &docs.file_of(id).await, &plain);
    assert_eq!(std::fs::read(&plain).unwrap(), bytes, "PHP decrypts the sidecar's file");

    let theirs = pdf("written by OpenEMR");
    std::fs::write(&plain, &theirs).unwrap();
    let drive = uuid::Uuid::new_v4();
    let dir = docs.site.documents().join(PID.to_string());
    php_crypto("encrypt", &a, &b, &plain, &dir.join(drive.to_string()));
    sqlx::query(
        "INSERT INTO documents (id, uuid, type, size, date, url, mimetype, owner, revision, foreign_id, docdate, hash, \
         list_id, name, drive_uuid, storagemethod, path_depth, encounter_id, encrypted, deleted) \
         VALUES (9000, ?, 'file_url', ?, NOW(), ?, 'application/pdf', 1, NOW(), ?, CURDATE(), ?, 0, 'theirs.pdf', ?, 0, 1, 0, 1, 0)",
    )
    .bind(&uuid::Uuid::new_v4().as_bytes()[..])
    .bind(theirs.len() as i64)
    // The absolute path of another host: readers rebuild it from the site folder.
    .bind(format!("file:///var/www/openemr/sites/default/documents/{PID}/{drive}"))
    .bind(PID)
    .bind(sha3_hex(&theirs))
    .bind(&drive.as_bytes()[..])
    .execute(&docs.db.pool)
    .await
    .unwrap();
    sqlx::query("INSERT INTO categories_to_documents (category_id, document_id) VALUES (3, 9000)")
        .execute(&docs.db.pool)
        .await
        .unwrap();
    let back = docs.get(&token, "/api/documents/9000/content").await;
    assert_eq!(back.status, StatusCode::OK, "{}", back.json());
    assert_eq!(back.body, theirs, "the sidecar decrypts PHP's file");
}

#[tokio::test]
async fn a_tampered_file_is_refused_and_audited_never_served() {
    let docs = Docs::new().await;
    let token = docs.token(GARCIA).await;
    let id = docs.uploaded(&token, MEDICAL_RECORD, "a.pdf", pdf("tamper me")).await;
    let path = docs.file_of(id).await;
    let mut stored = std::fs::read(&path).unwrap();
    let at = stored.len() - 10;
    stored[at] = if stored[at] == b'A' { b'B' } else { b'A' };
    std::fs::write(&path, stored).unwrap();

    let back = docs.get(&token, &format!("/api/documents/{id}/content")).await;
    assert_eq!(back.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(back.headers["content-type"], "application/problem+json");
    assert!(back.json()["detail"].as_str().unwrap().contains("integrity"), "{}", back.json());
    let refused = docs
        .db
        .scalar(&format!(
            "SELECT COUNT(*) FROM log WHERE event = 'other-select' AND success = 0 AND patient_id = {PID} \
             AND user = 'drgarcia'"
        ))
        .await;
    assert_eq!(refused, 1, "the refusal is audited");
}

#[tokio::test]
async fn a_category_permission_is_checked_on_top_of_patients_docs() {
    let docs = Docs::new().await;
    let (garcia, admin) = (docs.token(GARCIA).await, docs.token(ADMIN).await);
    let refused = docs.upload(&garcia, FHIR_EXPORT, "export.pdf", "application/pdf", pdf("fhir")).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "{}", refused.json());
    assert_eq!(docs.db.scalar("SELECT COUNT(*) FROM documents").await, 0);

    let hidden = docs.uploaded(&admin, FHIR_EXPORT, "export.pdf", pdf("fhir")).await;
    let shown = docs.uploaded(&garcia, MEDICAL_RECORD, "visit.pdf", pdf("visit")).await;
    for path in [format!("/api/documents/{hidden}/"), format!("/api/documents/{hidden}/content")] {
        let reply = docs.get(&garcia, &path).await;
        assert_eq!(reply.status, StatusCode::FORBIDDEN, "{path}: {}", reply.json());
    }
    let list = docs.get(&garcia, &format!("/api/patients/{PID}/documents/")).await;
    assert_eq!(list.status, StatusCode::OK);
    let ids: Vec<i64> =
        list.json()["items"].as_array().unwrap().iter().map(|d| d["id"].as_i64().unwrap()).collect();
    assert_eq!(ids, [shown], "documents in a category the user may not see are left out");
    let all = docs.get(&admin, &format!("/api/patients/{PID}/documents/")).await;
    assert_eq!(all.json()["items"].as_array().unwrap().len(), 2);
    let filtered = docs.get(&admin, &format!("/api/patients/{PID}/documents/?category={FHIR_EXPORT}")).await;
    assert_eq!(filtered.json()["items"][0]["id"], hidden);

    let front = docs.token(FRONT).await;
    let reply = docs.upload(&front, MEDICAL_RECORD, "x.pdf", "application/pdf", pdf("x")).await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN, "front office lacks patients|docs");
}

#[tokio::test]
async fn ranges_are_served_from_the_decrypted_bytes() {
    let docs = Docs::new().await;
    let token = docs.token(NURSE).await;
    let bytes = b"0123456789abcdefghij".to_vec();
    let reply = docs.upload(&token, MEDICAL_RECORD, "notes.txt", "text/plain", bytes.clone()).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.json());
    let path = format!("/api/documents/{}/content", reply.json()["id"]);
    let part = docs.send(&token, Method::GET, &path, None, Some("bytes=2-5")).await;
    assert_eq!(part.status, StatusCode::PARTIAL_CONTENT);
    assert_eq!(part.body, b"2345");
    assert_eq!(part.headers["content-range"], "bytes 2-5/20");
    assert_eq!(part.headers["content-type"], "text/plain");
    let tail = docs.send(&token, Method::GET, &path, None, Some("bytes=-3")).await;
    assert_eq!((tail.status, tail.body), (StatusCode::PARTIAL_CONTENT, b"hij".to_vec()));
    let outside = docs.send(&token, Method::GET, &path, None, Some("bytes=20-")).await;
    assert_eq!(outside.status, StatusCode::RANGE_NOT_SATISFIABLE);
    assert_eq!(outside.headers["content-range"], "bytes */20");
}

#[tokio::test]
async fn empty_files_and_types_off_the_allow_list_are_refused() {
    let docs = Docs::new().await;
    let token = docs.token(GARCIA).await;
    let empty = docs.upload(&token, MEDICAL_RECORD, "empty.pdf", "application/pdf", Vec::new()).await;
    assert_eq!(empty.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", empty.json());
    assert_eq!(field_errors(&empty.json()), ["file"]);
    let exe = docs
        .upload(&token, MEDICAL_RECORD, "setup.pdf", "application/pdf", b"MZ\x90\x00\x03\x00".to_vec())
        .await;
    assert_eq!(exe.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", exe.json());
    assert!(
        exe.json()["errors"][0]["message"].as_str().unwrap().contains("may not be uploaded"),
        "{}",
        exe.json()
    );
    let nowhere = docs.upload(&token, 999, "a.pdf", "application/pdf", pdf("a")).await;
    assert_eq!(field_errors(&nowhere.json()), ["category"]);
    assert_eq!(docs.db.scalar("SELECT COUNT(*) FROM documents").await, 0);
    let dir = docs.site.documents().join(PID.to_string());
    assert_eq!(std::fs::read_dir(dir).unwrap().count(), 0, "refused uploads leave no file");
}

async fn round_trip(megabytes: u32) {
    let docs = Docs::new().await;
    let token = docs.token(GARCIA).await;
    let mut bytes = pdf("big");
    bytes.extend((0..megabytes * 1024 * 1024).map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8));
    let id = docs.uploaded(&token, MEDICAL_RECORD, "big.pdf", bytes.clone()).await;
    let back = docs.get(&token, &format!("/api/documents/{id}/content")).await;
    assert_eq!(back.status, StatusCode::OK);
    assert!(back.body == bytes, "the same bytes come back");
}

/// A multi-megabyte file streams to disk in 64 KiB pieces and comes back byte for byte.
#[tokio::test]
async fn a_large_upload_streams_and_round_trips() {
    round_trip(4).await;
}

/// The issue's 20 MB case. A debug build spends a core on it for many seconds, which starves
/// timing-sensitive tests running beside it, so it runs on request.
#[tokio::test]
#[ignore = "CPU-heavy in debug builds: run with --ignored"]
async fn a_twenty_megabyte_upload_round_trips() {
    round_trip(20).await;
}

/// `deleter.php`: `patients|docs_rm` only; the row is marked deleted and unfiled, the file stays.
#[tokio::test]
async fn delete_is_openemrs_soft_delete_and_needs_docs_rm() {
    let docs = Docs::new().await;
    let (nurse, admin) = (docs.token(NURSE).await, docs.token(ADMIN).await);
    let id = docs.uploaded(&nurse, MEDICAL_RECORD, "a.pdf", pdf("delete me")).await;
    let path = format!("/api/documents/{id}/");
    let denied = docs.send(&nurse, Method::DELETE, &path, None, None).await;
    assert_eq!(denied.status, StatusCode::FORBIDDEN);
    let done = docs.send(&admin, Method::DELETE, &path, None, None).await;
    assert_eq!(done.status, StatusCode::NO_CONTENT);
    let state = docs
        .text(&format!(
            "SELECT CAST(deleted AS CHAR), \
             CAST((SELECT COUNT(*) FROM categories_to_documents WHERE document_id = {id}) AS CHAR) \
             FROM documents WHERE id = {id}"
        ))
        .await;
    assert_eq!(state, [Some("1".to_string()), Some("0".to_string())]);
    assert!(docs.file_of(id).await.exists(), "the file stays on disk, as in OpenEMR");
    assert_eq!(docs.get(&admin, &path).await.status, StatusCode::NOT_FOUND);
    let audited =
        docs.db.scalar("SELECT COUNT(*) FROM log WHERE event = 'other-update' AND user = 'admin'").await;
    assert_eq!(audited, 1);
}

#[tokio::test]
async fn categories_come_as_openemrs_tree() {
    let docs = Docs::new().await;
    let token = docs.token(NURSE).await;
    let reply = docs.get(&token, "/api/documents/categories/").await;
    assert_eq!(reply.status, StatusCode::OK);
    let tree = reply.json();
    assert_eq!(tree["items"].as_array().unwrap().len(), 1);
    let root = &tree["items"][0];
    assert_eq!(root["name"], "Categories");
    let directive = root["children"].as_array().unwrap().iter().find(|c| c["id"] == 6).unwrap();
    assert_eq!(directive["codes"], "LOINC:42348-3");
    let names: Vec<&str> =
        directive["children"].as_array().unwrap().iter().map(|c| c["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["Do Not Resuscitate Order", "Durable Power of Attorney", "Living Will"]);
}

/// A document tagged to a high-sensitivity encounter needs `sensitivities|high` too.
#[tokio::test]
async fn a_document_tagged_to_a_sensitive_encounter_needs_that_sensitivity() {
    let docs = Docs::new().await;
    let (garcia, nurse) = (docs.token(GARCIA).await, docs.token(NURSE).await);
    let encounter =
        docs.db.scalar(&format!("SELECT MIN(encounter) FROM form_encounter WHERE pid = {PID}")).await;
    sqlx::query("UPDATE form_encounter SET sensitivity = 'high' WHERE encounter = ?")
        .bind(encounter)
        .execute(&docs.db.pool)
        .await
        .unwrap();
    let form = TestForm::new()
        .text("category", MEDICAL_RECORD.to_string())
        .text("encounter", encounter.to_string())
        .field(
            TestFormField::bytes(pdf("sensitive"))
                .name("file")
                .filename("s.pdf")
                .content_type("application/pdf"),
        );
    let reply =
        docs.send(&garcia, Method::POST, &format!("/api/patients/{PID}/documents/"), Some(form), None).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.json());
    assert_eq!(reply.json()["encounter"], encounter);
    let id = reply.json()["id"].as_i64().unwrap();

    let refused = docs.get(&nurse, &format!("/api/documents/{id}/content")).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "{}", refused.json());
    let list = docs.get(&nurse, &format!("/api/patients/{PID}/documents/?encounter={encounter}")).await;
    assert_eq!(list.json()["items"], json!([]));
    let list = docs.get(&garcia, &format!("/api/patients/{PID}/documents/?encounter={encounter}")).await;
    assert_eq!(list.json()["items"][0]["id"], id);

    let elsewhere = TestForm::new()
        .text("category", MEDICAL_RECORD.to_string())
        .text("encounter", "999999")
        .field(TestFormField::bytes(pdf("x")).name("file").filename("x.pdf").content_type("application/pdf"));
    let bad = docs
        .send(&garcia, Method::POST, &format!("/api/patients/{PID}/documents/"), Some(elsewhere), None)
        .await;
    assert_eq!(field_errors(&bad.json()), ["encounter"]);
}

#[tokio::test]
async fn check_reports_the_document_folder_and_the_keys() {
    let docs = Docs::new().await;
    let out = Command::new(crate::helpers::binary())
        .arg("check")
        .env_clear()
        .envs(docs.db.env())
        .envs(docs.env())
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&out.stdout);
    let line = format!(
        "documents: {} reachable and writable; encryption keys: absent",
        docs.site.documents().display()
    );
    assert!(report.contains(&line), "{report}");
    let token = docs.token(GARCIA).await;
    docs.uploaded(&token, MEDICAL_RECORD, "a.pdf", pdf("a")).await;
    let out = Command::new(crate::helpers::binary())
        .arg("check")
        .env_clear()
        .envs(docs.db.env())
        .envs(docs.env())
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("encryption keys: present"));
}

/// A preview link needs no token, acts as its maker only, and stops with expiry or a new password.
#[tokio::test]
async fn a_preview_link_works_briefly_and_only_as_its_maker() {
    let docs = Docs::new().await;
    let token = docs.token(GARCIA).await;
    let bytes = pdf("preview me");
    let id = docs.uploaded(&token, MEDICAL_RECORD, "p.pdf", bytes.clone()).await;
    let made = docs.send(&token, Method::POST, &format!("/api/documents/{id}/view/"), None, None).await;
    assert_eq!(made.status, StatusCode::CREATED, "{}", made.json());
    let url = made.json()["url"].as_str().unwrap().to_string();
    assert!(made.json()["expires_at"].as_str().is_some());

    let env = docs.env();
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let open = |range: Option<&'static str>| {
        let client = docs.db.client_with(&env);
        let url = url.clone();
        async move {
            let mut req = client.get(&url);
            if let Some(range) = range {
                req = req.header("range", range);
            }
            let resp = req.send().await;
            let status = resp.0.status();
            let disposition = resp.0.headers().get("content-disposition").cloned();
            (status, disposition, resp.0.into_body().into_vec().await.unwrap())
        }
    };
    let (status, disposition, body) = open(None).await;
    assert_eq!((status, body), (StatusCode::OK, bytes.clone()));
    assert!(disposition.unwrap().to_str().unwrap().starts_with("inline;"));
    let (status, _, body) = open(Some("bytes=0-3")).await;
    assert_eq!((status, body), (StatusCode::PARTIAL_CONTENT, b"%PDF".to_vec()));
    let dir = docs.site.documents().join(PID.to_string());
    assert_eq!(std::fs::read_dir(dir).unwrap().count(), 1, "no decrypted copy is written");
    let viewed =
        docs.db.scalar("SELECT COUNT(*) FROM log WHERE event = 'other-select' AND user = 'drgarcia'").await;
    assert!(viewed >= 3, "making and using the link are audited as the maker");

    sqlx::query("UPDATE users_secure SET password = CONCAT(password, 'x') WHERE username = 'drgarcia'")
        .execute(&docs.db.pool)
        .await
        .unwrap();
    assert_eq!(open(None).await.0, StatusCode::NOT_FOUND, "a new password ends the link");
    sqlx::query(
        "UPDATE users_secure SET password = LEFT(password, LENGTH(password) - 1) WHERE username = 'drgarcia'",
    )
    .execute(&docs.db.pool)
    .await
    .unwrap();
    assert_eq!(open(None).await.0, StatusCode::OK);
    sqlx::query("UPDATE mmt_document_views SET expires_at = UTC_TIMESTAMP() - INTERVAL 1 SECOND")
        .execute(&docs.db.pool)
        .await
        .unwrap();
    assert_eq!(open(None).await.0, StatusCode::NOT_FOUND, "an expired link is gone");

    let nurse = docs.token(NURSE).await;
    let hidden = docs.uploaded(&docs.token(ADMIN).await, FHIR_EXPORT, "f.pdf", pdf("f")).await;
    let refused =
        docs.send(&nurse, Method::POST, &format!("/api/documents/{hidden}/view/"), None, None).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "no link to what the caller may not open");
}

/// A one-page PDF whose text layer says `text` in 36 pt Helvetica.
fn text_pdf(text: &str) -> Vec<u8> {
    let stream = format!("BT /F1 36 Tf 72 650 Td ({text}) Tj ET");
    let objects = [
        "<< /Type /Catalog /Pages 2 0 R >>".to_string(),
        "<< /Type /Pages /Kids [3 0 R] /Count 1 >>".to_string(),
        "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R /Resources << /Font << /F1 5 0 R >> >> >>"
            .to_string(),
        format!("<< /Length {} >>\nstream\n{stream}\nendstream", stream.len()),
        "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>".to_string(),
    ];
    assemble_pdf(objects.map(String::into_bytes).to_vec())
}

/// A PDF file of these objects (numbered from 1, the first the catalog), with its xref table.
fn assemble_pdf(objects: Vec<Vec<u8>>) -> Vec<u8> {
    let mut out = b"%PDF-1.4\n".to_vec();
    let mut offsets = Vec::new();
    for (i, body) in objects.iter().enumerate() {
        offsets.push(out.len());
        out.extend(format!("{} 0 obj\n", i + 1).into_bytes());
        out.extend(body);
        out.extend(b"\nendobj\n");
    }
    let xref = out.len();
    out.extend(format!("xref\n0 {}\n0000000000 65535 f \n", objects.len() + 1).into_bytes());
    for offset in offsets {
        out.extend(format!("{offset:010} 00000 n \n").into_bytes());
    }
    out.extend(
        format!("trailer\n<< /Size {} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n", objects.len() + 1)
            .into_bytes(),
    );
    out
}

/// The PDF's page rendered gray by pdftoppm at `dpi`, as `png` or else as a binary PGM.
fn rasterise(pdf: &[u8], dpi: u32, png: bool) -> Vec<u8> {
    let site = Site::new();
    let input = site.0.join("in.pdf");
    std::fs::write(&input, pdf).unwrap();
    let stem = site.0.join("scan");
    let format: &[&str] = if png { &["-png"] } else { &[] };
    let status = Command::new("pdftoppm")
        .args(["-r", &dpi.to_string(), "-gray", "-singlefile"])
        .args(format)
        .arg(&input)
        .arg(&stem)
        .status()
        .expect("pdftoppm (poppler-utils) is required");
    assert!(status.success());
    std::fs::read(stem.with_extension(if png { "png" } else { "pgm" })).unwrap()
}

/// The page as a scanner would deliver it: pixels only, no text layer.
fn scanned(pdf: &[u8]) -> Vec<u8> {
    rasterise(pdf, 150, true)
}

/// Queues text extraction and runs it on a worker; returns the extracted pages.
async fn extracted(docs: &Docs, token: &str, id: i64) -> Value {
    use mmt_sidecar::service::jobs::Workers;
    let queued = docs.send(token, Method::POST, &format!("/api/documents/{id}/ocr/"), None, None).await;
    assert_eq!(queued.status, StatusCode::ACCEPTED, "{}", queued.json());
    let job = queued.json()["job_id"].as_str().unwrap().to_string();
    let env = docs.env();
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let workers = Workers::new(docs.db.state_with(&env)).spawn(1);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(90);
    let finished = loop {
        let state = docs.get(token, &format!("/api/jobs/{job}/")).await.json();
        if ["succeeded", "failed", "cancelled"].contains(&state["state"].as_str().unwrap_or_default()) {
            break state;
        }
        assert!(std::time::Instant::now() < deadline, "the job did not finish: {state}");
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    };
    workers.shutdown(std::time::Duration::from_secs(5)).await;
    assert_eq!(finished["state"], "succeeded", "{finished}");
    assert_eq!(finished["progress_message"], "page 1 of 1", "{finished}");
    let told = docs.get(token, "/api/notifications/").await.json();
    let told = &told["items"][0];
    assert_eq!(
        (told["kind"].as_str(), told["subject"].as_str()),
        (Some("document.text_ready"), Some("document"))
    );
    assert_eq!(told["subject_id"], id.to_string(), "the one who asked hears the text is ready");
    let text = docs.get(token, &format!("/api/documents/{id}/ocr/")).await;
    assert_eq!(text.status, StatusCode::OK);
    text.json()["pages"].clone()
}

#[tokio::test]
async fn a_pdfs_text_layer_is_taken_as_it_is() {
    let docs = Docs::new().await;
    let token = docs.token(GARCIA).await;
    let id = docs.uploaded(&token, MEDICAL_RECORD, "lab.pdf", text_pdf("GLUCOSE 5.4 NORMAL")).await;
    let pages = extracted(&docs, &token, id).await;
    assert_eq!(pages[0]["method"], "text", "{pages}");
    assert!(pages[0]["text"].as_str().unwrap().contains("GLUCOSE 5.4 NORMAL"), "{pages}");
    assert!(pages[0].get("confidence").is_none());

    let other = docs.uploaded(&token, MEDICAL_RECORD, "other.pdf", pdf("no text extracted")).await;
    let found = |q: &'static str| {
        let (docs, token) = (&docs, &token);
        async move {
            let reply = docs.get(token, &format!("/api/patients/{PID}/documents/?q={q}")).await;
            assert_eq!(reply.status, StatusCode::OK, "{}", reply.json());
            reply.json()["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|d| d["id"].as_i64().unwrap())
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(found("glucose%205.4").await, [id], "the patient's documents are searchable by their text");
    assert_eq!(found("NORMAL%20gluco").await, [id], "words in any order, a beginning of one, any case");
    assert_eq!(found("cholesterol").await, Vec::<i64>::new());
    assert_eq!(found("glu").await, Vec::<i64>::new(), "beginnings shorter than four letters are not indexed");
    let stored: Vec<u8> = sqlx::query_scalar("SELECT content FROM mmt_document_text WHERE document_id = ?")
        .bind(id)
        .fetch_one(&docs.db.pool)
        .await
        .unwrap();
    assert!(!stored.windows(7).any(|w| w == b"GLUCOSE"), "the extracted text is sealed at rest");
    assert_ne!(id, other);
}

/// A scanned page (the known text rendered to pixels) is read back by Tesseract.
#[tokio::test]
async fn a_scanned_page_is_read_by_tesseract() {
    let docs = Docs::new().await;
    let token = docs.token(GARCIA).await;
    let png = scanned(&text_pdf("GLUCOSE RESULT NORMAL"));
    let reply = docs.upload(&token, MEDICAL_RECORD, "scan.png", "image/png", png).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.json());
    let id = reply.json()["id"].as_i64().unwrap();
    let pages = extracted(&docs, &token, id).await;
    assert_eq!(pages[0]["method"], "ocr", "{pages}");
    assert!(pages[0]["text"].as_str().unwrap().contains("GLUCOSE RESULT NORMAL"), "{pages}");
    assert!(pages[0]["confidence"].as_f64().unwrap() > 60.0, "{pages}");
}

/// A PDF of scanned pages, as a scanner writes one: each page only an image (8-bit gray, raw),
/// each saying `"{text} {n}"`, with no text layer.
fn scanned_pdf(text: &str, pages: usize) -> Vec<u8> {
    let images = (1..=pages).map(|n| pgm(&rasterise(&text_pdf(&format!("{text} {n}")), 100, false)));
    let mut objects = vec![
        "<< /Type /Catalog /Pages 2 0 R >>".to_string().into_bytes(),
        format!(
            "<< /Type /Pages /Kids [{}] /Count {pages} >>",
            (0..pages).map(|i| format!("{} 0 R", 3 + 3 * i)).collect::<Vec<_>>().join(" ")
        )
        .into_bytes(),
    ];
    for (i, (w, h, pixels)) in images.enumerate() {
        let (content, image) = (4 + 3 * i, 5 + 3 * i);
        objects.push(
            format!(
                "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents {content} 0 R \
                 /Resources << /XObject << /Im0 {image} 0 R >> >> >>"
            )
            .into_bytes(),
        );
        let draw = "q 612 0 0 792 0 0 cm /Im0 Do Q";
        objects.push(format!("<< /Length {} >>\nstream\n{draw}\nendstream", draw.len()).into_bytes());
        let mut xobject = format!(
            "<< /Type /XObject /Subtype /Image /Width {w} /Height {h} /ColorSpace /DeviceGray \
             /BitsPerComponent 8 /Length {} >>\nstream\n",
            pixels.len()
        )
        .into_bytes();
        xobject.extend(pixels);
        xobject.extend(b"\nendstream");
        objects.push(xobject);
    }
    assemble_pdf(objects)
}

/// Width, height and the raw pixels of a binary PGM (`P5`, 8-bit), as pdftoppm writes it.
fn pgm(bytes: &[u8]) -> (usize, usize, Vec<u8>) {
    let mut fields = Vec::new();
    let mut at = 0;
    while fields.len() < 4 {
        while bytes[at].is_ascii_whitespace() {
            at += 1;
        }
        let start = at;
        while !bytes[at].is_ascii_whitespace() {
            at += 1;
        }
        fields.push(String::from_utf8_lossy(&bytes[start..at]).to_string());
    }
    assert_eq!((fields[0].as_str(), fields[3].as_str()), ("P5", "255"));
    let (w, h): (usize, usize) = (fields[1].parse().unwrap(), fields[2].parse().unwrap());
    (w, h, bytes[at + 1..at + 1 + w * h].to_vec())
}

/// The job's progress reaches the user who asked, live and in page order; the pages come back
/// read by Tesseract.
#[tokio::test]
async fn ocr_progress_arrives_live_page_by_page_in_order() {
    use futures_util::StreamExt;
    use mmt_sidecar::service::jobs::Workers;
    let docs = Docs::new().await;
    let token = docs.token(GARCIA).await;
    let id = docs.uploaded(&token, MEDICAL_RECORD, "scan.pdf", scanned_pdf("POTASSIUM RESULT", 3)).await;
    let env = docs.env();
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let state = docs.db.state_with(&env);
    let server = crate::helpers::RunningServer::start(state.clone()).await;
    let events = reqwest::Client::new()
        .get(server.url("/api/events/?topics=job"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(events.status(), 200);
    let queued = docs.send(&token, Method::POST, &format!("/api/documents/{id}/ocr/"), None, None).await;
    assert_eq!(queued.status, StatusCode::ACCEPTED, "{}", queued.json());
    let workers = Workers::new(state).spawn(1);
    let mut stream = events.bytes_stream();
    let mut seen = Vec::new();
    let mut text = String::new();
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(120);
    while !seen.iter().any(|m: &String| m == "page 3 of 3") {
        let chunk =
            tokio::time::timeout_at(deadline, stream.next()).await.expect("progress within 2 minutes");
        text.push_str(&String::from_utf8_lossy(&chunk.unwrap().unwrap()));
        while let Some(end) = text.find("\n\n") {
            let frame: String = text.drain(..end + 2).collect();
            if let Some(data) = frame.lines().find_map(|l| l.strip_prefix("data:")) {
                let event: Value = serde_json::from_str(data.trim()).unwrap();
                if event["kind"] == "job.progress"
                    && let Some(message) = event["data"]["message"].as_str()
                {
                    seen.push(message.to_string());
                }
            }
        }
    }
    workers.shutdown(std::time::Duration::from_secs(5)).await;
    let pages: Vec<&String> = seen.iter().filter(|m| m.starts_with("page ")).collect();
    assert_eq!(pages, ["page 1 of 3", "page 2 of 3", "page 3 of 3"], "{seen:?}");
    let read = docs.get(&token, &format!("/api/documents/{id}/ocr/")).await.json();
    for n in 1..=3 {
        let page = &read["pages"][n - 1];
        assert_eq!((page["page"].as_u64(), page["method"].as_str()), (Some(n as u64), Some("ocr")), "{read}");
        assert!(page["text"].as_str().unwrap().contains(&format!("POTASSIUM RESULT {n}")), "{read}");
    }
}

/// A worker that dies mid-OCR (its Tesseract killed with it) leaves the job to another, which
/// finishes it once the first one's lease lapses.
#[tokio::test]
async fn a_worker_killed_mid_ocr_leaves_the_job_to_another() {
    use mmt_sidecar::service::jobs::Workers;
    let docs = Docs::new().await;
    let token = docs.token(GARCIA).await;
    let id = docs.uploaded(&token, MEDICAL_RECORD, "scan.pdf", scanned_pdf("SODIUM RESULT", 3)).await;
    let queued = docs.send(&token, Method::POST, &format!("/api/documents/{id}/ocr/"), None, None).await;
    let job = queued.json()["job_id"].as_str().unwrap().to_string();
    let mut env = docs.env();
    env.extend([("MMT_JOB_LEASE_SECS", "1".into()), ("MMT_JOB_POLL_MS", "50".into())]);
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let state_of = |env: &[(&str, &str)]| docs.db.state_with(env);
    let first = Workers::new(state_of(&env)).spawn(1);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    loop {
        let now = docs.get(&token, &format!("/api/jobs/{job}/")).await.json();
        if now["progress_message"] == "page 1 of 3" {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "no page done: {now}");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    first.abort();
    let second = Workers::new(state_of(&env)).spawn(1);
    let finished = loop {
        let now = docs.get(&token, &format!("/api/jobs/{job}/")).await.json();
        if ["succeeded", "failed"].contains(&now["state"].as_str().unwrap_or_default()) {
            break now;
        }
        assert!(std::time::Instant::now() < deadline, "not finished: {now}");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    second.shutdown(std::time::Duration::from_secs(5)).await;
    assert_eq!(
        (finished["state"].as_str(), finished["attempts"].as_u64()),
        (Some("succeeded"), Some(2)),
        "{finished}"
    );
    let read = docs.get(&token, &format!("/api/documents/{id}/ocr/")).await.json();
    assert_eq!(read["pages"].as_array().unwrap().len(), 3, "{read}");
}

/// A scanned lab report attached to a dictation as context: its author attaches documents of the
/// same patient while the note is a draft, and readers of the note see them with their text.
#[tokio::test]
async fn a_lab_report_is_attached_to_a_transcription_as_context() {
    let docs = Docs::new().await;
    let token = docs.token(GARCIA).await;
    let transcription = uuid::Uuid::new_v4().to_string();
    let created = docs
        .json(&token, Method::POST, "/api/transcriptions/", json!({"id": transcription, "pid": PID}))
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.json());
    let lab = docs.uploaded(&token, MEDICAL_RECORD, "lab.pdf", text_pdf("HBA1C 6.1 PERCENT")).await;
    extracted(&docs, &token, lab).await;
    let path = format!("/api/transcriptions/{transcription}/documents/");

    let attached = docs.json(&token, Method::POST, &path, json!({"document_id": lab})).await;
    assert_eq!(attached.status, StatusCode::CREATED, "{}", attached.json());
    let item = &attached.json()["items"][0];
    assert_eq!(item["document"]["id"], lab);
    assert!(item["text"][0]["text"].as_str().unwrap().contains("HBA1C 6.1 PERCENT"), "{item}");
    let again = docs.json(&token, Method::POST, &path, json!({"document_id": lab})).await;
    assert_eq!((again.status, again.json()["items"].as_array().unwrap().len()), (StatusCode::OK, 1));

    let other_pid: i64 =
        docs.db.scalar(&format!("SELECT MIN(pid) FROM patient_data WHERE pid <> {PID}")).await;
    let form = TestForm::new()
        .text("category", MEDICAL_RECORD.to_string())
        .field(TestFormField::bytes(pdf("x")).name("file").filename("x.pdf").content_type("application/pdf"));
    let elsewhere = docs
        .send(&token, Method::POST, &format!("/api/patients/{other_pid}/documents/"), Some(form), None)
        .await;
    assert_eq!(elsewhere.status, StatusCode::CREATED, "{}", elsewhere.json());
    let wrong = docs.json(&token, Method::POST, &path, json!({"document_id": elsewhere.json()["id"]})).await;
    assert_eq!(wrong.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", wrong.json());
    assert_eq!(field_errors(&wrong.json()), ["document_id"]);

    let nurse = docs.token(NURSE).await;
    let refused = docs.json(&nurse, Method::POST, &path, json!({"document_id": lab})).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "only the author (or an administrator) attaches");

    let detached = docs.send(&token, Method::DELETE, &format!("{path}{lab}/"), None, None).await;
    assert_eq!(detached.status, StatusCode::NO_CONTENT);
    assert_eq!(docs.get(&token, &path).await.json()["items"], json!([]));
    docs.json(&token, Method::POST, &path, json!({"document_id": lab})).await;
    let submitted = docs
        .json(&token, Method::POST, &format!("/api/transcriptions/{transcription}/submit/"), json!({}))
        .await;
    assert_eq!(submitted.status, StatusCode::OK, "{}", submitted.json());
    let late = docs.send(&token, Method::DELETE, &format!("{path}{lab}/"), None, None).await;
    assert_eq!(late.status, StatusCode::CONFLICT, "a submitted note's context is fixed");
    let audited = |like: &'static str| {
        let sql = format!(
            "SELECT COUNT(*) FROM log WHERE event = 'other-update' AND FROM_BASE64(comments) LIKE '%{like}%'"
        );
        let db = docs.db.clone_handle();
        async move { db.scalar(&sql).await }
    };
    assert_eq!(audited("to transcription").await, 3, "every attach request");
    assert_eq!(audited("from transcription").await, 1);
}
