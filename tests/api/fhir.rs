use std::collections::HashSet;

use poem::http::{Method, StatusCode};
use serde_json::Value;

use crate::{auth::tokens, helpers::TestDb};

const GARCIA: (&str, &str) = ("drgarcia", "Physician-Garcia-2");
/// pid 1, José J Muñoz, as the fixtures store him.
const JOSE: &str = "9d69b232-ca80-4a7d-a089-77dbc525d476";

struct Fhir {
    db: TestDb,
    token: String,
}

impl Fhir {
    async fn new() -> Self {
        let db = TestDb::migrated().await;
        let (token, _) = tokens(&db, GARCIA).await;
        Self { db, token }
    }

    /// GET on the FHIR base; the content type must be FHIR's whatever the status.
    async fn get_as(&self, token: Option<&str>, path: &str) -> (StatusCode, Value) {
        self.send_as(token, "get", path, None).await
    }

    async fn get(&self, path: &str) -> (StatusCode, Value) {
        self.get_as(Some(&self.token), path).await
    }

    /// A request to the FHIR base, a write with a FHIR JSON body; the answer's content type must
    /// be FHIR's whatever the status.
    async fn send_as(
        &self,
        token: Option<&str>,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let client = self.db.client();
        let method = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
        let mut req = client.request(method, format!("/fhir/r4{path}")).header("host", "ehr.example");
        if let Some(body) = body {
            req = req.header("content-type", "application/fhir+json").body(body.to_string());
        }
        if let Some(token) = token {
            req = req.header("authorization", format!("Bearer {token}"));
        }
        let resp = req.send().await;
        let status = resp.0.status();
        let content_type = resp.0.content_type().unwrap_or_default().to_string();
        assert!(content_type.starts_with("application/fhir+json"), "{path}: {status} {content_type}");
        let text = resp.0.into_body().into_string().await.unwrap();
        (status, serde_json::from_str(&text).unwrap())
    }

    async fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.send_as(Some(&self.token), "post", path, Some(body)).await
    }

    /// Every patient id a search finds, following `next` links; and the bundle's total.
    async fn search_all(&self, query: &str) -> (Vec<String>, i64) {
        let (mut ids, mut path, mut total) = (Vec::new(), format!("/Patient?{query}"), None);
        loop {
            let (status, bundle) = self.get(&path).await;
            assert_eq!(status, StatusCode::OK, "{path}: {bundle}");
            assert_eq!(
                (bundle["resourceType"].as_str(), bundle["type"].as_str()),
                (Some("Bundle"), Some("searchset"))
            );
            let this_total = bundle["total"].as_i64().unwrap();
            assert_eq!(*total.get_or_insert(this_total), this_total, "the total changed between pages");
            for entry in bundle["entry"].as_array().into_iter().flatten() {
                let id = entry["resource"]["id"].as_str().unwrap().to_string();
                assert_eq!(
                    entry["fullUrl"].as_str(),
                    Some(format!("http://ehr.example/fhir/r4/Patient/{id}").as_str())
                );
                ids.push(id);
            }
            let next = bundle["link"].as_array().unwrap().iter().find(|l| l["relation"] == "next");
            match next {
                Some(link) => {
                    let url = link["url"].as_str().unwrap();
                    path = url
                        .strip_prefix("http://ehr.example/fhir/r4")
                        .expect("next stays on this server")
                        .to_string();
                }
                None => break,
            }
        }
        (ids, total.unwrap_or(0))
    }

    async fn uuids_where(&self, condition: &str) -> HashSet<String> {
        let rows: Vec<(Vec<u8>,)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT uuid FROM patient_data WHERE uuid IS NOT NULL AND {condition}"
        )))
        .fetch_all(&self.db.pool)
        .await
        .unwrap();
        rows.into_iter().map(|(b,)| uuid::Uuid::from_slice(&b).unwrap().to_string()).collect()
    }
}

fn issue(outcome: &Value) -> (&str, &str) {
    assert_eq!(outcome["resourceType"], "OperationOutcome", "{outcome}");
    (outcome["issue"][0]["code"].as_str().unwrap(), outcome["issue"][0]["diagnostics"].as_str().unwrap_or(""))
}

#[tokio::test]
async fn metadata_lists_exactly_what_is_served_and_needs_no_sign_in() {
    let fhir = Fhir::new().await;
    let (status, cap) = fhir.get_as(None, "/metadata").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        (cap["resourceType"].as_str(), cap["fhirVersion"].as_str()),
        (Some("CapabilityStatement"), Some("4.0.1"))
    );
    let resources = cap["rest"][0]["resource"].as_array().unwrap();
    let kinds: Vec<&str> = resources.iter().map(|r| r["type"].as_str().unwrap()).collect();
    assert_eq!(
        kinds,
        [
            "Patient",
            "Condition",
            "AllergyIntolerance",
            "Encounter",
            "Observation",
            "MedicationRequest",
            "Appointment",
            "Schedule",
            "Slot",
            "Practitioner",
            "Organization",
            "DocumentReference",
            "Binary",
            "Communication",
            "Group"
        ]
    );
    assert!(resources[6].get("profile").is_none(), "US Core 3.1.1 has no Appointment profile to claim");
    let codes = |r: &Value| -> Vec<String> {
        r["interaction"].as_array().unwrap().iter().map(|i| i["code"].as_str().unwrap().to_string()).collect()
    };
    assert_eq!(codes(&resources[6]), ["read", "search-type", "create"], "Appointments can be booked");
    assert_eq!(codes(&resources[4]), ["read", "search-type", "create"], "vital signs can be recorded");
    assert_eq!(codes(&resources[1]), ["read", "search-type"]);
    assert_eq!(codes(&resources[11]), ["read", "search-type", "create"], "clinical notes can be filed");
    assert_eq!(codes(&resources[12]), ["read"], "a Binary is read by the url of its DocumentReference");
    assert_eq!(codes(&resources[13]), ["read", "search-type", "create"], "messages can be sent");
    assert_eq!(codes(&resources[14]), ["read", "search-type"], "provider groups, for bulk export");
    let operations: Vec<&str> = cap["rest"][0]["operation"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["definition"].as_str().unwrap().rsplit('/').next().unwrap())
        .collect();
    assert_eq!(operations, ["patient-export", "group-export"]);
    for resource in &resources[1..6] {
        assert_eq!(resource["searchParam"][0]["name"], "patient");
    }
    let interactions: Vec<&str> =
        resources[0]["interaction"].as_array().unwrap().iter().map(|i| i["code"].as_str().unwrap()).collect();
    assert_eq!(interactions, ["read", "search-type"]);
    let params: HashSet<&str> =
        resources[0]["searchParam"].as_array().unwrap().iter().map(|p| p["name"].as_str().unwrap()).collect();
    let served = ["_id", "name", "family", "given", "birthdate", "gender", "identifier", "phone", "email"];
    assert_eq!(params, served.into_iter().collect());
}

