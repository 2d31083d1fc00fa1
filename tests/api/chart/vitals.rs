use poem::http::StatusCode;
use serde_json::{Value, json};

use super::{FRONT, GARCIA, NURSE, OKAFOR, PID, audits, field_errors, row};
use crate::{patients::Api, transcriptions::encounter_for};

fn six(v: f64) -> String {
    format!("{v:.6}")
}

async fn record(api: &Api, encounter: i64, body: Value) -> Value {
    let (status, out) = api.call("POST", &format!("/api/encounters/{encounter}/vitals/"), Some(body)).await;
    assert_eq!(status, StatusCode::CREATED, "{out}");
    out
}

/// interface/forms/vitals: C_FormVitals::default_action_process + VitalsService::saveVitalsArray
/// + addForm, for a physician whose users.authorized = 1, given the browser's US values.
#[tokio::test]
async fn recorded_vitals_are_the_rows_openemrs_vitals_form_writes() {
    let api = Api::as_user(GARCIA).await;
    let encounter = encounter_for(&api, PID).await;
    let out = record(
        &api,
        encounter,
        json!({"units": "metric", "weight": 80.0, "height": 180.0, "temperature": 37.0, "temp_method": "Oral",
               "bps": 128, "bpd": 82, "pulse": 72, "respiration": 16, "oxygen_saturation": 98,
               "note": "after exercise", "interpretations": {"bps": "H"}}),
    )
    .await;
    let id = out["id"].as_i64().unwrap();
    let (lb, inch) = (80.0 / 0.45359237, 180.0 / 2.54);
    let (lb, inch) = (six(lb).parse::<f64>().unwrap(), six(inch).parse::<f64>().unwrap());
    let bmi = lb / inch / inch * 703.0;
    // Columns: pid user groupname authorized activity bps bpd weight height temperature temp_method
    // pulse respiration note BMI BMI_status waist_circ head_circ oxygen_saturation oxygen_flow_rate
    // external_id ped_weight_height ped_bmi ped_head_circ inhaled_oxygen_concentration, uuid registered.
    let got = row(
        &api,
        &format!(
            "SELECT CAST(pid AS CHAR), user, groupname, CAST(authorized AS CHAR), CAST(activity AS CHAR), bps, bpd, \
             CAST(weight AS CHAR), CAST(height AS CHAR), CAST(temperature AS CHAR), temp_method, CAST(pulse AS CHAR), \
             CAST(respiration AS CHAR), note, CAST(BMI AS CHAR), BMI_status, CAST(waist_circ AS CHAR), \
             CAST(head_circ AS CHAR), CAST(oxygen_saturation AS CHAR), CAST(oxygen_flow_rate AS CHAR), external_id, \
             CAST(ped_weight_height AS CHAR), CAST(ped_bmi AS CHAR), CAST(ped_head_circ AS CHAR), \
             CAST(inhaled_oxygen_concentration AS CHAR), \
             (SELECT table_name FROM uuid_registry r WHERE r.uuid = v.uuid) FROM form_vitals v WHERE id = {id}"
        ),
    )
    .await;
    let expected: Vec<Option<String>> = [
        Some(PID.to_string()),
        Some("drgarcia".into()),
        Some("Default".into()),
        Some("1".into()),
        Some("1".into()),
        Some("128".into()),
        Some("82".into()),
        Some(six(lb)),
        Some(six(inch)),
        Some("98.600000".into()),
        Some("Oral".into()),
        Some("72.000000".into()),
        Some("16.000000".into()),
        Some("after exercise".into()),
        Some(six(bmi)),
        Some("Normal".into()),
        Some("0.000000".into()),
        Some("0.000000".into()),
        Some("98.00".into()),
        Some("0.000000".into()),
        None,
        Some("0.00".into()),
        Some("0.00".into()),
        Some("0.00".into()),
        Some("0.00".into()),
        Some("form_vitals".into()),
    ]
    .into();
    assert_eq!(got, expected);
    // forms: encounter form_name form_id pid user groupname authorized deleted formdir therapy_group_id
    let form = row(
        &api,
        &format!(
            "SELECT CAST(encounter AS CHAR), form_name, CAST(form_id AS CHAR), CAST(pid AS CHAR), user, groupname, \
             CAST(authorized AS CHAR), CAST(deleted AS CHAR), formdir, CAST(therapy_group_id AS CHAR) \
             FROM forms WHERE formdir = 'vitals' AND form_id = {id}"
        ),
    )
    .await;
    let strings = |v: &[&str]| v.iter().map(|s| Some(s.to_string())).collect::<Vec<_>>();
    let mut want = strings(&[
        &encounter.to_string(),
        "Vitals",
        &id.to_string(),
        &PID.to_string(),
        "drgarcia",
        "Default",
        "1",
        "0",
        "vitals",
    ]);
    want.push(None);
    assert_eq!(form, want);
    // form_vital_details: vitals_column interpretation_list_id _option_id _codes _title reason_*
    let detail = row(
        &api,
        &format!(
            "SELECT vitals_column, interpretation_list_id, interpretation_option_id, interpretation_codes, \
             interpretation_title, reason_code, reason_description, reason_status FROM form_vital_details WHERE form_id = {id}"
        ),
    )
    .await;
    let mut want = strings(&["bps", "vitals-interpretation", "H", "H", "High"]);
    want.extend([None, None, None]);
    assert_eq!(detail, want);
    // uuid_mapping as UuidMapping::createAllMissingResourceUuids: one registered Observation per code.
    let mapped = api
        .db
        .scalar(&format!(
            "SELECT COUNT(DISTINCT m.resource_path) FROM uuid_mapping m JOIN form_vitals v ON v.uuid = m.target_uuid \
             JOIN uuid_registry r ON r.uuid = m.uuid AND r.table_name = 'uuid_mapping' AND r.table_id = 'id' \
             AND r.mapped = 1 WHERE v.id = {id} AND m.resource = 'Observation' AND m.`table` = 'form_vitals' \
             AND m.resource_path LIKE 'category=vital-signs&code=%' AND m.created IS NOT NULL"
        ))
        .await;
    assert_eq!(mapped, 15);
    assert!(
        api.db
            .scalar(&format!(
                "SELECT COUNT(*) FROM uuid_mapping m JOIN form_vitals v ON v.uuid = m.target_uuid \
                 WHERE v.id = {id} AND m.resource_path IN ('category=vital-signs&code=85354-9', \
                 'category=vital-signs&code=29463-7', 'category=vital-signs&code=39156-5')"
            ))
            .await
            == 3
    );
    assert_eq!(audits(&api, "patient-record-insert", "Vitals").await, 1);
    assert_eq!(
        audits(&api, "patient-record-insert", "Encounter Form").await,
        2,
        "encounter and vitals forms"
    );
    assert_eq!(out["bmi_status"], "Normal");
    assert_eq!(out["interpretations"]["bps"]["title"], "High");
}

