use std::collections::HashSet;

use poem::http::StatusCode;
use serde_json::{Value, json};

use crate::{auth::tokens, helpers::TestDb};

pub struct Api {
    pub db: TestDb,
    pub token: String,
}

/// One request to an in-process app with `env` settings, as a bearer of `token` if given.
pub(crate) async fn send(
    db: &TestDb,
    env: &[(&str, &str)],
    token: Option<&str>,
    method: poem::http::Method,
    path: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let client = db.client_with(env);
    let mut req = client.request(method, path);
    if let Some(token) = token {
        req = req.header("authorization", format!("Bearer {token}"));
    }
    if let Some(body) = body {
        req = req.body_json(&body);
    }
    let resp = req.send().await;
    let status = resp.0.status();
    let text = resp.0.into_body().into_string().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

impl Api {
    pub async fn as_user(user: (&str, &str)) -> Self {
        let db = TestDb::migrated().await;
        let (token, _) = tokens(&db, user).await;
        Self { db, token }
    }

    pub async fn admin() -> Self {
        Self::as_user(crate::auth::ADMIN).await
    }

    pub async fn call(&self, method: &str, path: &str, body: Option<Value>) -> (StatusCode, Value) {
        let method = poem::http::Method::from_bytes(method.as_bytes()).unwrap();
        send(&self.db, &[], Some(&self.token), method, path, body).await
    }

    pub async fn get(&self, path: &str) -> (StatusCode, Value) {
        self.call("GET", path, None).await
    }

    async fn search(&self, query: &str) -> Vec<i64> {
        let (status, body) =
            self.get(&format!("/api/patients/?page_size=100&search={}", urlencode(query))).await;
        assert_eq!(status, StatusCode::OK, "{query}: {body}");
        body["items"].as_array().unwrap().iter().map(|p| p["pid"].as_i64().unwrap()).collect()
    }

    async fn sql_pids(&self, sql: &str) -> Vec<i64> {
        sqlx::query_scalar(sqlx::AssertSqlSafe(sql.to_string())).fetch_all(&self.db.pool).await.unwrap()
    }
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

fn new_patient() -> Value {
    json!({
        "first_name": "Ximena",
        "last_name": "Q'Zhuang-Ålvik",
        "dob": "1971-03-04",
        "sex": "Female",
        "pubpid": "T-ZZ-1",
        "phone_cell": "(217) 555-0199",
        "email": "Ximena.Unique@Example.test",
        "city": "Springfield"
    })
}

#[tokio::test]
async fn search_finds_a_patient_by_every_field() {
    let api = Api::admin().await;
    let (status, created) = api.call("POST", "/api/patients/", Some(new_patient())).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let pid = created["pid"].as_i64().unwrap();
    for query in [
        "ximena",
        "XIM",
        "qzhuang",
        "Q'Zhuang",
        "q’zhuang",
        "alvik",
        "Ålvik",
        "qzhuangalvik",
        "T-ZZ-1",
        "t-zz",
        &pid.to_string(),
        "217-555-0199",
        "555-0199",
        "0199",
        "ximena.unique@example.test",
        "ximena.unique",
        "1971-03-04",
        "03/04/1971",
        "ximena 1971-03-04",
        "Ålvik Ximena",
    ] {
        assert!(api.search(query).await.contains(&pid), "`{query}` did not find pid {pid}");
    }
    assert!(!api.search("ximena 1971-03-05").await.contains(&pid), "every word must match");
}

#[tokio::test]
async fn accents_and_apostrophes_do_not_change_results() {
    let api = Api::admin().await;
    let obrien = api.sql_pids("SELECT pid FROM patient_data WHERE lname = 'O''Brien' ORDER BY pid").await;
    assert!(!obrien.is_empty(), "the demo data has O'Brien patients");
    for query in ["o'brien", "OBRIEN", "O’Brien", "obri"] {
        let found: HashSet<i64> = api.search(query).await.into_iter().collect();
        assert!(obrien.iter().all(|p| found.contains(p)), "{query}");
    }
    let munoz = api.sql_pids("SELECT pid FROM patient_data WHERE lname = 'Muñoz' ORDER BY pid").await;
    let mut a = api.search("Muñoz").await;
    let mut b = api.search("munoz").await;
    a.sort();
    b.sort();
    assert_eq!(a, b);
    assert!(munoz.iter().all(|p| a.contains(p)));
}

#[tokio::test]
async fn an_edit_made_in_openemr_is_searchable_at_once() {
    let api = Api::admin().await;
    assert!(api.search("zyzzyva").await.is_empty());
    sqlx::query("UPDATE patient_data SET lname = 'Zyzzyva' WHERE pid = 7")
        .execute(&api.db.pool)
        .await
        .unwrap();
    assert_eq!(api.search("zyzzyva").await, vec![7]);
    sqlx::query("DELETE FROM patient_data WHERE pid = 7").execute(&api.db.pool).await.unwrap();
    assert!(api.search("zyzzyva").await.is_empty(), "a patient removed in OpenEMR leaves the index");
}

#[tokio::test]
async fn cursor_pages_cover_everyone_once_and_stay_stable_while_patients_are_added() {
    let api = Api::admin().await;
    let expected_total: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM patient_data").fetch_one(&api.db.pool).await.unwrap();
    let (_, first) = api.get("/api/patients/?page_size=30&sort=name").await;
    assert_eq!(first["total"], expected_total);
    let mut seen: Vec<i64> =
        first["items"].as_array().unwrap().iter().map(|p| p["pid"].as_i64().unwrap()).collect();

    let mut early = new_patient();
    early["last_name"] = json!("Aaaaron");
    early["pubpid"] = json!("T-EARLY");
    let (status, _) = api.call("POST", "/api/patients/", Some(early)).await;
    assert_eq!(status, StatusCode::CREATED);

    let mut cursor = first["next_cursor"].as_str().map(str::to_string);
    while let Some(c) = cursor {
        let (status, page) = api.get(&format!("/api/patients/?page_size=30&sort=name&cursor={c}")).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        assert_eq!(page["total"], expected_total + 1);
        seen.extend(page["items"].as_array().unwrap().iter().map(|p| p["pid"].as_i64().unwrap()));
        cursor = page["next_cursor"].as_str().map(str::to_string);
    }
    let unique: HashSet<i64> = seen.iter().copied().collect();
    assert_eq!(unique.len(), seen.len(), "no patient appears twice");
    assert_eq!(
        seen.len() as i64,
        expected_total,
        "the new patient sorts before the cursor, so no one shifts"
    );
}

#[tokio::test]
async fn numbered_pages_and_sorts_are_consistent() {
    let api = Api::admin().await;
    let (_, p1) = api.get("/api/patients/?page=1&page_size=5&sort=-pid").await;
    let (_, p2) = api.get("/api/patients/?page=2&page_size=5&sort=-pid").await;
    let pids: Vec<i64> = [p1, p2]
        .iter()
        .flat_map(|p| p["items"].as_array().unwrap().iter().map(|i| i["pid"].as_i64().unwrap()))
        .collect();
    let expected = api.sql_pids("SELECT pid FROM patient_data ORDER BY pid DESC LIMIT 10").await;
    assert_eq!(pids, expected);
    let (status, body) = api.get("/api/patients/?page_size=1000").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["errors"][0], json!({"field": "page_size", "message": "must be at most 100"}));
    let (status, _) = api.get("/api/patients/?cursor=garbage").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn filters_narrow_by_sex_birth_dates_provider_and_facility() {
    let api = Api::admin().await;
    let (_, body) = api
        .get("/api/patients/?sex=Female&dob_from=1950-01-01&dob_to=1959-12-31&provider=3&page_size=100")
        .await;
    let expected = api
        .sql_pids("SELECT pid FROM patient_data WHERE sex = 'Female' AND DOB BETWEEN '1950-01-01' AND '1959-12-31' AND providerID = 3")
        .await;
    assert_eq!(body["total"], expected.len() as i64);
    let (_, body) = api.get("/api/patients/?facility=5&page_size=1").await;
    let at_facility = api.sql_pids("SELECT DISTINCT pid FROM form_encounter WHERE facility_id = 5").await;
    assert_eq!(body["total"], at_facility.len() as i64);
    let (status, body) = api.get("/api/patients/?dob_from=yesterday").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["errors"][0]["field"], "dob_from");
}

#[tokio::test]
async fn legacy_zero_birth_dates_read_as_null() {
    let api = Api::admin().await;
    let zero = api.sql_pids("SELECT pid FROM patient_data WHERE DOB = '0000-00-00'").await;
    assert!(!zero.is_empty(), "the demo data keeps OpenEMR's legacy zero dates");
    for pid in zero {
        let (status, body) = api.get(&format!("/api/patients/{pid}/")).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["dob"], Value::Null);
    }
}