#[tokio::test]
async fn a_patient_is_read_by_openemrs_uuid_in_us_core_shape_and_audited() {
    let fhir = Fhir::new().await;
    let audited = "SELECT COUNT(*) FROM log WHERE event = 'patient-record-select' AND patient_id = 1";
    let before = fhir.db.scalar(audited).await;
    let (status, p) = fhir.get(&format!("/Patient/{JOSE}")).await;
    assert_eq!(status, StatusCode::OK, "{p}");
    assert_eq!((p["resourceType"].as_str(), p["id"].as_str()), (Some("Patient"), Some(JOSE)));
    assert_eq!(p["meta"]["profile"][0], "http://hl7.org/fhir/us/core/StructureDefinition/us-core-patient");
    assert_eq!(p["name"][0]["family"], "Muñoz");
    assert_eq!(p["name"][0]["given"], serde_json::json!(["José", "J"]));
    assert_eq!(p["name"][1]["given"], serde_json::json!(["Bea"]), "the preferred name is a usual name");
    assert_eq!((p["gender"].as_str(), p["birthDate"].as_str()), (Some("male"), Some("1982-12-03")));
    assert_eq!(
        (p["identifier"][0]["type"]["coding"][0]["code"].as_str(), p["identifier"][0]["value"].as_str()),
        (Some("PT"), Some("1"))
    );
    let telecom: Vec<(&str, &str)> = p["telecom"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| (t["use"].as_str().unwrap(), t["value"].as_str().unwrap()))
        .collect();
    assert_eq!(
        telecom,
        [("home", "(217) 555-9761"), ("mobile", "(618) 555-5541"), ("home", "jose.munoz1@example.net")]
    );
    assert_eq!(p["address"][0]["line"][0], "1536 Elm Court");
    assert_eq!(fhir.db.scalar(audited).await, before + 1);
}

#[tokio::test]
async fn errors_are_operation_outcomes_unknown_ids_404_and_no_credentials_401() {
    let fhir = Fhir::new().await;
    for id in ["00000000-0000-4000-8000-000000000000", "not-a-uuid", "1"] {
        let (status, outcome) = fhir.get(&format!("/Patient/{id}")).await;
        assert_eq!((status, issue(&outcome).0), (StatusCode::NOT_FOUND, "not-found"), "{id}");
    }
    let (status, outcome) = fhir.get_as(None, &format!("/Patient/{JOSE}")).await;
    assert_eq!((status, issue(&outcome).0), (StatusCode::UNAUTHORIZED, "login"));
    let (status, outcome) = fhir.get("/Nothing").await;
    assert_eq!((status, issue(&outcome).0), (StatusCode::NOT_FOUND, "not-found"));
}

#[tokio::test]
async fn bad_search_parameters_are_400_naming_the_parameter() {
    let fhir = Fhir::new().await;
    for (query, param) in [
        ("birthdate=1980-13", "birthdate"),
        ("birthdate=ne1980", "birthdate"),
        ("gender=other", "gender"),
        ("_count=101", "_count"),
        ("name=%25%25", "name"),
        ("phone=55", "phone"),
        ("_cursor=forged", "_cursor"),
    ] {
        let (status, outcome) = fhir.get(&format!("/Patient?{query}")).await;
        assert_eq!((status, issue(&outcome).0), (StatusCode::BAD_REQUEST, "invalid"), "{query}: {outcome}");
        assert_eq!(outcome["issue"][0]["expression"][0], param, "{query}");
    }
}

#[tokio::test]
async fn searches_match_their_field_and_page_through_every_match_once() {
    let fhir = Fhir::new().await;
    let cases = [
        ("gender=female&birthdate=ge1960&_count=7", "sex = 'Female' AND DOB >= '1960-01-01'"),
        ("birthdate=1954", "DOB BETWEEN '1954-01-01' AND '1954-12-31'"),
        ("family=obri", "lname LIKE 'O''Bri%'"),
        ("given=zoe", "fname IN ('Zoë', 'Zoe')"),
        ("identifier=2", "pubpid = '2'"),
        ("email=JOSE.MUNOZ1@example.net", "email = 'jose.munoz1@example.net'"),
        (
            "phone=(217)%20555-9761",
            "phone_home = '(217) 555-9761' OR phone_cell = '(217) 555-9761' OR phone_biz = '(217) 555-9761'",
        ),
        (&format!("_id={JOSE}"), "pid = 1"),
        ("_id=00000000-0000-4000-8000-000000000000", "FALSE"),
    ];
    for (query, condition) in cases {
        let (ids, total) = fhir.search_all(query).await;
        let expected = fhir.uuids_where(condition).await;
        assert!(!expected.is_empty() || condition == "FALSE", "{query}: the fixtures have matches");
        assert_eq!(ids.len(), expected.len(), "{query}: each match once");
        assert_eq!(ids.into_iter().collect::<HashSet<_>>(), expected, "{query}");
        assert_eq!(total, expected.len() as i64, "{query}");
    }
}

