use std::path::PathBuf;

use base64::{Engine, engine::general_purpose::STANDARD};
use poem::http::{HeaderMap, StatusCode};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::{
    auth::{ADMIN, tokens},
    helpers::RunningServer,
    patients::Api,
};

const NURSE: (&str, &str) = ("nkim", "Clinician-Kim-4");
const GARCIA: (&str, &str) = ("drgarcia", "Physician-Garcia-2");
const FRONT_DESK: (&str, &str) = ("fdmiller", "Front-Miller-5");

/// A caller on an app whose audio goes to a directory of the test's own, with small limits:
/// 64 KiB per file, 16 KiB per chunk (above the tests' 4 KiB general body limit).
struct Audio {
    api: Api,
    /// The test's own directory, removed when it ends.
    root: PathBuf,
    /// `MMT_AUDIO_DIR`; `root` unless a test points it elsewhere.
    dir: PathBuf,
}

impl Drop for Audio {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

impl Audio {
    async fn as_user(user: (&str, &str)) -> Self {
        let root = std::env::temp_dir().join(format!("mmt-audio-{}", uuid::Uuid::new_v4().simple()));
        Self { api: Api::as_user(user).await, dir: root.clone(), root }
    }

    async fn as_other(&self, user: (&str, &str)) -> Self {
        let (token, _) = tokens(&self.api.db, user).await;
        Self {
            api: Api { db: self.api.db.clone_handle(), token },
            root: self.root.clone(),
            dir: self.dir.clone(),
        }
    }

    fn settings(&self) -> [(&'static str, &str); 3] {
        let dir = self.dir.to_str().unwrap();
        [("MMT_AUDIO_DIR", dir), ("MMT_AUDIO_MAX_BYTES", "65536"), ("MMT_AUDIO_MAX_CHUNK_BYTES", "16384")]
    }

    async fn send(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, String)],
        body: &[u8],
    ) -> (StatusCode, HeaderMap, Vec<u8>) {
        let client = self.api.db.client_with(&self.settings());
        let mut req = client
            .request(poem::http::Method::from_bytes(method.as_bytes()).unwrap(), path)
            .header("authorization", format!("Bearer {}", self.api.token))
            .header("content-length", body.len().to_string());
        for (name, value) in headers {
            req = req.header(*name, value);
        }
        let resp = req.body(body.to_vec()).send().await;
        let status = resp.0.status();
        let headers = resp.0.headers().clone();
        (status, headers, resp.0.into_body().into_vec().await.unwrap())
    }

    async fn create(&self) -> String {
        let id = uuid::Uuid::new_v4().to_string();
        let (status, body) =
            self.api.call("POST", "/api/transcriptions/", Some(json!({"id": id, "pid": 1}))).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        id
    }

    /// Sends `bytes` as the chunk at `offset` of an `audio/webm` file.
    async fn put(
        &self,
        id: &str,
        offset: usize,
        bytes: &[u8],
        extra: &[(&str, String)],
    ) -> (StatusCode, HeaderMap, Value) {
        let mut headers = vec![("upload-offset", offset.to_string()), ("content-type", "audio/webm".into())];
        headers.extend(extra.iter().cloned());
        let (status, headers, body) =
            self.send("PUT", &format!("/api/transcriptions/{id}/audio"), &headers, bytes).await;
        (status, headers, serde_json::from_slice(&body).unwrap_or(Value::Null))
    }

    async fn status(&self, id: &str) -> Value {
        let (status, _, body) =
            self.send("GET", &format!("/api/transcriptions/{id}/audio/status"), &[], &[]).await;
        assert_eq!(status, StatusCode::OK);
        serde_json::from_slice(&body).unwrap()
    }

    async fn get(&self, id: &str, range: Option<&str>) -> (StatusCode, HeaderMap, Vec<u8>) {
        let headers: Vec<(&str, String)> = range.map(|r| ("range", r.to_string())).into_iter().collect();
        self.send("GET", &format!("/api/transcriptions/{id}/audio"), &headers, &[]).await
    }

    /// Uploads `file` whole in one chunk.
    async fn upload(&self, id: &str, file: &[u8]) {
        let (status, _, body) = self.put(id, 0, file, &[length(file), hex_digest(file)]).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["complete"], true);
    }

    fn files(&self) -> Vec<String> {
        std::fs::read_dir(&self.dir)
            .map(|d| d.map(|e| e.unwrap().file_name().into_string().unwrap()).collect())
            .unwrap_or_default()
    }
}

/// Deterministic bytes that are not all alike, so misplaced chunks show.
fn recording(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 31 % 251) as u8).collect()
}

