use chrono::{Datelike, Days, Local, NaiveDate, Weekday};
use poem::http::{Method, StatusCode};
use serde_json::{Value, json};

use crate::{
    auth::tokens,
    helpers::TestDb,
    patients::{Api, send},
};

const GARCIA: i64 = 2;
const OKAFOR: i64 = 3;

/// A Tuesday at least two weeks ahead: inside the demo providers' repeating In Office hours, on
/// no holiday and clear of the demo appointments (which start after lunch).
pub(crate) fn tuesday_ahead() -> NaiveDate {
    let mut day = Local::now().date_naive() + Days::new(14);
    while day.weekday() != Weekday::Tue {
        day = day + Days::new(1);
    }
    day
}

async fn pid(api: &Api) -> i64 {
    api.db.scalar("SELECT MIN(pid) FROM patient_data").await
}

fn booking(pid: i64, day: NaiveDate, time: &str) -> Value {
    json!({"pid": pid, "provider_id": GARCIA, "facility_id": 3, "category_id": 5, "start": format!("{day}T{time}")})
}

async fn book(api: &Api, body: Value) -> (StatusCode, Value) {
    api.call("POST", "/api/appointments/", Some(body)).await
}

async fn slots(api: &Api, day: NaiveDate) -> Vec<String> {
    let (status, body) =
        api.get(&format!("/api/appointments/slots/?provider={GARCIA}&category=5&from={day}&to={day}")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["slots"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["start"].as_str().unwrap()[11..16].to_string())
        .collect()
}

/// PHP's own `serialize()` of an array literal.
fn php(array: &str) -> String {
    let out = std::process::Command::new("php")
        .args(["-r", &format!("echo serialize({array});")])
        .output()
        .expect("php is required (Debian php-cli; scripts/test.sh installs it)");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

/// A booking through one app (a replica), as `bearer`.
async fn post_booking(
    client: &poem::test::TestClient<impl poem::Endpoint>,
    bearer: &str,
    body: &Value,
) -> (StatusCode, Value) {
    let resp = client.post("/api/appointments/").header("authorization", bearer).body_json(body).send().await;
    let status = resp.0.status();
    let text = resp.0.into_body().into_string().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

async fn rows_at(db: &TestDb, day: NaiveDate, time: &str) -> i64 {
    db.scalar(&format!(
        "SELECT COUNT(*) FROM openemr_postcalendar_events WHERE pc_aid = '{GARCIA}' AND pc_eventDate = '{day}' \
         AND pc_startTime = '{time}:00'"
    ))
    .await
}

#[tokio::test]
async fn a_booking_is_written_as_openemrs_calendar_writes_it_and_shows_in_its_calendar_query() {
    let api = Api::admin().await;
    let (day, pid) = (tuesday_ahead(), pid(&api).await);
    let mut body = booking(pid, day, "10:00");
    body["reason"] = json!("Blood pressure review");
    let (status, created) = book(&api, body).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let eid = created["id"].as_i64().unwrap();
    assert_eq!(created["end"], format!("{day}T10:15:00"));
    assert_eq!(created["fhir_status"], "proposed");
    // Column by column, as InsertEvent() writes them, plus pc_eventstatus = 1 and a NULL end date.
    let row: String = sqlx::query_scalar(
        "SELECT CONCAT_WS('|', pc_catid, pc_multiple, pc_aid, pc_pid, pc_title, pc_duration, pc_startTime, pc_endTime, \
         COALESCE(pc_endDate, 'NULL'), pc_recurrtype, pc_recurrfreq, pc_alldayevent, pc_eventstatus, pc_sharing, \
         pc_apptstatus, pc_prefcatid, pc_facility, pc_billing_location, pc_informant, pc_hometext, pc_room, pc_gid) \
         FROM openemr_postcalendar_events WHERE pc_eid = ?",
    )
    .bind(eid)
    .fetch_one(&api.db.pool)
    .await
    .unwrap();
    assert_eq!(
        row,
        format!(
            "5|0|{GARCIA}|{pid}|Office Visit|900|10:00:00|10:15:00|NULL|0|0|0|1|1|-|0|3|3|1|Blood pressure review||0"
        )
    );
    // The PHP-serialized columns, byte for byte as PHP's serialize() writes the calendar's arrays.
    let (spec, location): (String, String) =
        sqlx::query_as("SELECT pc_recurrspec, pc_location FROM openemr_postcalendar_events WHERE pc_eid = ?")
            .bind(eid)
            .fetch_one(&api.db.pool)
            .await
            .unwrap();
    assert_eq!(
        spec,
        php(r#"["event_repeat_freq" => "", "event_repeat_freq_type" => "", "event_repeat_on_num" => "1",
            "event_repeat_on_day" => "0", "event_repeat_on_freq" => "0", "exdate" => ""]"#)
    );
    assert_eq!(
        location,
        php(r#"["event_location" => "", "event_street1" => "", "event_street2" => "", "event_city" => "",
            "event_state" => "", "event_postal" => ""]"#)
    );
    let registered = api
        .db
        .scalar(&format!(
            "SELECT COUNT(*) FROM uuid_registry r JOIN openemr_postcalendar_events e ON e.uuid = r.uuid \
             WHERE e.pc_eid = {eid} AND r.table_name = 'openemr_postcalendar_events' AND r.table_id = 'pc_eid'"
        ))
        .await;
    assert_eq!(registered, 1);
    // fetchEvents()'s condition with the calendar views' pc_eventstatus filter, as OpenEMR runs it.
    let shown = api
        .db
        .scalar(&format!(
            "SELECT COUNT(*) FROM openemr_postcalendar_events e WHERE ((e.pc_endDate >= '{day}' AND e.pc_eventDate <= '{day}' \
             AND e.pc_recurrtype > '0') OR (e.pc_eventDate >= '{day}' AND e.pc_eventDate <= '{day}')) \
             AND e.pc_eventstatus = 1 AND e.pc_eid = {eid}"
        ))
        .await;
    assert_eq!(shown, 1);
    let tracked = api
        .db
        .scalar(&format!(
            "SELECT COUNT(*) FROM patient_tracker t JOIN patient_tracker_element el ON el.pt_tracker_id = t.id \
             AND el.seq = t.lastseq WHERE t.eid = {eid} AND t.pid = {pid} AND t.lastseq = '1' AND el.status = '-' \
             AND t.apptdate = '{day}' AND t.appttime = '10:00:00' AND t.original_user = 'admin'"
        ))
        .await;
    assert_eq!(tracked, 1);
    let audited = api
        .db
        .scalar(&format!(
            "SELECT COUNT(*) FROM log WHERE event = 'scheduling-insert' AND category = 'Scheduling' AND patient_id = {pid}"
        ))
        .await;
    assert_eq!(audited, 1);
    let change = api
        .db
        .scalar("SELECT COUNT(*) FROM mmt_events WHERE kind = 'appointment.booked' AND topic = 'appointment'")
        .await;
    assert_eq!(change, 1);
    let (status, read) = api.get(&format!("/api/appointments/{eid}/")).await;
    assert_eq!(status, StatusCode::OK, "{read}");
    assert_eq!(read["uuid"], created["uuid"]);
}

#[tokio::test]
async fn slots_lie_inside_office_hours_skip_lunch_and_bookings_and_come_back_on_cancel() {
    let api = Api::admin().await;
    let (day, pid) = (tuesday_ahead(), pid(&api).await);
    let free = slots(&api, day).await;
    // Dr. García: In Office 08:00, lunch 12:00-13:00, Out Of Office 17:00, 15-minute visits.
    assert_eq!(free.first().map(String::as_str), Some("08:00"));
    assert_eq!(free.last().map(String::as_str), Some("16:45"));
    assert_eq!(free.len(), 32, "{free:?}");
    assert!(!free.iter().any(|s| s.starts_with("12:")), "{free:?}");
    let (status, created) = book(&api, booking(pid, day, "10:00")).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let after = slots(&api, day).await;
    assert!(!after.contains(&"10:00".to_string()) && after.contains(&"10:15".to_string()), "{after:?}");
    let eid = created["id"].as_i64().unwrap();
    let (status, body) =
        api.call("PATCH", &format!("/api/appointments/{eid}/"), Some(json!({"status": "x"}))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["fhir_status"], "cancelled");
    assert!(slots(&api, day).await.contains(&"10:00".to_string()), "a cancelled appointment frees its slot");
}

#[tokio::test]
async fn thirty_two_concurrent_bookings_of_one_slot_make_exactly_one_appointment() {
    let api = Api::admin().await;
    let (day, pid) = (tuesday_ahead(), pid(&api).await);
    // Half ask for 09:00, half for 09:10: every pair overlaps. One replica serves them all.
    let client = api.db.client();
    let bearer = format!("Bearer {}", api.token);
    let calls = (0..32).map(|i| {
        let mut body = booking(pid + (i % 5), day, if i % 2 == 0 { "09:00" } else { "09:10" });
        body["duration_minutes"] = json!(15);
        let (client, bearer) = (&client, &bearer);
        async move { post_booking(client, bearer, &body).await }
    });
    let results = futures_util::future::join_all(calls).await;
    let created: Vec<&Value> =
        results.iter().filter(|(s, _)| *s == StatusCode::CREATED).map(|(_, b)| b).collect();
    assert_eq!(created.len(), 1, "{results:?}");
    let winner = created[0]["id"].as_i64().unwrap();
    for (status, body) in results.iter().filter(|(s, _)| *s != StatusCode::CREATED) {
        assert_eq!(*status, StatusCode::CONFLICT, "{body}");
        assert_eq!(body["errors"][0]["field"], "conflicting_appointment");
        assert_eq!(body["errors"][0]["message"], winner.to_string());
    }
    assert_eq!(rows_at(&api.db, day, "09:00").await + rows_at(&api.db, day, "09:10").await, 1);
}

#[tokio::test]
async fn two_replicas_racing_for_overlapping_times_book_once() {
    let api = Api::admin().await;
    let (day, pid) = (tuesday_ahead(), pid(&api).await);
    // Two sidecar replicas: each its own app and its own connection pool on the one database.
    let replicas = [TestDb::state_for(&api.db.url), TestDb::state_for(&api.db.url)]
        .map(|state| poem::test::TestClient::new(crate::helpers::documented_app(state)));
    let bearer = format!("Bearer {}", api.token);
    let calls = (0..16).map(|i| {
        let (client, bearer) = (&replicas[i % 2], &bearer);
        let body = booking(pid, day, if i % 2 == 0 { "15:00" } else { "14:50" });
        async move { post_booking(client, bearer, &body).await.0 }
    });
    let statuses = futures_util::future::join_all(calls).await;
    assert_eq!(statuses.iter().filter(|s| **s == StatusCode::CREATED).count(), 1, "{statuses:?}");
    assert!(statuses.iter().all(|s| *s == StatusCode::CREATED || *s == StatusCode::CONFLICT), "{statuses:?}");
    assert_eq!(rows_at(&api.db, day, "14:50").await + rows_at(&api.db, day, "15:00").await, 1);
}

#[tokio::test]
async fn an_overlap_with_an_appointment_openemr_wrote_itself_is_a_409_naming_it() {
    let api = Api::admin().await;
    let (day, pid) = (tuesday_ahead(), pid(&api).await);
    // As InsertEvent() writes it: no lock, no uuid, a 30-minute visit at 11:00.
    sqlx::query(
        "INSERT INTO openemr_postcalendar_events (pc_catid, pc_multiple, pc_aid, pc_pid, pc_title, pc_time, pc_eventDate, \
         pc_duration, pc_recurrtype, pc_startTime, pc_endTime, pc_eventstatus, pc_sharing, pc_apptstatus, pc_facility) \
         VALUES (10, 0, ?, ?, 'New Patient', NOW(), ?, 1800, 0, '11:00:00', '11:30:00', 1, 1, '-', 3)",
    )
    .bind(GARCIA.to_string())
    .bind((pid + 1).to_string())
    .bind(day)
    .execute(&api.db.pool)
    .await
    .unwrap();
    let theirs = api.db.scalar("SELECT CAST(MAX(pc_eid) AS SIGNED) FROM openemr_postcalendar_events").await;
    let (status, body) = book(&api, booking(pid, day, "11:15")).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["type"], "urn:mmt-sidecar:problem:slot-taken");
    assert_eq!(body["errors"][0]["message"], theirs.to_string());
    assert!(body["detail"].as_str().unwrap().contains(&theirs.to_string()));
    let (status, _) = book(&api, booking(pid, day, "11:30")).await;
    assert_eq!(status, StatusCode::CREATED, "right after it is free");
    // A second double booking made around the sidecar is flagged on the schedule.
    sqlx::query(
        "INSERT INTO openemr_postcalendar_events (pc_catid, pc_multiple, pc_aid, pc_pid, pc_title, pc_time, pc_eventDate, \
         pc_duration, pc_recurrtype, pc_startTime, pc_endTime, pc_eventstatus, pc_sharing, pc_apptstatus, pc_facility) \
         VALUES (5, 0, ?, ?, 'Office Visit', NOW(), ?, 900, 0, '11:10:00', '11:25:00', 1, 1, '-', 3)",
    )
    .bind(GARCIA.to_string())
    .bind((pid + 2).to_string())
    .bind(day)
    .execute(&api.db.pool)
    .await
    .unwrap();
    let (_, days) = api.get(&format!("/api/openemr/providers/{GARCIA}/schedule/?from={day}&to={day}")).await;
    let flagged = days[0]["appointments"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["id"] == theirs)
        .unwrap_or_else(|| panic!("{days}"));
    assert_eq!(flagged["overlaps"].as_array().map(Vec::len), Some(1), "{days}");
}

#[tokio::test]
async fn outside_availability_is_a_422_unless_overridden_and_never_over_an_appointment() {
    let api = Api::admin().await;
    let (day, pid) = (tuesday_ahead(), pid(&api).await);
    let (status, body) = book(&api, booking(pid, day, "12:15")).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["errors"][0]["field"], "start");
    assert!(body["errors"][0]["message"].as_str().unwrap().contains("Lunch"), "{body}");
    let (status, body) = book(&api, booking(pid, day, "07:30")).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(body["errors"][0]["message"].as_str().unwrap().contains("In Office"), "{body}");
    let mut anyway = booking(pid, day, "12:15");
    anyway["override_availability"] = json!(true);
    let (status, first) = book(&api, anyway.clone()).await;
    assert_eq!(status, StatusCode::CREATED, "{first}");
    anyway["pid"] = json!(pid + 1);
    let (status, body) = book(&api, anyway).await;
    assert_eq!(status, StatusCode::CONFLICT, "an override never double books: {body}");
}

#[tokio::test]
async fn a_repeating_series_is_expanded_with_its_exclusions() {
    let api = Api::admin().await;
    let series_pid =
        api.db.scalar("SELECT CAST(pc_pid AS SIGNED) FROM openemr_postcalendar_events WHERE pc_recurrtype = 1 AND pc_pid <> ''").await;
    let (status, body) =
        api.get(&format!("/api/appointments/?from=2027-03-01&to=2027-05-31&patient={series_pid}")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let dates: Vec<&str> =
        body["items"].as_array().unwrap().iter().map(|a| a["date"].as_str().unwrap()).collect();
    // Every Tuesday from 2 March to 25 May 2027, except the excluded 16 March.
    assert_eq!(
        dates,
        [
            "2027-03-02",
            "2027-03-09",
            "2027-03-23",
            "2027-03-30",
            "2027-04-06",
            "2027-04-13",
            "2027-04-20",
            "2027-04-27",
            "2027-05-04",
            "2027-05-11",
            "2027-05-18",
            "2027-05-25"
        ]
    );
    assert_eq!(body["total"], 12);
    assert!(body["items"].as_array().unwrap().iter().all(|a| a["recurring"] == true));
    let (_, first) = api
        .get(&format!("/api/appointments/?from=2027-03-01&to=2027-05-31&patient={series_pid}&limit=5"))
        .await;
    assert_eq!(first["items"].as_array().unwrap().len(), 5);
    let cursor = first["next_cursor"].as_str().unwrap();
    let (_, second) = api
        .get(&format!(
            "/api/appointments/?from=2027-03-01&to=2027-05-31&patient={series_pid}&limit=5&cursor={cursor}"
        ))
        .await;
    assert_eq!(second["items"][0]["date"], "2027-04-13");
    let eid = first["items"][0]["id"].as_i64().unwrap();
    let (status, body) =
        api.call("PATCH", &format!("/api/appointments/{eid}/"), Some(json!({"status": "@"}))).await;
    assert_eq!(status, StatusCode::CONFLICT, "a series is changed in OpenEMR: {body}");
}

#[tokio::test]
async fn status_changes_follow_the_rules_and_the_flow_board_and_check_in_opens_the_encounter() {
    let api = Api::admin().await;
    let pid = pid(&api).await;
    let today = Local::now().date_naive();
    let mut body = booking(pid, today, "23:00");
    body["override_availability"] = json!(true);
    let (status, created) = book(&api, body).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let path = format!("/api/appointments/{}/", created["id"]);
    let before = api.db.scalar(&format!("SELECT COUNT(*) FROM form_encounter WHERE pid = {pid}")).await;
    let (status, arrived) = api.call("PATCH", &path, Some(json!({"status": "@", "room": "Room 2"}))).await;
    assert_eq!(status, StatusCode::OK, "{arrived}");
    let encounter = arrived["encounter"].as_i64().expect("check-in opens the visit's encounter");
    let after = api.db.scalar(&format!("SELECT COUNT(*) FROM form_encounter WHERE pid = {pid}")).await;
    assert!(after == before + 1 || before > 0, "one encounter per day: a new one unless one exists today");
    let reason = api
        .db
        .scalar(&format!("SELECT COUNT(*) FROM form_encounter WHERE encounter = {encounter} AND pid = {pid}"))
        .await;
    assert_eq!(reason, 1);
    let (status, body) = api.call("PATCH", &path, Some(json!({"status": "-"}))).await;
    assert_eq!(status, StatusCode::CONFLICT, "an arrived visit does not go back: {body}");
    for code in ["<", ">"] {
        let (status, body) = api.call("PATCH", &path, Some(json!({"status": code}))).await;
        assert_eq!(status, StatusCode::OK, "{code}: {body}");
    }
    let (status, body) = api.call("PATCH", &path, Some(json!({"status": "x"}))).await;
    assert_eq!(status, StatusCode::CONFLICT, "a checked-out visit cannot be cancelled: {body}");
    let (status, body) = api.call("PATCH", &path, Some(json!({"status": "nonsense"}))).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(body["errors"][0]["message"].as_str().unwrap().contains("allowed"), "{body}");
    let steps: Vec<(String, String, String)> = sqlx::query_as(
        "SELECT el.seq, el.status, el.room FROM patient_tracker t JOIN patient_tracker_element el ON el.pt_tracker_id = t.id \
         WHERE t.eid = ? ORDER BY CAST(el.seq AS UNSIGNED)",
    )
    .bind(created["id"].as_i64())
    .fetch_all(&api.db.pool)
    .await
    .unwrap();
    let expected = [("1", "-", ""), ("2", "@", "Room 2"), ("3", "<", "Room 2"), ("4", ">", "Room 2")];
    assert_eq!(steps, expected.map(|(a, b, c)| (a.to_string(), b.to_string(), c.to_string())));
    let tracker_encounter =
        api.db.scalar(&format!("SELECT encounter FROM patient_tracker WHERE eid = {}", created["id"])).await;
    assert_eq!(tracker_encounter, encounter);
}

/// Bookings and cancellations someone else makes in a provider's calendar reach the provider.
#[tokio::test]
async fn the_provider_hears_of_bookings_and_cancellations_made_by_others() {
    let api = Api::admin().await;
    let (day, pid) = (tuesday_ahead(), pid(&api).await);
    let (status, created) = book(&api, booking(pid, day, "09:00")).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let eid = created["id"].as_i64().unwrap();
    let (status, body) =
        api.call("PATCH", &format!("/api/appointments/{eid}/"), Some(json!({"status": "x"}))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let garcia = api.as_other(("drgarcia", "Physician-Garcia-2")).await;
    let (status, page) = garcia.get("/api/notifications/").await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let told: Vec<(String, String, String)> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| {
            (
                n["kind"].as_str().unwrap().into(),
                n["subject_id"].as_str().unwrap().into(),
                n["by"].as_str().unwrap().into(),
            )
        })
        .collect();
    let eid = eid.to_string();
    assert_eq!(
        told,
        [
            ("appointment.cancelled".into(), eid.clone(), "admin".into()),
            ("appointment.booked".into(), eid, "admin".into())
        ]
    );
    let (status, own) = book(&garcia, booking(pid, day, "10:00")).await;
    assert_eq!(status, StatusCode::CREATED, "{own}");
    let (_, page) = garcia.get("/api/notifications/").await;
    assert_eq!(page["items"].as_array().unwrap().len(), 2, "a provider's own booking is no news to them");
}

#[tokio::test]
async fn a_reschedule_is_checked_like_a_booking() {
    let api = Api::admin().await;
    let (day, pid) = (tuesday_ahead(), pid(&api).await);
    let (_, first) = book(&api, booking(pid, day, "09:00")).await;
    let (_, second) = book(&api, booking(pid + 1, day, "09:30")).await;
    let path = format!("/api/appointments/{}/", second["id"]);
    let (status, body) = api.call("PATCH", &path, Some(json!({"start": format!("{day}T09:05")}))).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["errors"][0]["message"], first["id"].to_string());
    let (status, moved) = api
        .call("PATCH", &path, Some(json!({"start": format!("{day}T10:30"), "duration_minutes": 30})))
        .await;
    assert_eq!(status, StatusCode::OK, "{moved}");
    assert_eq!(moved["end"], format!("{day}T11:00:00"));
    assert_eq!(rows_at(&api.db, day, "09:30").await, 0);
    assert_eq!(rows_at(&api.db, day, "10:30").await, 1);
}

#[tokio::test]
async fn a_hold_lapses_once_across_replicas_and_frees_its_slot_and_a_confirmed_one_stays() {
    let api = Api::admin().await;
    let (day, pid) = (tuesday_ahead(), pid(&api).await);
    let mut held = booking(pid, day, "14:00");
    held["hold"] = json!(true);
    let (status, created) = book(&api, held.clone()).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(created["status"], "^");
    assert!(created["hold_expires_at"].is_string(), "{created}");
    held["start"] = json!(format!("{day}T15:00"));
    let (_, confirmed) = book(&api, held).await;
    let (status, body) = api
        .call("PATCH", &format!("/api/appointments/{}/", confirmed["id"]), Some(json!({"status": "*"})))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body.get("hold_expires_at").is_none(), "confirming ends the hold: {body}");
    sqlx::query("UPDATE mmt_appointment_holds SET expires_at = NOW() - INTERVAL 1 MINUTE")
        .execute(&api.db.pool)
        .await
        .unwrap();
    let (a, b) = (api.db.state(), api.db.state());
    let (x, y) = tokio::join!(
        mmt_sidecar::service::scheduling::holds::expire_holds(&a),
        mmt_sidecar::service::scheduling::holds::expire_holds(&b)
    );
    assert_eq!(x.unwrap() + y.unwrap(), 1, "one lapsed hold, cancelled by one replica");
    let (_, lapsed) = api.get(&format!("/api/appointments/{}/", created["id"])).await;
    assert_eq!(lapsed["status"], "x");
    let cancels = api
        .db
        .scalar("SELECT COUNT(*) FROM log WHERE event = 'scheduling-update' AND user = 'mmt-sidecar'")
        .await;
    assert_eq!(cancels, 1);
    let (status, body) = book(&api, booking(pid + 2, day, "14:00")).await;
    assert_eq!(status, StatusCode::CREATED, "the lapsed hold's slot is free: {body}");
}