#[tokio::test]
async fn a_name_search_matches_every_word_of_first_or_last_names() {
    let fhir = Fhir::new().await;
    let (ids, _) = fhir.search_all("name=jose%20mun").await;
    assert!(ids.contains(&JOSE.to_string()), "{ids:?}");
    let (ids, _) = fhir.search_all("name=munoz").await;
    assert!(ids.contains(&JOSE.to_string()));
    let (ids, total) = fhir.search_all("name=5559761").await;
    assert_eq!((ids.len(), total), (0, 0), "a name search never matches phone numbers");
    let (status, bundle) = fhir.get("/Patient?gender=male&_count=0").await;
    assert_eq!(status, StatusCode::OK);
    let males = fhir.uuids_where("sex = 'Male'").await.len() as i64;
    assert_eq!(
        (bundle["total"].as_i64(), bundle.get("entry"), bundle["link"].as_array().unwrap().len()),
        (Some(males), None, 1)
    );
    let audited = "SELECT COUNT(*) FROM log WHERE event = 'patient-record-select' AND FROM_BASE64(comments) LIKE '%patient search%'";
    assert!(fhir.db.scalar(audited).await >= 3, "each search page is audited");
}

async fn uuids(db: &TestDb, sql: &str) -> HashSet<String> {
    let rows: Vec<(Vec<u8>,)> =
        sqlx::query_as(sqlx::AssertSqlSafe(sql.to_string())).fetch_all(&db.pool).await.unwrap();
    rows.into_iter().map(|(b,)| uuid::Uuid::from_slice(&b).unwrap().to_string()).collect()
}

/// The FHIR id of the patient with this pid.
async fn patient_id(db: &TestDb, pid: i64) -> String {
    uuids(db, &format!("SELECT uuid FROM patient_data WHERE pid = {pid}")).await.into_iter().next().unwrap()
}