#[tokio::test]
async fn invalid_input_gets_a_422_naming_each_field_and_writes_nothing() {
    let api = Api::admin().await;
    let before: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM patient_data").fetch_one(&api.db.pool).await.unwrap();
    let bad = json!({"first_name": "", "last_name": "Q", "dob": "2099-01-01", "sex": "F", "email": "nope", "city": "x".repeat(300)});
    let (status, body) = api.call("POST", "/api/patients/", Some(bad)).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let fields: HashSet<&str> =
        body["errors"].as_array().unwrap().iter().map(|e| e["field"].as_str().unwrap()).collect();
    assert_eq!(fields, HashSet::from(["first_name", "last_name", "dob", "sex", "email", "city"]));
    let (status, body) =
        api.call("POST", "/api/patients/", Some(json!({"first_name": "A", "is_admin": true}))).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "unknown fields are rejected: {body}");
    assert!(body["errors"].as_array().unwrap().iter().any(|e| e["field"] == "is_admin"), "{body}");
    let (status, body) = api
        .call(
            "POST",
            "/api/patients/",
            Some(json!({"first_name": "A", "last_name": "Bb", "dob": "1999-02-30", "sex": "Male"})),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["errors"][0]["message"], "must be a date as YYYY-MM-DD");
    let after: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM patient_data").fetch_one(&api.db.pool).await.unwrap();
    assert_eq!(before, after);
}

