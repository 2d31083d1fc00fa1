//! Encryption at rest: the sidecar's own PHI is ciphertext in the database and on disk (read here
//! as raw bytes), reads back after `mmt-sidecar rotate-key` and its job, text stored before
//! sealing is sealed by the rotation, and a wrong master key stops the process while the previous
//! one, given beside a new one, rewraps the data keys.

use std::{path::PathBuf, process::Command, time::Duration};

use poem::http::{Method, StatusCode};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::{
    auth::{ADMIN, tokens},
    helpers::{TEST_MASTER_KEY, TestDb, binary},
};

const GARCIA: (&str, &str) = ("drgarcia", "Physician-Garcia-2");
/// A name that must never appear in the database's bytes or the audio file.
const SECRET: &str = "Zebedee";
const NEW_MASTER_KEY: &str = "bmV3IG1hc3RlciBrZXkgZm9yIHRoZSByb3RhdGlvbiE=";

/// Every sealed column, as `(table, column)`.
const SEALED: [(&str, &str); 9] = [
    ("mmt_transcriptions", "title"),
    ("mmt_transcriptions", "note_text"),
    ("mmt_transcriptions", "reject_reason"),
    ("mmt_transcription_segments", "text"),
    ("mmt_transcription_revisions", "note_text"),
    ("mmt_transcription_revisions", "reason"),
    ("mmt_chat_messages", "text"),
    ("mmt_chat_rooms", "title"),
    ("mmt_document_text", "content"),
];

struct Clinic {
    db: TestDb,
    token: String,
    /// An administrator's, who may follow the rotation's job.
    admin: String,
    audio: PathBuf,
}

impl Drop for Clinic {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.audio);
    }
}

impl Clinic {
    async fn new() -> Self {
        let db = TestDb::migrated().await;
        let token = tokens(&db, GARCIA).await.0;
        let admin = tokens(&db, ADMIN).await.0;
        let audio = std::env::temp_dir().join(format!("mmt-sealed-{}", uuid::Uuid::new_v4().simple()));
        Self { db, token, admin, audio }
    }

    fn settings<'a>(&'a self, extra: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
        let mut settings =
            vec![("MMT_AUDIO_DIR", self.audio.to_str().unwrap()), ("MMT_AUDIO_MAX_CHUNK_BYTES", "3000000")];
        settings.extend_from_slice(extra);
        settings
    }

    async fn send(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, String)],
        body: Vec<u8>,
    ) -> (StatusCode, Vec<u8>) {
        self.send_with(&[], method, path, headers, body).await
    }

    async fn send_with(
        &self,
        extra: &[(&str, &str)],
        method: Method,
        path: &str,
        headers: &[(&str, String)],
        body: Vec<u8>,
    ) -> (StatusCode, Vec<u8>) {
        let client = self.db.client_with(&self.settings(extra));
        let mut req = client.request(method, path).header("authorization", format!("Bearer {}", self.token));
        for (name, value) in headers {
            req = req.header(*name, value);
        }
        let resp = req.body(body).send().await;
        let status = resp.0.status();
        (status, resp.0.into_body().into_vec().await.unwrap())
    }

    async fn json(&self, method: Method, path: &str, body: Option<Value>) -> Value {
        let bytes = body.map(|b| b.to_string().into_bytes()).unwrap_or_default();
        let (status, reply) =
            self.send(method, path, &[("content-type", "application/json".into())], bytes).await;
        let reply: Value = serde_json::from_slice(&reply).unwrap_or(Value::Null);
        assert!(status.is_success(), "{path}: {status} {reply}");
        reply
    }

    async fn as_admin(&self, path: &str) -> (StatusCode, Value) {
        let client = self.db.client_with(&self.settings(&[]));
        let resp = client.get(path).header("authorization", format!("Bearer {}", self.admin)).send().await;
        let status = resp.0.status();
        (status, serde_json::from_slice(&resp.0.into_body().into_vec().await.unwrap()).unwrap_or(Value::Null))
    }

    async fn raw_values(&self) -> Vec<(String, Vec<u8>)> {
        let mut out = Vec::new();
        for (table, column) in SEALED {
            let sql = format!("SELECT {column} FROM {table} WHERE {column} IS NOT NULL");
            let values: Vec<Vec<u8>> =
                sqlx::query_scalar(sqlx::AssertSqlSafe(sql)).fetch_all(&self.db.pool).await.unwrap();
            assert!(!values.is_empty(), "{table}.{column} holds nothing to check");
            out.extend(values.into_iter().map(|v| (format!("{table}.{column}"), v)));
        }
        out
    }

    fn audio_file(&self, id: &str) -> Vec<u8> {
        std::fs::read(self.audio.join(format!("{id}.audio"))).unwrap()
    }

    async fn rotate(&self) -> Value {
        let out = Command::new(binary()).arg("rotate-key").env_clear().envs(self.db.env()).output().unwrap();
        let printed = String::from_utf8_lossy(&out.stdout).to_string();
        assert!(out.status.success(), "{printed} {}", String::from_utf8_lossy(&out.stderr));
        let job = printed.split_whitespace().skip_while(|w| *w != "job").nth(1).unwrap().to_string();
        let workers =
            mmt_sidecar::service::jobs::Workers::new(self.db.state_with(&self.settings(&[]))).spawn(1);
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        let finished = loop {
            let (status, job) = self.as_admin(&format!("/api/jobs/{job}/")).await;
            assert_eq!(status, StatusCode::OK, "{job}");
            if ["succeeded", "failed"].contains(&job["state"].as_str().unwrap()) {
                break job;
            }
            assert!(std::time::Instant::now() < deadline, "the rotation did not finish: {job}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        workers.shutdown(Duration::from_secs(5)).await;
        assert_eq!(finished["state"], "succeeded", "{finished}");
        finished["result"].clone()
    }
}

/// Runs a process that should stop by itself, killing it after 30 s if it does not.
fn exit_of(mut cmd: Command) -> (Option<i32>, String) {
    let mut child = cmd.spawn().unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while child.try_wait().unwrap().is_none() {
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = child.wait_with_output().unwrap();
    (out.status.code(), String::from_utf8_lossy(&out.stderr).into_owned())
}

fn has(haystack: &[u8], needle: &str) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle.as_bytes())
}