fn entry_ids(bundle: &Value) -> HashSet<String> {
    bundle["entry"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| e["resource"]["id"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn a_patients_conditions_and_allergies_are_openemrs_lists_rows_by_their_uuids() {
    let fhir = Fhir::new().await;
    let (status, bundle) = fhir.get(&format!("/Condition?patient=Patient/{JOSE}")).await;
    assert_eq!(status, StatusCode::OK, "{bundle}");
    let problems = uuids(&fhir.db, "SELECT uuid FROM lists WHERE pid = 1 AND type = 'medical_problem'").await;
    assert!(!problems.is_empty());
    assert_eq!(
        (entry_ids(&bundle), bundle["total"].as_i64()),
        (problems.clone(), Some(problems.len() as i64))
    );
    let reflux = bundle["entry"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| &e["resource"])
        .find(|c| c["code"]["text"] == "Gastro-esophageal reflux disease")
        .unwrap();
    assert_eq!(
        reflux["code"]["coding"][0],
        serde_json::json!({"system": "http://hl7.org/fhir/sid/icd-10-cm", "code": "K21.9"})
    );
    assert_eq!(reflux["subject"]["reference"], format!("Patient/{JOSE}"));
    assert_eq!(reflux["clinicalStatus"]["coding"][0]["code"], "active");
    assert_eq!(reflux["category"][0]["coding"][0]["code"], "problem-list-item");

    let id = reflux["id"].as_str().unwrap();
    let audited = "SELECT COUNT(*) FROM log WHERE event = 'patient-record-select' AND patient_id = 1";
    let before = fhir.db.scalar(audited).await;
    let (status, read) = fhir.get(&format!("/Condition/{id}")).await;
    assert_eq!((status, &read), (StatusCode::OK, reflux));
    assert_eq!(fhir.db.scalar(audited).await, before + 1, "a read is audited");
    let (status, outcome) = fhir.get(&format!("/AllergyIntolerance/{id}")).await;
    assert_eq!((status, issue(&outcome).0), (StatusCode::NOT_FOUND, "not-found"), "a problem is no allergy");

    let allergic: i64 =
        fhir.db.scalar("SELECT MIN(pid) FROM lists WHERE type = 'allergy' AND uuid IS NOT NULL").await;
    let patient = patient_id(&fhir.db, allergic).await;
    let (status, bundle) = fhir.get(&format!("/AllergyIntolerance?patient={patient}")).await;
    assert_eq!(status, StatusCode::OK, "{bundle}");
    let allergies =
        uuids(&fhir.db, &format!("SELECT uuid FROM lists WHERE pid = {allergic} AND type = 'allergy'")).await;
    assert_eq!(entry_ids(&bundle), allergies);
    for entry in bundle["entry"].as_array().unwrap() {
        assert_eq!(entry["resource"]["patient"]["reference"], format!("Patient/{patient}"));
    }
}

#[tokio::test]
async fn chart_searches_need_a_patient_and_patients_med() {
    let fhir = Fhir::new().await;
    let (status, outcome) = fhir.get("/Condition").await;
    assert_eq!(
        (status, outcome["issue"][0]["expression"][0].as_str()),
        (StatusCode::BAD_REQUEST, Some("patient"))
    );
    let (status, bundle) =
        fhir.get("/AllergyIntolerance?patient=Patient/00000000-0000-4000-8000-000000000000").await;
    assert_eq!((status, bundle["total"].as_i64()), (StatusCode::OK, Some(0)), "nobody has no allergies");
    let (front_desk, _) = tokens(&fhir.db, ("fdoconnor", "Front-OConnor-6")).await;
    let (status, outcome) = fhir.get_as(Some(&front_desk), &format!("/Condition?patient={JOSE}")).await;
    assert_eq!((status, issue(&outcome).0), (StatusCode::FORBIDDEN, "forbidden"));
}

#[tokio::test]
async fn a_patients_encounters_page_newest_first_and_read_back_by_uuid() {
    let fhir = Fhir::new().await;
    let pid = fhir
        .db
        .scalar("SELECT pid FROM form_encounter GROUP BY pid ORDER BY COUNT(*) DESC, pid LIMIT 1")
        .await;
    let patient = patient_id(&fhir.db, pid).await;
    let (mut ids, mut path) = (Vec::new(), format!("/Encounter?patient={patient}&_count=2"));
    let mut starts = Vec::new();
    loop {
        let (status, bundle) = fhir.get(&path).await;
        assert_eq!(status, StatusCode::OK, "{bundle}");
        for entry in bundle["entry"].as_array().into_iter().flatten() {
            let e = &entry["resource"];
            assert_eq!(e["subject"]["reference"], format!("Patient/{patient}"));
            assert_eq!(e["class"]["system"], "http://terminology.hl7.org/CodeSystem/v3-ActCode");
            ids.push(e["id"].as_str().unwrap().to_string());
            starts.push(e["period"]["start"].as_str().unwrap().to_string());
        }
        match bundle["link"].as_array().unwrap().iter().find(|l| l["relation"] == "next") {
            Some(next) => {
                path = next["url"]
                    .as_str()
                    .unwrap()
                    .strip_prefix("http://ehr.example/fhir/r4")
                    .unwrap()
                    .to_string()
            }
            None => break,
        }
    }
    let expected = uuids(&fhir.db, &format!("SELECT uuid FROM form_encounter WHERE pid = {pid}")).await;
    assert!(expected.len() > 2, "the fixtures give a patient several visits");
    assert_eq!((ids.len(), ids.iter().cloned().collect::<HashSet<_>>()), (expected.len(), expected));
    assert!(starts.windows(2).all(|w| w[0] >= w[1]), "newest first: {starts:?}");

    let number: i64 = fhir
        .db
        .scalar(&format!(
            "SELECT encounter FROM form_encounter WHERE uuid = UNHEX(REPLACE('{}', '-', ''))",
            ids[0]
        ))
        .await;
    let (status, read) = fhir.get(&format!("/Encounter/{}", ids[0])).await;
    assert_eq!(status, StatusCode::OK, "{read}");
    assert_eq!(
        (read["identifier"][0]["value"].as_str(), read["status"].as_str()),
        (Some(number.to_string().as_str()), Some("finished"))
    );
    for reference in
        [&read["participant"][0]["individual"]["reference"], &read["serviceProvider"]["reference"]]
    {
        let path = reference.as_str().expect("the provider and facility are referenced");
        assert_eq!(fhir.get(&format!("/{path}")).await.0, StatusCode::OK, "{path} resolves");
    }
    let (status, outcome) = fhir.get(&format!("/Encounter/{JOSE}")).await;
    assert_eq!(
        (status, issue(&outcome).0),
        (StatusCode::NOT_FOUND, "not-found"),
        "a patient's id is no encounter's"
    );
}

#[tokio::test]
async fn vital_signs_are_observations_with_openemrs_mapped_ids_and_a_panel_per_form() {
    let fhir = Fhir::new().await;
    let pid = fhir
        .db
        .scalar(
            "SELECT v.pid FROM form_vitals v JOIN uuid_mapping m ON m.target_uuid = v.uuid \
             WHERE v.weight > 0 GROUP BY v.pid ORDER BY COUNT(*) DESC, v.pid LIMIT 1",
        )
        .await;
    let patient = patient_id(&fhir.db, pid).await;
    let (status, bundle) =
        fhir.get(&format!("/Observation?patient=Patient/{patient}&category=vital-signs")).await;
    assert_eq!(status, StatusCode::OK, "{bundle}");
    let entries: Vec<&Value> = bundle["entry"].as_array().unwrap().iter().map(|e| &e["resource"]).collect();
    let mapped = uuids(
        &fhir.db,
        &format!("SELECT m.uuid FROM uuid_mapping m JOIN form_vitals v ON v.uuid = m.target_uuid WHERE v.pid = {pid}"),
    )
    .await;
    let ids: HashSet<String> = entries.iter().map(|o| o["id"].as_str().unwrap().to_string()).collect();
    assert_eq!(ids.len(), entries.len(), "each observation once");
    assert!(ids.is_subset(&mapped), "every id is one OpenEMR's uuid_mapping gives");
    let forms = fhir.db.scalar(&format!("SELECT COUNT(*) FROM form_vitals WHERE pid = {pid}")).await;
    let panels: Vec<&&Value> =
        entries.iter().filter(|o| o["code"]["coding"][0]["code"] == "85353-1").collect();
    assert_eq!(panels.len() as i64, forms, "one vital-signs panel per form");
    for panel in panels {
        for member in panel["hasMember"].as_array().unwrap() {
            let id = member["reference"].as_str().unwrap().strip_prefix("Observation/").unwrap();
            assert!(ids.contains(id), "a panel's members are in the bundle");
        }
    }
    let weight: f64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT CAST(weight AS DOUBLE) FROM form_vitals WHERE pid = {pid} AND weight > 0 ORDER BY date DESC, id DESC LIMIT 1"
    )))
    .fetch_one(&fhir.db.pool)
    .await
    .unwrap();
    let (_, weights) =
        fhir.get(&format!("/Observation?patient={patient}&code=http://loinc.org|29463-7")).await;
    let newest = &weights["entry"][0]["resource"];
    assert!(
        weights["entry"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["resource"]["code"]["coding"][0]["code"] == "29463-7")
    );
    assert_eq!(newest["valueQuantity"]["code"], "[lb_av]");
    assert!(
        (newest["valueQuantity"]["value"].as_f64().unwrap() - weight).abs() < 0.006,
        "{newest} vs {weight}"
    );

    let audited =
        format!("SELECT COUNT(*) FROM log WHERE event = 'patient-record-select' AND patient_id = {pid}");
    let before = fhir.db.scalar(&audited).await;
    let (status, read) = fhir.get(&format!("/Observation/{}", newest["id"].as_str().unwrap())).await;
    assert_eq!((status, &read), (StatusCode::OK, newest));
    assert_eq!(fhir.db.scalar(&audited).await, before + 1);
    let (status, labs) = fhir.get(&format!("/Observation?patient={patient}&category=laboratory")).await;
    assert_eq!((status, labs["total"].as_i64()), (StatusCode::OK, Some(0)), "only vital signs are served");
}