/// Reference: OpenEMR's PatientService::databaseInsert (pid = MAX+1, uuid via UuidRegistry, pubpid
/// defaulting to pid, date = regdate = now, created_by = updated_by = the user) plus the
/// new-patient screen's history_data row.
#[tokio::test]
async fn a_created_patient_is_written_as_openemr_writes_it() {
    let api = Api::admin().await;
    let max_before: i64 =
        sqlx::query_scalar("SELECT MAX(pid) FROM patient_data").fetch_one(&api.db.pool).await.unwrap();
    let mut input = new_patient();
    input.as_object_mut().unwrap().remove("pubpid");
    let (status, created) = api.call("POST", "/api/patients/", Some(input)).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let pid = created["pid"].as_i64().unwrap();
    assert_eq!(pid, max_before + 1);
    let row: (String, String, String, String, String, bool, i64, i64, String) = sqlx::query_as(
        "SELECT pubpid, fname, lname, CAST(DOB AS CHAR), sex, date = regdate, created_by, updated_by, HEX(uuid) \
         FROM patient_data WHERE pid = ?",
    )
    .bind(pid)
    .fetch_one(&api.db.pool)
    .await
    .unwrap();
    assert_eq!(
        (row.0.as_str(), row.1.as_str(), row.2.as_str(), row.3.as_str(), row.4.as_str()),
        (pid.to_string().as_str(), "Ximena", "Q'Zhuang-Ålvik", "1971-03-04", "Female")
    );
    assert!(row.5, "date and regdate are both the creation time");
    assert_eq!((row.6, row.7), (1, 1), "created_by and updated_by are the admin's users.id");
    let registered: (String, String) =
        sqlx::query_as("SELECT table_name, table_id FROM uuid_registry WHERE HEX(uuid) = ?")
            .bind(&row.8)
            .fetch_one(&api.db.pool)
            .await
            .unwrap();
    assert_eq!(registered, ("patient_data".to_string(), "id".to_string()));
    assert_eq!(created["uuid"].as_str().unwrap().replace('-', "").to_uppercase(), row.8);
    let history: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM history_data WHERE pid = ? AND uuid IS NOT NULL")
            .bind(pid)
            .fetch_one(&api.db.pool)
            .await
            .unwrap();
    assert_eq!(history, 1);
}