#[tokio::test]
async fn values_round_trip_in_the_unit_asked_for_and_default_to_openemrs_setting() {
    let api = Api::as_user(GARCIA).await;
    let encounter = encounter_for(&api, PID).await;
    let body =
        json!({"units": "metric", "weight": 72.5, "height": 168.0, "temperature": 36.8, "head_circ": 56.0});
    let id = record(&api, encounter, body.clone()).await["id"].as_i64().unwrap();
    let (_, metric) = api.get(&format!("/api/vitals/{id}/?units=metric")).await;
    for field in ["weight", "height", "temperature", "head_circ"] {
        let back = metric[field].as_f64().unwrap();
        assert!((back - body[field].as_f64().unwrap()).abs() < 1e-5, "{field}: {back}");
    }
    assert_eq!(metric["unit_of"]["weight"], "kg");
    let (_, us) = api.get(&format!("/api/vitals/{id}/")).await;
    assert_eq!(us["units"], "us", "OpenEMR's default units_of_measurement is 1 (US first)");
    assert!((us["temperature"].as_f64().unwrap() - 98.24).abs() < 1e-6);
    assert!((us["weight"].as_f64().unwrap() - 72.5 / 0.45359237).abs() < 1e-5);
    sqlx::query("INSERT INTO globals (gl_name, gl_index, gl_value) VALUES ('units_of_measurement', 0, '4')")
        .execute(&api.db.pool)
        .await
        .unwrap();
    let (_, default) = api.get(&format!("/api/vitals/{id}/")).await;
    assert_eq!(default["units"], "metric");
    assert!((default["weight"].as_f64().unwrap() - 72.5).abs() < 1e-5);
    // A US body round-trips unchanged.
    let us_id =
        record(&api, encounter, json!({"weight": 180.25, "height": 70.5})).await["id"].as_i64().unwrap();
    let (_, back) = api.get(&format!("/api/vitals/{us_id}/?units=us")).await;
    assert_eq!((back["weight"].as_f64(), back["height"].as_f64()), (Some(180.25), Some(70.5)));
}