fn sealed_by(value: &[u8]) -> Option<u32> {
    (value.len() > 6 && value[..2] == [0xFF, 0x01])
        .then(|| u32::from_be_bytes(value[2..6].try_into().unwrap()))
}

/// Audio in which the secret recurs, so a plain copy on disk would show it.
fn recording() -> Vec<u8> {
    (0..200_000).flat_map(|i: u32| format!("{SECRET}{i:08}").into_bytes()).take(2_500_000).collect()
}

/// Writes one of everything the sidecar seals; returns the transcription's id and audio.
async fn chart_everything(clinic: &Clinic) -> (String, Vec<u8>) {
    let id = uuid::Uuid::new_v4().to_string();
    let segment = json!({"seq": 0, "start_ms": 0, "end_ms": 900, "text": format!("{SECRET} has chest pain")});
    let body = json!({"id": id, "pid": 2, "title": format!("{SECRET} follow-up"), "segments": [segment]});
    clinic.json(Method::POST, "/api/transcriptions/", Some(body)).await;
    let audio = recording();
    let headers = [
        ("upload-offset", "0".to_string()),
        ("upload-length", audio.len().to_string()),
        ("content-type", "audio/webm".into()),
        ("x-audio-sha256", hex::encode(Sha256::digest(&audio))),
    ];
    let (status, body) =
        clinic.send(Method::PUT, &format!("/api/transcriptions/{id}/audio"), &headers, audio.clone()).await;
    assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
    clinic.json(Method::POST, &format!("/api/transcriptions/{id}/submit/"), None).await;
    let reason = json!({"reason": format!("Name {SECRET}'s medication")});
    clinic.json(Method::POST, &format!("/api/transcriptions/{id}/reject/"), Some(reason)).await;

    let room = json!({"pid": 2, "title": format!("About {SECRET}"), "members": []});
    let room = clinic.json(Method::POST, "/api/chat/rooms/", Some(room)).await["id"].as_u64().unwrap();
    let text = json!({"text": format!("{SECRET}'s INR is 4.2")});
    clinic.json(Method::POST, &format!("/api/chat/rooms/{room}/messages/"), Some(text)).await;

    let state = clinic.db.state_with(&clinic.settings(&[]));
    let page =
        mmt_sidecar::storage::mmt::documents::PageText::new(1, "text", None, format!("{SECRET} GLUCOSE 5.4"));
    mmt_sidecar::storage::mmt::documents::replace_text(&state.pool, &state.vault, 7, &[page]).await.unwrap();
    (id, audio)
}