#[tokio::test]
async fn providers_and_facilities_are_practitioners_and_organizations_by_their_uuids() {
    let fhir = Fhir::new().await;
    for (resource, sql) in [
        (
            "Practitioner",
            "SELECT uuid FROM users WHERE authorized = 1 AND active = 1 AND username <> '' AND uuid IS NOT NULL",
        ),
        ("Organization", "SELECT uuid FROM facility WHERE uuid IS NOT NULL"),
    ] {
        let (status, bundle) = fhir.get(&format!("/{resource}")).await;
        assert_eq!(status, StatusCode::OK, "{bundle}");
        let expected = uuids(&fhir.db, sql).await;
        assert!(!expected.is_empty(), "{resource}: the fixtures have some");
        assert_eq!(entry_ids(&bundle), expected, "{resource}");
        let first = &bundle["entry"][0]["resource"];
        let (status, read) = fhir.get(&format!("/{resource}/{}", first["id"].as_str().unwrap())).await;
        assert_eq!((status, &read), (StatusCode::OK, first), "{resource}");
        let (status, outcome) = fhir.get(&format!("/{resource}/{JOSE}")).await;
        assert_eq!((status, issue(&outcome).0), (StatusCode::NOT_FOUND, "not-found"), "{resource}");
    }
    let (_, garcia) = fhir.get("/Practitioner").await;
    let names: Vec<&Value> =
        garcia["entry"].as_array().unwrap().iter().map(|e| &e["resource"]["name"][0]["family"]).collect();
    assert!(names.iter().any(|n| *n == "García"), "{names:?}");
}

#[tokio::test]
async fn prescriptions_are_medication_requests_with_their_prescriber() {
    let fhir = Fhir::new().await;
    let pid = fhir.db.scalar("SELECT patient_id FROM prescriptions WHERE uuid IS NOT NULL GROUP BY patient_id ORDER BY COUNT(*) DESC, patient_id LIMIT 1").await;
    let patient = patient_id(&fhir.db, pid).await;
    let (status, bundle) = fhir.get(&format!("/MedicationRequest?patient={patient}")).await;
    assert_eq!(status, StatusCode::OK, "{bundle}");
    let expected = uuids(&fhir.db, &format!("SELECT uuid FROM prescriptions WHERE patient_id = {pid}")).await;
    assert_eq!(entry_ids(&bundle), expected);
    let first = &bundle["entry"][0]["resource"];
    assert_eq!(first["subject"]["reference"], format!("Patient/{patient}"));
    assert!(["active", "stopped"].contains(&first["status"].as_str().unwrap()));
    let prescriber =
        first["requester"]["reference"].as_str().expect("the prescriber is a Practitioner served");
    assert_eq!(fhir.get(&format!("/{prescriber}")).await.0, StatusCode::OK);
    let id = first["id"].as_str().unwrap();
    let audited = format!("SELECT COUNT(*) FROM log WHERE event = 'order-select' AND patient_id = {pid}");
    let before = fhir.db.scalar(&audited).await;
    let (status, read) = fhir.get(&format!("/MedicationRequest/{id}")).await;
    assert_eq!((status, &read), (StatusCode::OK, first));
    assert_eq!(fhir.db.scalar(&audited).await, before + 1);
}