#[tokio::test]
async fn an_idempotency_key_books_once_and_refuses_a_different_body() {
    let api = Api::admin().await;
    let (day, pid) = (tuesday_ahead(), pid(&api).await);
    let client = api.db.client();
    let post = |body: Value, key: &'static str| {
        client
            .post("/api/appointments/")
            .header("authorization", format!("Bearer {}", api.token))
            .header("idempotency-key", key)
            .body_json(&body)
            .send()
    };
    let first = post(booking(pid, day, "08:30"), "visit-42").await;
    first.assert_status(StatusCode::CREATED);
    let first: Value = first.json().await.value().deserialize();
    let again = post(booking(pid, day, "08:30"), "visit-42").await;
    again.assert_status(StatusCode::OK);
    let again: Value = again.json().await.value().deserialize();
    assert_eq!(again["id"], first["id"]);
    post(booking(pid, day, "08:45"), "visit-42").await.assert_status(StatusCode::CONFLICT);
    assert_eq!(rows_at(&api.db, day, "08:30").await, 1);
    assert_eq!(rows_at(&api.db, day, "08:45").await, 0);
}

#[tokio::test]
async fn bad_bookings_name_every_field() {
    let api = Api::admin().await;
    let (status, body) = book(&api, json!({})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let fields: Vec<&str> =
        body["errors"].as_array().unwrap().iter().map(|e| e["field"].as_str().unwrap()).collect();
    assert_eq!(fields, ["pid", "provider_id", "facility_id", "category_id", "start"]);
    let day = tuesday_ahead();
    let mut bad = booking(999_999, day, "10:00");
    bad["category_id"] = json!(2);
    bad["status"] = json!("Z");
    let (status, body) = book(&api, bad).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let fields: Vec<&str> =
        body["errors"].as_array().unwrap().iter().map(|e| e["field"].as_str().unwrap()).collect();
    assert_eq!(fields, ["pid", "category_id", "status"]);
    let (status, body) =
        api.get(&format!("/api/appointments/slots/?provider={GARCIA}&from={day}&to=2020-01-01")).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let (status, _) = api.get("/api/appointments/999999/").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_provider_sees_only_their_own_calendar_unless_openemr_allows_more() {
    let db = TestDb::migrated().await;
    let (okafor, _) = tokens(&db, ("drokafor", "Physician-Okafor-3")).await;
    let (front, _) = tokens(&db, ("fdmiller", "Front-Miller-5")).await;
    let day = tuesday_ahead();
    let theirs = format!("/api/openemr/providers/{GARCIA}/schedule/?from={day}&to={day}");
    let own = format!("/api/openemr/providers/{OKAFOR}/schedule/?from={day}&to={day}");
    assert_eq!(send(&db, &[], Some(&okafor), Method::GET, &theirs, None).await.0, StatusCode::FORBIDDEN);
    assert_eq!(send(&db, &[], Some(&okafor), Method::GET, &own, None).await.0, StatusCode::OK);
    assert_eq!(send(&db, &[], Some(&front), Method::GET, &theirs, None).await.0, StatusCode::OK);
    let list = format!("/api/appointments/?from=2027-03-01&to=2027-06-30&provider={GARCIA}");
    assert_eq!(send(&db, &[], Some(&okafor), Method::GET, &list, None).await.0, StatusCode::FORBIDDEN);
    let (status, mine) =
        send(&db, &[], Some(&okafor), Method::GET, "/api/appointments/?from=2027-03-01&to=2027-06-30", None)
            .await;
    assert_eq!(status, StatusCode::OK);
    assert!(mine["items"].as_array().unwrap().iter().all(|a| a["provider_id"] == OKAFOR), "{mine}");
    sqlx::query(
        "INSERT INTO globals (gl_name, gl_index, gl_value) VALUES ('docs_see_entire_calendar', 0, '1')",
    )
    .execute(&db.pool)
    .await
    .unwrap();
    assert_eq!(send(&db, &[], Some(&okafor), Method::GET, &theirs, None).await.0, StatusCode::OK);
}

#[tokio::test]
async fn a_schedule_shows_office_hours_lunch_closures_and_bookings() {
    let api = Api::admin().await;
    let (status, days) =
        api.get(&format!("/api/openemr/providers/{GARCIA}/schedule/?from=2027-03-01&to=2027-03-07")).await;
    assert_eq!(status, StatusCode::OK, "{days}");
    let monday = &days[0];
    assert_eq!(monday["date"], "2027-03-01");
    assert_eq!(monday["available"], json!([{"start": "2027-03-01T08:00:00", "end": "2027-03-01T17:00:00"}]));
    assert_eq!(monday["blocks"][0]["category"], "Lunch");
    assert_eq!(monday["blocks"][0]["start"], "2027-03-01T12:00:00");
    let tuesday = &days[1];
    assert!(
        tuesday["appointments"].as_array().unwrap().iter().any(|a| a["start"] == "2027-03-02T16:00:00"),
        "the weekly series"
    );
    assert_eq!(days[5]["available"], json!([]), "Saturday");
    let (_, holiday) =
        api.get(&format!("/api/openemr/providers/{GARCIA}/schedule/?from=2027-01-01&to=2027-01-01")).await;
    assert_eq!(holiday[0]["closed"]["category"], "Holidays");
    let (status, slots) = api
        .get(&format!("/api/appointments/slots/?provider={GARCIA}&category=5&from=2027-01-01&to=2027-01-01"))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(slots["slots"], json!([]), "nothing is free on a clinic holiday");
    let audited = api
        .db
        .scalar("SELECT COUNT(*) FROM log WHERE event = 'scheduling-select' AND category = 'Scheduling'")
        .await;
    assert!(audited >= 2);
}

#[tokio::test]
async fn categories_and_statuses_come_from_openemr() {
    let api = Api::admin().await;
    let (status, categories) = api.get("/api/appointments/categories/").await;
    assert_eq!(status, StatusCode::OK);
    let new_patient =
        categories.as_array().unwrap().iter().find(|c| c["constant_id"] == "new_patient").unwrap();
    assert_eq!(new_patient["duration_minutes"], 30);
    assert_eq!(new_patient["kind"], "patient");
    let (status, statuses) = api.get("/api/appointments/statuses/").await;
    assert_eq!(status, StatusCode::OK);
    let arrived = statuses.as_array().unwrap().iter().find(|s| s["code"] == "@").unwrap();
    assert_eq!(
        (arrived["checks_in"].clone(), arrived["fhir_status"].clone()),
        (json!(true), json!("arrived"))
    );
}

#[tokio::test]
async fn the_sweep_marks_recent_appointments_without_an_arrival_as_no_shows() {
    let api = Api::admin().await;
    let pid = pid(&api).await;
    let today = Local::now().date_naive();
    let mut eids = Vec::new();
    for (days_ago, status) in [(1, "-"), (2, "@"), (9, "-")] {
        let day = today - Days::new(days_ago);
        let mut body = booking(pid, day, "09:00");
        body["override_availability"] = json!(true);
        body["status"] = json!(status);
        let (code, created) = book(&api, body).await;
        assert_eq!(code, StatusCode::CREATED, "{created}");
        eids.push(created["id"].as_i64().unwrap());
    }
    let off = api.db.state();
    assert_eq!(mmt_sidecar::service::scheduling::holds::mark_no_shows(&off).await.unwrap(), 1);
    let status = |eid: i64| {
        let pool = api.db.pool.clone();
        async move {
            sqlx::query_scalar::<_, String>(
                "SELECT pc_apptstatus FROM openemr_postcalendar_events WHERE pc_eid = ?",
            )
            .bind(eid)
            .fetch_one(&pool)
            .await
            .unwrap()
        }
    };
    assert_eq!(status(eids[0]).await, "?", "yesterday's, never arrived");
    assert_eq!(status(eids[1]).await, "@", "arrived");
    assert_eq!(status(eids[2]).await, "-", "older than the sweep looks back");
    assert_eq!(mmt_sidecar::service::scheduling::holds::mark_no_shows(&off).await.unwrap(), 0, "once");
}