/// How many different pids these creates were given; each must have been created.
fn distinct_created_pids(results: &[(StatusCode, Value)]) -> usize {
    let pids: HashSet<i64> = results
        .iter()
        .map(|(status, body)| {
            assert_eq!(*status, StatusCode::CREATED, "{body}");
            body["pid"].as_i64().unwrap()
        })
        .collect();
    pids.len()
}

#[tokio::test]
async fn concurrent_creates_never_share_a_pid() {
    let api = Api::admin().await;
    let before: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM patient_data").fetch_one(&api.db.pool).await.unwrap();
    let calls = (0..20).map(|i| {
        let mut p = new_patient();
        p["pubpid"] = json!(format!("T-CONC-{i}"));
        api.call("POST", "/api/patients/", Some(p))
    });
    let results = futures_util::future::join_all(calls).await;
    assert_eq!(distinct_created_pids(&results), 20);
    let after: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM patient_data").fetch_one(&api.db.pool).await.unwrap();
    assert_eq!(after, before + 20);
    let histories: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM history_data").fetch_one(&api.db.pool).await.unwrap();
    assert_eq!(histories, after, "every patient has exactly one history row");
}

/// Creates queue for their turn inside the process, so a burst larger than the connection pool
/// (32) waiting behind another replica's create leaves connections for everyone else.
#[tokio::test]
async fn creates_queued_behind_another_replica_leave_the_pool_to_other_requests() {
    let api = Api::admin().await;
    let mut other_replica = api.db.pool.acquire().await.unwrap();
    let name = format!("mmt_patient_create:{}", api.db.name);
    let held: i64 =
        sqlx::query_scalar("SELECT GET_LOCK(?, 0)").bind(&name).fetch_one(&mut *other_replica).await.unwrap();
    assert_eq!(held, 1);
    let creates = futures_util::future::join_all((0..40).map(|i| {
        let mut p = new_patient();
        p["pubpid"] = json!(format!("T-BURST-{i}"));
        Box::pin(api.call("POST", "/api/patients/", Some(p)))
    }));
    let meanwhile = async {
        let waiting = format!(
            "SELECT COUNT(*) FROM information_schema.processlist WHERE db = '{}' AND state = 'User lock'",
            api.db.name
        );
        while api.db.scalar(&waiting).await == 0 {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        for _ in 0..5 {
            let (status, body) = api.get("/api/patients/1/").await;
            assert_eq!(status, StatusCode::OK, "{body}");
        }
        assert_eq!(
            api.db.scalar(&waiting).await,
            1,
            "one connection waits on the lock, the rest wait in line"
        );
        sqlx::query("SELECT RELEASE_LOCK(?)").bind(&name).execute(&mut *other_replica).await.unwrap();
    };
    let (results, ()) = futures_util::join!(creates, meanwhile);
    assert_eq!(distinct_created_pids(&results), 40);
}

#[tokio::test]
async fn patch_changes_only_the_given_fields_and_put_needs_them_all() {
    let api = Api::admin().await;
    let (_, before) = api.get("/api/patients/12/").await;
    let (status, after) = api.call("PATCH", "/api/patients/12/", Some(json!({"city": "Peoria"}))).await;
    assert_eq!(status, StatusCode::OK, "{after}");
    assert_eq!(after["city"], "Peoria");
    assert_eq!(after["last_name"], before["last_name"]);
    let (status, body) = api.call("PUT", "/api/patients/12/", Some(json!({"city": "Peoria"}))).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let (status, _) = api.call("PATCH", "/api/patients/999999/", Some(json!({"city": "X"}))).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, body) = api.call("PATCH", "/api/patients/12/", Some(json!({"pubpid": "2"}))).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "a chart number in use: {body}");
}

#[tokio::test]
async fn delete_is_refused_with_an_explanation_by_default() {
    let api = Api::admin().await;
    let (status, body) = api.call("DELETE", "/api/patients/12/", None).await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    assert!(body["detail"].as_str().unwrap().contains("OpenEMR keeps charts"));
}