#[tokio::test]
async fn bmi_and_its_status_are_computed_as_openemr_does_and_follow_an_edit() {
    let api = Api::as_user(GARCIA).await;
    let encounter = encounter_for(&api, PID).await;
    let out = record(&api, encounter, json!({"weight": 200.0, "height": 70.0})).await;
    let expected = 200.0 / 70.0 / 70.0 * 703.0;
    assert!((out["bmi"].as_f64().unwrap() - expected).abs() < 1e-5);
    assert_eq!(out["bmi_status"], "Overweight");
    let id = out["id"].as_i64().unwrap();
    let (status, edited) =
        api.call("PATCH", &format!("/api/vitals/{id}/"), Some(json!({"weight": 260.0}))).await;
    assert_eq!(status, StatusCode::OK, "{edited}");
    assert_eq!(edited["height"].as_f64(), Some(70.0), "unsent measurements are kept");
    assert!((edited["bmi"].as_f64().unwrap() - 260.0 / 70.0 / 70.0 * 703.0).abs() < 1e-5);
    assert_eq!(edited["bmi_status"], "Obesity II");
    assert_eq!(audits(&api, "patient-record-update", "Vitals").await, 1);
    let none = record(&api, encounter, json!({"pulse": 60})).await;
    assert!(none.get("bmi").is_none() && none.get("bmi_status").is_none());
}

#[tokio::test]
async fn values_outside_openemrs_ranges_are_422_naming_the_field_and_write_nothing() {
    let api = Api::as_user(GARCIA).await;
    let encounter = encounter_for(&api, PID).await;
    let before = api.db.scalar("SELECT COUNT(*) FROM form_vitals").await;
    let path = format!("/api/encounters/{encounter}/vitals/");
    for (body, fields) in [
        (json!({"temperature": 121}), vec!["temperature"]),
        (json!({"units": "metric", "weight": 911, "temperature": 49}), vec!["weight", "temperature"]),
        (json!({"bps": -1, "oxygen_saturation": 101}), vec!["bps", "oxygen_saturation"]),
        (json!({"units": "imperial", "pulse": 70}), vec!["units"]),
        (json!({"pulse": 70, "interpretations": {"pulse": "Z"}}), vec!["interpretations.pulse"]),
        (json!({"note": "x"}), vec!["weight"]),
    ] {
        let (status, out) = api.call("POST", &path, Some(body.clone())).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}: {out}");
        let mut got = field_errors(&out);
        got.sort();
        let mut want: Vec<String> = fields.iter().map(|s| s.to_string()).collect();
        want.sort();
        assert_eq!(got, want, "{out}");
    }
    let (_, out) =
        api.call("POST", &path, Some(json!({"pulse": 70, "interpretations": {"pulse": "Z"}}))).await;
    assert!(out["errors"][0]["message"].as_str().unwrap().contains("N, H, L"), "{out}");
    assert_eq!(api.db.scalar("SELECT COUNT(*) FROM form_vitals").await, before);
}