#[tokio::test]
async fn calendar_appointments_are_appointments_with_openemrs_ids_status_and_participants() {
    let fhir = Fhir::new().await;
    let garcia = fhir.db.scalar("SELECT id FROM users WHERE username = 'drgarcia'").await;
    let mine = format!("pc_eventstatus = 1 AND pc_aid = '{garcia}' AND pc_pid <> '' AND uuid IS NOT NULL");
    let pid = fhir
        .db
        .scalar(&format!(
            "SELECT CAST(pc_pid AS SIGNED) FROM openemr_postcalendar_events WHERE {mine} \
             GROUP BY pc_pid ORDER BY COUNT(*) DESC, pc_pid LIMIT 1"
        ))
        .await;
    let patient = patient_id(&fhir.db, pid).await;
    let (status, bundle) = fhir.get(&format!("/Appointment?patient={patient}&_count=100")).await;
    assert_eq!(status, StatusCode::OK, "{bundle}");
    let expected = uuids(
        &fhir.db,
        &format!("SELECT uuid FROM openemr_postcalendar_events WHERE {mine} AND pc_pid = '{pid}'"),
    )
    .await;
    assert!(!expected.is_empty());
    assert_eq!(entry_ids(&bundle), expected, "a physician sees their own calendar's appointments");
    assert_eq!(bundle["total"].as_u64(), Some(expected.len() as u64));

    let first = &bundle["entry"][0]["resource"];
    let id = first["id"].as_str().unwrap();
    let code = fhir
        .db
        .scalar_text(&format!(
            "SELECT pc_apptstatus FROM openemr_postcalendar_events WHERE uuid = UNHEX(REPLACE('{id}', '-', ''))"
        ))
        .await;
    assert_eq!(first["status"], mmt_sidecar::domain::fhir::appointment_status(&code), "{first}");
    let actors: Vec<&str> = first["participant"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["type"][0]["coding"][0]["code"].as_str().unwrap())
        .collect();
    assert_eq!(&actors[..2], ["PART", "PPRF"], "{first}");
    assert_eq!(first["participant"][0]["actor"]["reference"], format!("Patient/{patient}"));
    let provider =
        first["participant"][1]["actor"]["reference"].as_str().expect("the provider is a Practitioner");
    assert_eq!(fhir.get(&format!("/{provider}")).await.0, StatusCode::OK);
    assert!(first["start"].as_str().is_some() && first["end"].as_str().is_some(), "{first}");

    let audited =
        format!("SELECT COUNT(*) FROM log WHERE event = 'scheduling-select' AND patient_id = {pid}");
    let before = fhir.db.scalar(&audited).await;
    let (status, read) = fhir.get(&format!("/Appointment/{id}")).await;
    assert_eq!(status, StatusCode::OK, "{read}");
    assert_eq!(
        (&read["id"], &read["status"], &read["start"]),
        (&first["id"], &first["status"], &first["start"])
    );
    assert_eq!(fhir.db.scalar(&audited).await, before + 1);

    let (status, paged) = fhir.get(&format!("/Appointment?patient={patient}&_count=1")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(paged["entry"].as_array().unwrap().len(), 1);
    let more = paged["link"].as_array().unwrap().iter().any(|l| l["relation"] == "next");
    assert_eq!(more, expected.len() > 1, "{paged}");
    let (_, none) = fhir.get(&format!("/Appointment?patient={patient}&date=ge2999-01-01")).await;
    assert_eq!(none["total"], 0, "{none}");
    let (status, outcome) = fhir.get(&format!("/Appointment?patient={patient}&date=soon")).await;
    assert_eq!(
        (status, outcome["issue"][0]["expression"][0].as_str()),
        (StatusCode::BAD_REQUEST, Some("date"))
    );
    let (status, outcome) = fhir.get(&format!("/Appointment/{JOSE}")).await;
    assert_eq!((status, outcome["resourceType"].as_str()), (StatusCode::NOT_FOUND, Some("OperationOutcome")));
}

#[tokio::test]
async fn every_fhir_operation_but_metadata_answers_401_outcomes_without_credentials() {
    let fhir = Fhir::new().await;
    let spec: Value =
        fhir.db.client().get("/fhir/r4/openapi.json").send().await.json().await.value().deserialize();
    let mut walked = 0;
    for (path, item) in spec["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let concrete = path.replace("{id}", JOSE);
            let (status, outcome) = match method.as_str() {
                "get" => fhir.get_as(None, &concrete).await,
                _ => fhir.send_as(None, method, &concrete, Some(serde_json::json!({}))).await,
            };
            if op["operationId"] == "fhir_metadata" {
                assert_eq!(status, StatusCode::OK);
                continue;
            }
            assert_eq!((status, issue(&outcome).0), (StatusCode::UNAUTHORIZED, "login"), "{path}");
            walked += 1;
        }
    }
    assert!(walked >= 16, "{walked} operations walked");
}

/// A provider's calendar is a Schedule with the provider's id, and its free starts for a visit
/// category are Slots: the same starts the scheduling API offers, gone once booked.
#[tokio::test]
async fn a_providers_free_starts_are_slots_of_their_schedule_until_booked() {
    let fhir = Fhir::new().await;
    let garcia = uuids(&fhir.db, "SELECT uuid FROM users WHERE username = 'drgarcia'").await;
    let garcia = garcia.into_iter().next().unwrap();
    let (status, schedules) = fhir.get(&format!("/Schedule?actor=Practitioner/{garcia}")).await;
    assert_eq!((status, entry_ids(&schedules)), (StatusCode::OK, [garcia.clone()].into()), "{schedules}");
    let (_, schedule) = fhir.get(&format!("/Schedule/{garcia}")).await;
    assert_eq!(schedule["actor"][0]["reference"], format!("Practitioner/{garcia}"), "{schedule}");
    let (_, every) = fhir.get("/Schedule").await;
    assert!(entry_ids(&every).contains(&garcia) && every["entry"].as_array().unwrap().len() > 1);

    let day = crate::scheduling::tuesday_ahead();
    let query =
        format!("/Slot?schedule=Schedule/{garcia}&service-type=5&start=ge{day}&start=le{day}&_count=100");
    let (status, slots) = fhir.get(&query).await;
    assert_eq!(status, StatusCode::OK, "{slots}");
    let starts: Vec<String> = slots["entry"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["resource"]["start"].as_str().unwrap()[11..16].to_string())
        .collect();
    let api = crate::patients::Api { db: fhir.db.clone_handle(), token: fhir.token.clone() };
    let (_, offered) =
        api.get(&format!("/api/appointments/slots/?provider=2&category=5&from={day}&to={day}")).await;
    let offered: Vec<String> = offered["slots"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["start"].as_str().unwrap()[11..16].to_string())
        .collect();
    assert_eq!(starts, offered, "the Slots are the scheduling API's free starts");
    assert_eq!((slots["total"].as_u64(), starts.first().map(String::as_str)), (Some(32), Some("08:00")));
    let first = &slots["entry"][0]["resource"];
    assert_eq!(
        (first["status"].as_str(), first["schedule"]["reference"].as_str()),
        (Some("free"), Some(format!("Schedule/{garcia}").as_str()))
    );
    let constant = fhir
        .db
        .scalar_text("SELECT pc_constant_id FROM openemr_postcalendar_categories WHERE pc_catid = 5")
        .await;
    assert_eq!(first["serviceType"][0]["coding"][0]["code"].as_str(), Some(constant.as_str()), "{first}");
    let by_code =
        query.replace("service-type=5", &format!("service-type=urn:openemr:appointment-category|{constant}"));
    assert_eq!(fhir.get(&by_code).await.1["total"], 32);

    let id = first["id"].as_str().unwrap();
    let (status, read) = fhir.get(&format!("/Slot/{id}")).await;
    assert_eq!((status, &read["start"]), (StatusCode::OK, &first["start"]), "{read}");
    let pid = fhir.db.scalar("SELECT MIN(pid) FROM patient_data").await;
    let booking = serde_json::json!({"pid": pid, "provider_id": 2, "facility_id": 3, "category_id": 5, "start": format!("{day}T08:00")});
    let (status, booked) = api.call("POST", "/api/appointments/", Some(booking)).await;
    assert_eq!(status, StatusCode::CREATED, "{booked}");
    let (status, gone) = fhir.get(&format!("/Slot/{id}")).await;
    assert_eq!(
        (status, issue(&gone).0),
        (StatusCode::NOT_FOUND, "not-found"),
        "a booked slot is no longer a Slot"
    );
    assert_eq!(fhir.get(&query).await.1["total"], 31);

    for (bad, parameter) in [
        ("/Slot?service-type=5".to_string(), "schedule"),
        (format!("/Slot?schedule={garcia}"), "service-type"),
        (format!("/Slot?schedule={garcia}&service-type=no_such_category"), "service-type"),
        (format!("/Slot?schedule={garcia}&service-type=5&start=soon"), "start"),
    ] {
        let (status, outcome) = fhir.get(&bad).await;
        assert_eq!(
            (status, outcome["issue"][0]["expression"][0].as_str()),
            (StatusCode::BAD_REQUEST, Some(parameter)),
            "{bad}: {outcome}"
        );
    }
    let (_, busy) = fhir.get(&format!("{query}&status=busy")).await;
    assert_eq!(busy["total"], 0, "only free Slots are served");
    for unknown in [
        "/Slot/nonsense",
        "/Schedule/00000000-0000-4000-8000-000000000000",
        &format!("/Slot/{garcia}.209901010800.5.15"),
    ] {
        assert_eq!(fhir.get(unknown).await.0, StatusCode::NOT_FOUND, "{unknown}");
    }
}