#[tokio::test]
async fn permissions_follow_openemr_acl() {
    let nurse = Api::as_user(("nkim", "Clinician-Kim-4")).await;
    let (status, _) = nurse.call("POST", "/api/patients/", Some(new_patient())).await;
    assert_eq!(status, StatusCode::CREATED, "clinicians hold patients|demo addonly: they may register");
    let (status, body) = nurse.call("PATCH", "/api/patients/12/", Some(json!({"city": "X"}))).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "but not edit: {body}");
    assert!(body["detail"].as_str().unwrap().contains("patients|demo (write)"));
}

#[tokio::test]
async fn reads_and_writes_are_audited_once_per_request() {
    let api = Api::admin().await;
    let audit = |event: &'static str| {
        let pool = api.db.pool.clone();
        async move {
            sqlx::query_as::<_, (Option<i64>, String)>(
                "SELECT patient_id, CAST(FROM_BASE64(comments) AS CHAR) FROM log WHERE event = ? AND category = 'Patient Demographics'",
            )
            .bind(event)
            .fetch_all(&pool)
            .await
            .unwrap()
        }
    };
    api.get("/api/patients/?page_size=100").await;
    let searches = audit("patient-record-select").await;
    assert_eq!(searches.len(), 1, "one row for a search of 100 patients");
    assert!(searches[0].1.contains("100 of"), "{:?}", searches[0]);
    api.get("/api/patients/3/").await;
    assert!(audit("patient-record-select").await.iter().any(|(pid, _)| *pid == Some(3)));
    let (_, created) = api.call("POST", "/api/patients/", Some(new_patient())).await;
    let pid = created["pid"].as_i64();
    assert!(audit("patient-record-insert").await.iter().any(|(p, _)| *p == pid));
    api.call("PATCH", "/api/patients/3/", Some(json!({"city": "Peoria"}))).await;
    assert!(audit("patient-record-update").await.iter().any(|(p, _)| *p == Some(3)));
}

/// A sweep reads `patient_data` whole, so it is skipped while the table's change stamp has not
/// moved (and has been seen for longer than a commit can lag behind its change). One app state
/// throughout, as in a running server.
#[tokio::test]
async fn an_unchanged_patient_table_is_not_swept_again() {
    let api = Api::admin().await;
    let state = api.db.state();
    let client = poem::test::TestClient::new(crate::helpers::documented_app(state.clone()));
    let search = |query: &'static str| {
        let req = client
            .get(format!("/api/patients/?search={query}"))
            .header("authorization", format!("Bearer {}", api.token));
        async move {
            let resp = req.send().await;
            resp.assert_status_is_ok();
            let body = resp.json().await;
            body.value()
                .object()
                .get("items")
                .array()
                .iter()
                .map(|p| p.object().get("pid").i64())
                .collect::<Vec<_>>()
        }
    };
    let synced_at = || async {
        sqlx::query_scalar::<_, chrono::NaiveDateTime>("SELECT synced_at FROM mmt_patient_index_state")
            .fetch_one(&api.db.pool)
            .await
            .unwrap()
    };
    search("xochitl").await;
    tokio::time::sleep(mmt_sidecar::domain::table_stamp::SETTLE).await;
    search("xochitl").await;
    let settled = synced_at().await;
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    assert!(search("xochitl").await.is_empty());
    assert_eq!(synced_at().await, settled, "nothing changed, so nothing was swept");
    sqlx::query("UPDATE patient_data SET lname = 'Xochitl' WHERE pid = 4")
        .execute(&api.db.pool)
        .await
        .unwrap();
    assert_eq!(search("xochitl").await, vec![4]);
    assert!(synced_at().await > settled, "an edit moves the stamp, and the next search sweeps");
    // Most likely the same second as the edit before, which leaves the stamp as it was.
    sqlx::query("UPDATE patient_data SET fname = 'Quillon' WHERE pid = 4")
        .execute(&api.db.pool)
        .await
        .unwrap();
    assert_eq!(search("quillon%20xochitl").await, vec![4], "a second edit right after the first");
}