async fn reads_back(clinic: &Clinic, id: &str, audio: &[u8]) {
    let note = clinic.json(Method::GET, &format!("/api/transcriptions/{id}/"), None).await;
    assert_eq!(note["title"], format!("{SECRET} follow-up"), "{note}");
    assert_eq!(note["reject_reason"], format!("Name {SECRET}'s medication"));
    assert_eq!(note["segments"][0]["text"], format!("{SECRET} has chest pain"), "{note}");
    let revisions = clinic.json(Method::GET, &format!("/api/transcriptions/{id}/revisions/"), None).await;
    assert_eq!(revisions[0]["text"], format!("{SECRET} has chest pain"), "{revisions}");
    let (status, whole) =
        clinic.send(Method::GET, &format!("/api/transcriptions/{id}/audio"), &[], vec![]).await;
    assert_eq!((status, whole.len()), (StatusCode::OK, audio.len()));
    assert!(whole == audio, "the audio reads back byte for byte");
    // A range across the boundary of two 1 MiB records.
    let range = [("range", "bytes=1048570-1048590".to_string())];
    let (status, part) =
        clinic.send(Method::GET, &format!("/api/transcriptions/{id}/audio"), &range, vec![]).await;
    assert_eq!((status, &part[..]), (StatusCode::PARTIAL_CONTENT, &audio[1_048_570..=1_048_590]));
    let rooms = clinic.json(Method::GET, "/api/chat/rooms/", None).await;
    assert_eq!(rooms["items"][0]["title"], format!("About {SECRET}"), "{rooms}");
}

#[tokio::test]
async fn phi_is_ciphertext_at_rest_and_reads_back_after_a_key_rotation() {
    let clinic = Clinic::new().await;
    let (id, audio) = chart_everything(&clinic).await;

    for (column, value) in clinic.raw_values().await {
        assert_eq!(sealed_by(&value), Some(2), "{column} is sealed by the first data key");
        assert!(!has(&value, SECRET), "{column} holds the name in plain text");
    }
    let file = clinic.audio_file(&id);
    assert!(file.starts_with(b"MMTA\x01"), "the audio file is sealed");
    assert!(!has(&file, SECRET), "the audio file holds the recording in plain text");
    reads_back(&clinic, &id, &audio).await;

    // A message stored before sealing existed is read as it is, and sealed by the rotation.
    sqlx::query("INSERT INTO mmt_chat_messages (room_id, author_id, author, text, created_at) SELECT id, created_by, 'drgarcia', 'older plain words', UTC_TIMESTAMP(3) FROM mmt_chat_rooms")
        .execute(&clinic.db.pool)
        .await
        .unwrap();
    let room = clinic.json(Method::GET, "/api/chat/rooms/", None).await["items"][0]["id"].as_u64().unwrap();
    let history = clinic.json(Method::GET, &format!("/api/chat/rooms/{room}/messages/"), None).await;
    assert_eq!(history["items"][1]["text"], "older plain words", "{history}");

    // Text extracted before the blind index existed gets its terms from the rotation.
    let terms = "SELECT HEX(term) FROM mmt_document_terms WHERE document_id = 7 ORDER BY term";
    let indexed: Vec<String> = sqlx::query_scalar(terms).fetch_all(&clinic.db.pool).await.unwrap();
    assert!(!indexed.is_empty());
    sqlx::query("DELETE FROM mmt_document_terms").execute(&clinic.db.pool).await.unwrap();

    // More segments than one batch of the rotation, so it pages through the composite key.
    let segments: Vec<Value> = (0..600)
        .map(|seq| json!({"seq": seq, "start_ms": seq * 10, "end_ms": seq * 10 + 9, "text": format!("{SECRET} {seq}")}))
        .collect();
    let long = json!({"id": uuid::Uuid::new_v4().to_string(), "pid": 2, "segments": segments});
    clinic.json(Method::POST, "/api/transcriptions/", Some(long)).await;

    let result = clinic.rotate().await;
    assert_eq!(result["resealed"]["mmt_transcription_segments.text"], 601, "{result}");
    assert_eq!(result["resealed"]["documents_indexed"], 1, "{result}");
    let rebuilt: Vec<String> = sqlx::query_scalar(terms).fetch_all(&clinic.db.pool).await.unwrap();
    assert_eq!(rebuilt, indexed, "the same terms as when the text was extracted");
    assert_eq!(result["key"], 3, "{result}");
    assert_eq!(result["resealed"]["mmt_chat_messages.text"], 2, "{result}");
    assert_eq!(result["resealed"]["mmt_document_text.content"], 1, "{result}");
    assert_eq!(result["resealed"]["audio_files"], 1, "{result}");
    for (column, value) in clinic.raw_values().await {
        assert_eq!(sealed_by(&value), Some(3), "{column} is sealed again by the new data key");
        assert!(!has(&value, SECRET) && !has(&value, "older plain"), "{column} holds plain text");
    }
    let file = clinic.audio_file(&id);
    assert_eq!(&file[5..9], &3u32.to_be_bytes(), "the audio file is sealed by the new key");
    assert!(!has(&file, SECRET));
    reads_back(&clinic, &id, &audio).await;
}