fn length(file: &[u8]) -> (&'static str, String) {
    ("upload-length", file.len().to_string())
}

fn hex_digest(file: &[u8]) -> (&'static str, String) {
    ("x-audio-sha256", hex::encode(Sha256::digest(file)))
}

fn header(headers: &HeaderMap, name: &str) -> String {
    headers.get(name).map(|v| v.to_str().unwrap().to_string()).unwrap_or_default()
}

fn problem(body: &[u8]) -> Value {
    serde_json::from_slice(body).unwrap()
}

#[tokio::test]
async fn a_chunked_upload_resumes_after_an_interruption_and_reads_back_identical() {
    let audio = Audio::as_user(ADMIN).await;
    let id = audio.create().await;
    let file = recording(40_000);

    let (status, headers, body) = audio.put(&id, 0, &file[..15_000], &[length(&file)]).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body,
        json!({"received": 15000, "size": 40000, "complete": false, "content_type": "audio/webm"})
    );
    assert_eq!(header(&headers, "upload-offset"), "15000");
    let (status, _, _) = audio.put(&id, 15_000, &file[15_000..30_000], &[]).await;
    assert_eq!(status, StatusCode::OK);

    // The connection dropped: the client asks where to go on, and a stale offset is refused.
    let status_now = audio.status(&id).await;
    assert_eq!(
        (status_now["received"].as_i64(), status_now["complete"].as_bool()),
        (Some(30_000), Some(false))
    );
    let (status, headers, body) = audio.put(&id, 15_000, &file[15_000..30_000], &[]).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(header(&headers, "upload-offset"), "30000");
    assert!(body["detail"].as_str().unwrap().contains("30000"), "{body}");

    let checksum = ("upload-checksum", format!("sha256 {}", STANDARD.encode(Sha256::digest(&file))));
    let (status, _, body) = audio.put(&id, 30_000, &file[30_000..], &[checksum]).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["complete"], true);
    assert_eq!(body["sha256"], hex::encode(Sha256::digest(&file)));
    assert_eq!(audio.files(), vec![format!("{id}.audio")]);

    let (status, headers, bytes) = audio.get(&id, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(bytes, file);
    assert_eq!(header(&headers, "content-type"), "audio/webm");
    assert_eq!(header(&headers, "accept-ranges"), "bytes");
    assert_eq!(header(&headers, "content-length"), "40000");

    let (status, _, body) = audio.put(&id, 0, &file[..10], &[length(&file)]).await;
    assert_eq!(status, StatusCode::CONFLICT, "complete audio is final: {body}");
    let audited: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM log WHERE FROM_BASE64(comments) LIKE '%received the audio%' \
         OR FROM_BASE64(comments) LIKE '%read the audio%'",
    )
    .fetch_one(&audio.api.db.pool)
    .await
    .unwrap();
    assert_eq!(audited, 2, "the completed upload and the read are audited");
}

#[tokio::test]
async fn a_checksum_mismatch_keeps_nothing() {
    let audio = Audio::as_user(ADMIN).await;
    let id = audio.create().await;
    let file = recording(20_000);
    let wrong = hex_digest(b"another recording");
    let (status, _, _) = audio.put(&id, 0, &file[..10_000], &[length(&file), wrong]).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _, body) = audio.put(&id, 10_000, &file[10_000..], &[]).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(body["detail"].as_str().unwrap().contains("SHA-256"), "{body}");
    let now = audio.status(&id).await;
    assert_eq!((now["received"].as_i64(), now["complete"].as_bool()), (Some(0), Some(false)));
    assert!(audio.files().is_empty(), "{:?}", audio.files());
    let (status, _, _) = audio.get(&id, None).await;
    assert_eq!(status, StatusCode::CONFLICT);
}

#[tokio::test]
async fn sizes_types_and_missing_headers_get_clear_problems() {
    let audio = Audio::as_user(ADMIN).await;
    let id = audio.create().await;
    let path = format!("/api/transcriptions/{id}/audio");

    let (status, _, body) = audio.put(&id, 0, b"abc", &[("upload-length", "65537".into())]).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{body}");
    assert!(body["detail"].as_str().unwrap().contains("65536"), "{body}");

    let big = recording(16_385);
    let (status, _, body) = audio.put(&id, 0, &big, &[length(&big)]).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "a chunk over MMT_AUDIO_MAX_CHUNK_BYTES: {body}");
    assert!(body["detail"].as_str().unwrap().contains("16384"), "{body}");

    let (status, _, body) = audio.put(&id, 0, &recording(20), &[("upload-length", "10".into())]).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "data past Upload-Length: {body}");

    let (status, _, body) = audio.put(&id, 0, b"abc", &[]).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["errors"][0]["field"], "Upload-Length");

    let headers = [
        ("upload-offset", "0".to_string()),
        ("upload-length", "3".into()),
        ("content-type", "video/mp4".into()),
    ];
    let (status, headers, body) = audio.send("PUT", &path, &headers, b"abc").await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(header(&headers, "content-type"), "application/problem+json");
    assert!(problem(&body)["detail"].as_str().unwrap().contains("audio/webm"), "names the accepted types");

    let (status, _, body) = audio.put(&id, 0, b"abc", &[("upload-length", "3".into())]).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "the last chunk needs a checksum: {body}");
    assert_eq!(body["errors"][0]["field"], "Upload-Checksum");
    assert_eq!(audio.status(&id).await["received"], 0, "refused chunks record nothing");
}