/// A FHIR client books a free Slot, or a start with the provider and category, through the
/// scheduling API's own path: OpenEMR's calendar row, no double booking, the Slot gone.
#[tokio::test]
async fn an_appointment_is_booked_by_slot_or_by_start_and_never_twice() {
    let fhir = Fhir::new().await;
    let garcia = uuids(&fhir.db, "SELECT uuid FROM users WHERE username = 'drgarcia'")
        .await
        .into_iter()
        .next()
        .unwrap();
    let day = crate::scheduling::tuesday_ahead();
    let query = format!("/Slot?schedule={garcia}&service-type=5&start=ge{day}&start=le{day}");
    let (_, slots) = fhir.get(&query).await;
    let slot = slots["entry"][1]["resource"]["id"].as_str().unwrap().to_string();
    let patient = serde_json::json!({"actor": {"reference": format!("Patient/{JOSE}")}});
    let by_slot = serde_json::json!({
        "resourceType": "Appointment", "status": "booked", "comment": "Knee review",
        "slot": [{"reference": format!("Slot/{slot}")}], "participant": [patient]
    });
    let (status, booked) = fhir.post("/Appointment", by_slot.clone()).await;
    assert_eq!(status, StatusCode::CREATED, "{booked}");
    // OpenEMR's default status, `-`, which its own FHIR API reads as proposed.
    assert_eq!(
        (booked["status"].as_str(), booked["comment"].as_str()),
        (Some("proposed"), Some("Knee review")),
    );
    assert_eq!(booked["participant"][0]["actor"]["reference"], format!("Patient/{JOSE}"));
    assert_eq!(booked["participant"][1]["actor"]["reference"], format!("Practitioner/{garcia}"));
    let id = booked["id"].as_str().unwrap();
    let row = fhir
        .db
        .scalar_text(&format!(
            "SELECT CONCAT(pc_pid, ' ', pc_aid, ' ', pc_catid, ' ', pc_eventDate, ' ', pc_startTime, ' ', pc_duration) \
             FROM openemr_postcalendar_events WHERE uuid = UNHEX(REPLACE('{id}', '-', ''))"
        ))
        .await;
    assert_eq!(row, format!("1 2 5 {day} 08:15:00 900"), "written as OpenEMR's calendar writes it");
    assert_eq!(fhir.get(&format!("/Appointment/{id}")).await.1["id"], id);
    let (_, after) = fhir.get(&query).await;
    assert_eq!(after["total"].as_u64(), slots["total"].as_u64().map(|t| t - 1), "the Slot is gone");

    let (status, twice) = fhir.post("/Appointment", by_slot).await;
    assert_eq!((status, issue(&twice).0), (StatusCode::CONFLICT, "conflict"), "{twice}");

    let by_start = serde_json::json!({
        "resourceType": "Appointment", "status": "pending",
        "start": format!("{}", chrono::NaiveDateTime::new(day, chrono::NaiveTime::from_hms_opt(9, 0, 0).unwrap()).and_local_timezone(chrono::Local).unwrap().to_rfc3339()),
        "minutesDuration": 30,
        "appointmentType": {"coding": [{"system": "urn:openemr:appointment-category", "code": "5"}]},
        "participant": [patient, {"actor": {"reference": format!("Practitioner/{garcia}")}}]
    });
    let (status, held) = fhir.post("/Appointment", by_start).await;
    assert_eq!(
        (status, held["status"].as_str(), held["minutesDuration"].as_i64()),
        (StatusCode::CREATED, Some("pending"), Some(30)),
        "{held}"
    );

    for (body, element) in [
        (
            serde_json::json!({"resourceType": "Appointment", "status": "fulfilled", "participant": []}),
            "status",
        ),
        (
            serde_json::json!({"resourceType": "Appointment", "status": "booked", "participant": []}),
            "participant",
        ),
        (
            serde_json::json!({"resourceType": "Appointment", "status": "booked", "slot": [{"reference": "Slot/nope"}], "participant": [{"actor": {"reference": format!("Patient/{JOSE}")}}]}),
            "slot",
        ),
        (serde_json::json!({"resourceType": "Patient", "status": "booked"}), "resourceType"),
    ] {
        let (status, outcome) = fhir.post("/Appointment", body).await;
        assert_eq!(
            (status, outcome["issue"][0]["expression"][0].as_str()),
            (StatusCode::BAD_REQUEST, Some(element)),
            "{outcome}"
        );
    }
}