#[tokio::test]
async fn a_wrong_master_key_stops_the_process_and_the_previous_one_rewraps_the_keys() {
    let clinic = Clinic::new().await;
    let (id, audio) = chart_everything(&clinic).await;
    let worker = |key: &str, previous: Option<&str>| {
        let mut cmd = Command::new(binary());
        cmd.arg("worker").env_clear().envs(clinic.db.env()).env("MMT_MASTER_KEY", key);
        if let Some(previous) = previous {
            cmd.env("MMT_PREVIOUS_MASTER_KEY", previous);
        }
        cmd.env("MMT_SHUTDOWN_GRACE_SECS", "1")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped());
        cmd
    };
    let (code, stderr) = exit_of(worker(NEW_MASTER_KEY, None));
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("wrapped by another master key"), "{stderr}");

    let keys = "SELECT COUNT(*) FROM mmt_data_keys";
    let made = clinic.db.scalar(keys).await;
    let rotate = Command::new(binary())
        .arg("rotate-key")
        .env_clear()
        .envs(clinic.db.env())
        .env("MMT_MASTER_KEY", NEW_MASTER_KEY)
        .output()
        .unwrap();
    assert_eq!(rotate.status.code(), Some(1), "{}", String::from_utf8_lossy(&rotate.stderr));
    assert_eq!(clinic.db.scalar(keys).await, made, "a wrong master key adds no data key");

    let before: Vec<Vec<u8>> = sqlx::query_scalar("SELECT wrapped FROM mmt_data_keys ORDER BY id")
        .fetch_all(&clinic.db.pool)
        .await
        .unwrap();
    let rewrap = [("MMT_MASTER_KEY", NEW_MASTER_KEY), ("MMT_PREVIOUS_MASTER_KEY", TEST_MASTER_KEY)];
    let (status, body) =
        clinic.send_with(&rewrap, Method::GET, &format!("/api/transcriptions/{id}/"), &[], vec![]).await;
    assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
    let after: Vec<Vec<u8>> = sqlx::query_scalar("SELECT wrapped FROM mmt_data_keys ORDER BY id")
        .fetch_all(&clinic.db.pool)
        .await
        .unwrap();
    assert_eq!(after.len(), before.len());
    assert!(before.iter().zip(&after).all(|(b, a)| b != a), "every data key is wrapped anew");

    let only_new = [("MMT_MASTER_KEY", NEW_MASTER_KEY)];
    let path = format!("/api/transcriptions/{id}/audio");
    let (status, whole) = clinic.send_with(&only_new, Method::GET, &path, &[], vec![]).await;
    assert!(status == StatusCode::OK && whole == audio, "the new master key alone opens everything");
    let (code, stderr) = exit_of(worker(TEST_MASTER_KEY, None));
    assert_eq!(code, Some(1), "the old master key no longer opens the data keys: {stderr}");
    assert!(!stderr.contains(TEST_MASTER_KEY) && !stderr.contains(NEW_MASTER_KEY), "a key was printed");
}