#[tokio::test]
async fn ranges_give_206_and_unsatisfiable_ones_416() {
    let audio = Audio::as_user(ADMIN).await;
    let id = audio.create().await;
    let file = recording(1000);
    audio.upload(&id, &file).await;

    let (status, headers, bytes) = audio.get(&id, Some("bytes=0-99")).await;
    assert_eq!(status, StatusCode::PARTIAL_CONTENT);
    assert_eq!(header(&headers, "content-range"), "bytes 0-99/1000");
    assert_eq!(header(&headers, "content-length"), "100");
    assert_eq!(bytes, &file[..100]);

    let (status, headers, bytes) = audio.get(&id, Some("bytes=-100")).await;
    assert_eq!(status, StatusCode::PARTIAL_CONTENT);
    assert_eq!(header(&headers, "content-range"), "bytes 900-999/1000");
    assert_eq!(bytes, &file[900..]);

    let (status, headers, body) = audio.get(&id, Some("bytes=1000-")).await;
    assert_eq!(status, StatusCode::RANGE_NOT_SATISFIABLE);
    assert_eq!(header(&headers, "content-range"), "bytes */1000");
    assert_eq!(problem(&body)["status"], 416);
}

#[tokio::test]
async fn an_unwritable_audio_directory_is_a_503_and_records_nothing() {
    let mut audio = Audio::as_user(ADMIN).await;
    let id = audio.create().await;
    // Tests run as root, which ignores permission bits; a directory under a file cannot exist.
    std::fs::create_dir_all(&audio.root).unwrap();
    let blocker = audio.root.join("file.txt");
    std::fs::write(&blocker, "not a directory").unwrap();
    audio.dir = blocker.join("audio");
    let file = recording(100);
    let (status, _, body) = audio.put(&id, 0, &file, &[length(&file), hex_digest(&file)]).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    let detail = body["detail"].as_str().unwrap();
    assert!(detail.contains("audio storage") && !detail.contains("file.txt"), "{detail}");
    let now = audio.status(&id).await;
    assert_eq!((now["received"].as_i64(), now["size"].as_i64()), (Some(0), None));
}

#[tokio::test]
async fn only_the_author_uploads_and_only_note_readers_listen() {
    let author = Audio::as_user(NURSE).await;
    let id = author.create().await;
    let file = recording(500);

    let colleague = author.as_other(GARCIA).await;
    let (status, _, body) = colleague.put(&id, 0, &file, &[length(&file), hex_digest(&file)]).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(author.status(&id).await["received"], 0);

    author.upload(&id, &file).await;
    let (status, _, bytes) = colleague.get(&id, None).await;
    assert_eq!((status, bytes), (StatusCode::OK, file), "encounters|notes_a reads everyone's");

    let front_desk = author.as_other(FRONT_DESK).await;
    let (status, _, _) = front_desk.get(&id, None).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _, _) =
        front_desk.send("GET", &format!("/api/transcriptions/{id}/audio/status"), &[], &[]).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn over_a_real_socket_a_range_streams_with_its_length() {
    let audio = Audio::as_user(ADMIN).await;
    let id = audio.create().await;
    let file = recording(50_000);
    for (n, chunk) in file.chunks(16_000).enumerate() {
        let declared = if n == 0 { vec![length(&file), hex_digest(&file)] } else { vec![] };
        let (status, _, body) = audio.put(&id, n * 16_000, chunk, &declared).await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    let server = RunningServer::start(audio.api.db.state_with(&audio.settings())).await;
    let resp = reqwest::Client::new()
        .get(server.url(&format!("/api/transcriptions/{id}/audio")))
        .bearer_auth(&audio.api.token)
        .header("range", "bytes=100-40099")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 206);
    assert_eq!(resp.headers()["content-length"], "40000");
    assert_eq!(resp.bytes().await.unwrap(), &file[100..40_100]);
}