/// A FHIR client records vital signs into a visit: a new vitals form written as OpenEMR's is,
/// read back as the Observation it asked for, metric units converted to the US ones stored.
#[tokio::test]
async fn vital_signs_are_recorded_into_the_visit_they_name() {
    let fhir = Fhir::new().await;
    let garcia = fhir.db.scalar("SELECT id FROM users WHERE username = 'drgarcia'").await;
    let (pid, number) = {
        let pid = fhir
            .db
            .scalar(&format!("SELECT MIN(pid) FROM form_encounter WHERE provider_id = {garcia}"))
            .await;
        let number = fhir
            .db
            .scalar(&format!(
                "SELECT MAX(encounter) FROM form_encounter WHERE pid = {pid} AND provider_id = {garcia}"
            ))
            .await;
        (pid, number)
    };
    let patient = patient_id(&fhir.db, pid).await;
    let encounter = uuids(&fhir.db, &format!("SELECT uuid FROM form_encounter WHERE encounter = {number}"))
        .await
        .into_iter()
        .next()
        .unwrap();
    let loinc = |code: &str| serde_json::json!({"coding": [{"system": "http://loinc.org", "code": code}]});
    let weight = serde_json::json!({
        "resourceType": "Observation", "status": "final", "code": loinc("29463-7"),
        "subject": {"reference": format!("Patient/{patient}")},
        "encounter": {"reference": format!("Encounter/{encounter}")},
        "effectiveDateTime": "2026-11-20T09:30:00+00:00",
        "valueQuantity": {"value": 70.0, "unit": "kg", "system": "http://unitsofmeasure.org", "code": "kg"}
    });
    let before = fhir.db.scalar(&format!("SELECT COUNT(*) FROM form_vitals WHERE pid = {pid}")).await;
    let (status, created) = fhir.post("/Observation", weight.clone()).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(created["code"]["coding"][0]["code"], "29463-7");
    assert_eq!(created["valueQuantity"]["code"], "[lb_av]");
    assert_eq!(
        created["valueQuantity"]["value"].as_f64(),
        Some(154.32),
        "70 kg stored as OpenEMR stores it, in lb"
    );
    assert_eq!(
        fhir.db.scalar(&format!("SELECT COUNT(*) FROM form_vitals WHERE pid = {pid}")).await,
        before + 1
    );
    let forms = fhir
        .db
        .scalar(&format!(
            "SELECT COUNT(*) FROM forms WHERE formdir = 'vitals' AND encounter = {number} AND deleted = 0"
        ))
        .await;
    assert!(forms >= 1, "the vitals form is registered in the encounter as OpenEMR registers it");
    let id = created["id"].as_str().unwrap();
    assert_eq!(fhir.get(&format!("/Observation/{id}")).await.1["valueQuantity"], created["valueQuantity"]);

    let pressure = serde_json::json!({
        "resourceType": "Observation", "status": "final", "code": loinc("85354-9"),
        "subject": {"reference": format!("Patient/{patient}")},
        "encounter": {"reference": format!("Encounter/{encounter}")},
        "component": [
            {"code": loinc("8480-6"), "valueQuantity": {"value": 128, "code": "mm[Hg]"}},
            {"code": loinc("8462-4"), "valueQuantity": {"value": 82, "code": "mm[Hg]"}}
        ]
    });
    let (status, bp) = fhir.post("/Observation", pressure).await;
    assert_eq!(status, StatusCode::CREATED, "{bp}");
    let values: Vec<f64> = bp["component"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["valueQuantity"]["value"].as_f64().unwrap())
        .collect();
    assert_eq!(values, [128.0, 82.0]);

    let other = patient_id(
        &fhir.db,
        fhir.db.scalar(&format!("SELECT MIN(pid) FROM patient_data WHERE pid <> {pid}")).await,
    )
    .await;
    let mut cases = Vec::new();
    let mut wrong_patient = weight.clone();
    wrong_patient["subject"]["reference"] = format!("Patient/{other}").into();
    cases.push((wrong_patient, "encounter"));
    let mut grams = weight.clone();
    grams["valueQuantity"]["code"] = "g".into();
    cases.push((grams, "valueQuantity"));
    let mut glucose = weight.clone();
    glucose["code"] = loinc("2345-7");
    cases.push((glucose, "valueQuantity"));
    let mut no_visit = weight.clone();
    no_visit.as_object_mut().unwrap().remove("encounter");
    cases.push((no_visit, "encounter"));
    let mut heavy = weight.clone();
    heavy["valueQuantity"]["value"] = 5000.into();
    cases.push((heavy, "valueQuantity"));
    let mut systolic_alone = weight;
    systolic_alone["code"] = loinc("8480-6");
    cases.push((systolic_alone, "code"));
    for (body, element) in cases {
        let (status, outcome) = fhir.post("/Observation", body).await;
        assert_eq!(
            (status, outcome["issue"][0]["expression"][0].as_str()),
            (StatusCode::BAD_REQUEST, Some(element)),
            "{outcome}"
        );
    }
    assert_eq!(
        fhir.db.scalar(&format!("SELECT COUNT(*) FROM form_vitals WHERE pid = {pid}")).await,
        before + 2,
        "nothing was written for a refused Observation"
    );
}