/// With a non-zero staleness, searches never wait for a sweep: the server's background sweep
/// brings an OpenEMR-side edit into search results within that bound.
#[tokio::test]
async fn the_background_sweep_picks_up_openemr_edits() {
    let db = TestDb::migrated().await;
    let mut env = db.env();
    env.push(("MMT_SEARCH_MAX_STALENESS_MS", "300".into()));
    env.push(("MMT_COOKIE_SECURE", "false".into()));
    let (mut child, addr) = crate::helpers::spawn_binary(env).await;
    let http = reqwest::Client::new();
    let login: Value = http
        .post(format!("http://{addr}/api/auth/login/"))
        .json(&json!({"username": "admin", "password": "Sidecar-Admin-1"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = login["access_token"].as_str().unwrap().to_string();
    let search = || async {
        let body: Value = http
            .get(format!("http://{addr}/api/patients/?search=quetzalcoatl"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        body["total"].as_i64().unwrap()
    };
    assert_eq!(search().await, 0);
    sqlx::query("UPDATE patient_data SET lname = 'Quetzalcoatl' WHERE pid = 9")
        .execute(&db.pool)
        .await
        .unwrap();
    let mut found = false;
    for _ in 0..50 {
        if search().await == 1 {
            found = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let _ = child.kill();
    let _ = child.wait();
    assert!(found, "the edit never reached the index");
}

/// Searches are answered from this replica's in-memory index; the `mmt_patient_index` table (the
/// path used while the memory index builds) answers each of them with the same patients, in the
/// same order, and the same total.
#[tokio::test]
async fn the_in_memory_index_answers_every_search_as_the_database_index_does() {
    use mmt_sidecar::{
        domain::patient_search::parse_query,
        storage::mmt::patient_index::{self, Filters, Page, SortKey},
    };
    let api = Api::as_user(("admin", "Sidecar-Admin-1")).await;
    let queries = ["", "a", "ma", "gar", "maria g", "smith", "o'b", "555", "1", "12", "jo", "e", "mrn"];
    let sorts =
        [("name", SortKey::Name, false), ("-name", SortKey::Name, true), ("dob", SortKey::Dob, false)];
    let mut compared = 0;
    for query in queries {
        for (sort, key, descending) in sorts {
            for sex in [None, Some("Female")] {
                let sex_param = sex.map(|s| format!("&sex={s}")).unwrap_or_default();
                let path = format!(
                    "/api/patients/?search={}&sort={sort}&page_size=100{sex_param}",
                    query.replace(' ', "%20")
                );
                let (status, body) = api.call("GET", &path, None).await;
                assert_eq!(status, StatusCode::OK, "{path}: {body}");
                let listed: Vec<i64> =
                    body["items"].as_array().unwrap().iter().map(|p| p["pid"].as_i64().unwrap()).collect();
                let filters =
                    Filters { needles: parse_query(query), sex: sex.map(String::from), ..Filters::default() };
                let page = Page { sort: key, descending, after: None, offset: None, limit: 100 };
                let from_table: Vec<i64> = patient_index::search(&api.db.pool, &filters, &page)
                    .await
                    .unwrap()
                    .into_iter()
                    .map(|(pid, _)| pid)
                    .collect();
                assert_eq!(listed, from_table, "{path}");
                assert_eq!(
                    body["total"].as_i64(),
                    Some(patient_index::total(&api.db.pool, &filters).await.unwrap())
                );
                compared += usize::from(!listed.is_empty());
            }
        }
    }
    assert!(compared > 40, "most searches must find someone, or the comparison proves little ({compared})");
}

/// `sort=relevance` lists the patients whose surname starts with the word before those found by a
/// given name, though by name "Adeyemi, Mateo" would come first for "ma".
#[tokio::test]
async fn relevance_puts_surname_matches_before_given_name_matches() {
    let api = Api::as_user(("admin", "Sidecar-Admin-1")).await;
    let (status, body) = api.call("GET", "/api/patients/?search=ma&sort=relevance&page_size=100", None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let by_surname: Vec<bool> = body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["last_name"].as_str().unwrap().to_lowercase().starts_with("ma"))
        .collect();
    let first_by_given_name = by_surname.iter().position(|s| !s).expect("some match by given name");
    assert!(first_by_given_name > 0, "some match by surname: {body}");
    assert!(
        by_surname[first_by_given_name..].iter().all(|s| !s),
        "a surname match after a given-name one: {body}"
    );
    let (_, by_name) = api.call("GET", "/api/patients/?search=ma&sort=name&page_size=100", None).await;
    assert!(!by_name["items"][0]["last_name"].as_str().unwrap().to_lowercase().starts_with("ma"));
}