#[tokio::test]
async fn vitals_follow_encounter_access_and_sensitivity() {
    let garcia = Api::as_user(GARCIA).await;
    let encounter = encounter_for(&garcia, PID).await;
    let id = record(&garcia, encounter, json!({"pulse": 70})).await["id"].as_i64().unwrap();
    let front = garcia.as_other(FRONT).await;
    let (status, _) = front.get(&format!("/api/vitals/{id}/")).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "front office has no encounters|notes");
    let (status, _) =
        front.call("POST", &format!("/api/encounters/{encounter}/vitals/"), Some(json!({"pulse": 1}))).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let nurse = garcia.as_other(NURSE).await;
    let (status, _) = nurse.get(&format!("/api/vitals/{id}/")).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "another provider's encounter needs encounters|notes_a");
    let okafor = garcia.as_other(OKAFOR).await;
    assert_eq!(okafor.get(&format!("/api/vitals/{id}/")).await.0, StatusCode::OK, "encounters|notes_a");
    // The nurse's own encounter is open to them until it is made sensitive.
    let own = encounter_for(&garcia, PID).await;
    let nurse_id = garcia.db.scalar("SELECT id FROM users WHERE username = 'nkim'").await;
    let set = |sql: String| {
        let pool = garcia.db.pool.clone();
        async move { sqlx::query(sqlx::AssertSqlSafe(sql)).execute(&pool).await.unwrap() }
    };
    set(format!("UPDATE form_encounter SET provider_id = {nurse_id} WHERE encounter = {own}")).await;
    let nurse_reading = record(&nurse, own, json!({"pulse": 64})).await["id"].as_i64().unwrap();
    set(format!("UPDATE form_encounter SET sensitivity = 'high' WHERE encounter = {own}")).await;
    assert_eq!(
        nurse.get(&format!("/api/vitals/{nurse_reading}/")).await.0,
        StatusCode::FORBIDDEN,
        "sensitivity"
    );
    let (status, _) =
        nurse.call("POST", &format!("/api/encounters/{own}/vitals/"), Some(json!({"pulse": 1}))).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, trend) = nurse.get(&format!("/api/patients/{PID}/vitals/")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(trend["items"].as_array().unwrap().is_empty(), "{trend}");
    assert_eq!(garcia.get(&format!("/api/vitals/{nurse_reading}/")).await.0, StatusCode::OK);
}

#[tokio::test]
async fn the_trend_lists_a_patients_readings_in_a_date_window() {
    let api = Api::as_user(GARCIA).await;
    let encounter = encounter_for(&api, PID).await;
    for (date, weight) in [("2026-01-10", 190.0), ("2026-02-10", 188.0), ("2026-03-10", 185.5)] {
        record(&api, encounter, json!({"date": date, "weight": weight})).await;
    }
    let (status, out) = api.get(&format!("/api/patients/{PID}/vitals/?from=2026-01-15&to=2026-03-10")).await;
    assert_eq!(status, StatusCode::OK, "{out}");
    let weights: Vec<f64> =
        out["items"].as_array().unwrap().iter().map(|v| v["weight"].as_f64().unwrap()).collect();
    assert_eq!(weights, [188.0]);
    let (_, all) = api.get(&format!("/api/patients/{PID}/vitals/?from=2026-01-01")).await;
    assert_eq!(all["items"].as_array().unwrap().len(), 3);
    let (status, out) = api.get(&format!("/api/patients/{PID}/vitals/?from=yesterday")).await;
    assert_eq!((status, field_errors(&out)), (StatusCode::UNPROCESSABLE_ENTITY, vec!["from".to_string()]));
    assert!(audits(&api, "patient-record-select", "Vitals").await >= 2);
}
