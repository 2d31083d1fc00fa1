//! Encryption at rest (issue 17). Starts a private MariaDB (scripts/db.sh) with schema/ and
//! openemr-fixtures/ and the release binary, then as drgarcia: creates dictated notes (20 segments
//! each), reads them back (every title, note and segment opened), uploads and downloads a 40 MB
//! recording sealed in 1 MiB records (checked byte for byte; the sidecar's peak memory after), and times `mmt-sidecar rotate-key`'s
//! job resealing all of it. Everything it starts it stops.
//!
//!   cargo bench --bench encryption
//!
//! BENCH_NOTES (default 500) notes; BENCH_READS (default 1000) reads.

#[path = "support/http.rs"]
mod http_support;
#[path = "support/mod.rs"]
mod support;

use std::{
    process::Command,
    time::{Duration, Instant},
};

use futures_util::{StreamExt, stream};
use http_support::{peak_rss_mib, percentile, sign_in, start_sidecar, wait_until};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use support::{Guard, free_ports, machine, sql};

const MB: usize = 1024 * 1024;
const CHUNK: usize = 8 * MB;

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

struct Api {
    client: reqwest::Client,
    base: String,
    token: String,
}

impl Api {
    fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.client.request(method, format!("{}{path}", self.base)).bearer_auth(&self.token)
    }

    async fn create_note(&self, n: usize) -> (String, u64) {
        let id = uuid::Uuid::new_v4().to_string();
        let segments: Vec<Value> = (0..20)
            .map(|seq| {
                let text = format!("Segment {seq} of note {n}: the patient describes the cough, worse at night, no fever, sputum clear, sleep disturbed.");
                json!({"seq": seq, "start_ms": seq * 5000, "end_ms": seq * 5000 + 4900, "text": text})
            })
            .collect();
        let body = json!({"id": id, "pid": 1 + (n % 9) as i64, "title": format!("Follow-up {n}"), "segments": segments});
        let started = Instant::now();
        let resp =
            self.request(reqwest::Method::POST, "/api/transcriptions/").json(&body).send().await.unwrap();
        assert_eq!(resp.status(), 201, "{}", resp.text().await.unwrap());
        (id, started.elapsed().as_micros() as u64)
    }

    async fn read_note(&self, id: &str) -> u64 {
        let started = Instant::now();
        let resp =
            self.request(reqwest::Method::GET, &format!("/api/transcriptions/{id}/")).send().await.unwrap();
        assert_eq!(resp.status(), 200);
        let note: Value = resp.json().await.unwrap();
        assert_eq!(note["segments"].as_array().map(Vec::len), Some(20));
        started.elapsed().as_micros() as u64
    }

    async fn upload_audio(&self, id: &str, audio: &[u8]) -> Duration {
        let digest = hex::encode(Sha256::digest(audio));
        let started = Instant::now();
        for (i, chunk) in audio.chunks(CHUNK).enumerate() {
            let resp = self
                .request(reqwest::Method::PUT, &format!("/api/transcriptions/{id}/audio"))
                .header("upload-offset", (i * CHUNK).to_string())
                .header("upload-length", audio.len().to_string())
                .header("x-audio-sha256", &digest)
                .header("content-type", "audio/webm")
                .body(chunk.to_vec())
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status(), 200, "{}", resp.text().await.unwrap());
        }
        started.elapsed()
    }

    async fn download_audio(&self, id: &str, audio: &[u8]) -> Duration {
        let started = Instant::now();
        let resp = self
            .request(reqwest::Method::GET, &format!("/api/transcriptions/{id}/audio"))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        let bytes = resp.bytes().await.unwrap();
        let took = started.elapsed();
        assert!(bytes == audio, "the audio reads back byte for byte");
        took
    }
}

fn recording(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 31 % 251) as u8).collect()
}

#[tokio::main]
async fn main() {
    let (notes, reads) = (env_or("BENCH_NOTES", 500), env_or("BENCH_READS", 1000));
    let [db_port, http_port] = free_ports::<2>();
    let mut guard = Guard::new("mmt-bench-sealed");
    guard.start_db(db_port);
    let audio_dir = guard.dir.join("audio");
    let database_url = format!("mysql://mmt:mmt@127.0.0.1:{db_port}/openemr");
    let audio_dir = audio_dir.to_str().unwrap().to_string();
    let env = [("MMT_AUDIO_DIR", audio_dir.as_str()), ("MMT_WORKERS", "1")];
    let server = start_sidecar(&mut guard, http_port, &database_url, &env).await;
    let base = format!("http://127.0.0.1:{http_port}");
    let client = reqwest::Client::new();
    let token = sign_in(&client, &base, "drgarcia", "Physician-Garcia-2").await;
    let admin = Api {
        token: sign_in(&client, &base, "admin", "Sidecar-Admin-1").await,
        client: client.clone(),
        base: base.clone(),
    };
    let api = Api { client, base, token };

    let created: Vec<(String, u64)> =
        stream::iter(0..notes).map(|n| api.create_note(n)).buffer_unordered(8).collect().await;
    let mut create_us: Vec<u64> = created.iter().map(|c| c.1).collect();
    create_us.sort_unstable();
    let mut read_us = Vec::with_capacity(reads);
    for i in 0..reads {
        read_us.push(api.read_note(&created[i % created.len()].0).await);
    }
    read_us.sort_unstable();

    let audio = recording(40 * MB);
    let up = api.upload_audio(&created[0].0, &audio).await;
    let down = api.download_audio(&created[0].0, &audio).await;
    let mb_per_s = |d: Duration| audio.len() as f64 / MB as f64 / d.as_secs_f64();
    let rss = peak_rss_mib(server).map_or("unknown".into(), |v| format!("{v:.1} MiB"));

    let values = sql(
        &guard.dir,
        "SELECT (SELECT COUNT(*) * 2 FROM mmt_transcriptions) + (SELECT COUNT(*) FROM mmt_transcription_segments) \
         + (SELECT COUNT(*) * 2 FROM mmt_transcription_revisions)",
    );
    let started = Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_mmt-sidecar"))
        .arg("rotate-key")
        .env("DATABASE_URL", &database_url)
        .env("MMT_MASTER_KEY", support::MASTER_KEY)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let printed = String::from_utf8_lossy(&out.stdout).to_string();
    let job = printed.split_whitespace().skip_while(|w| *w != "job").nth(1).unwrap().to_string();
    let poll = || admin.request(reqwest::Method::GET, &format!("/api/jobs/{job}/")).send();
    wait_until("the key.rotate job", Duration::from_secs(600), || async {
        let job: Value = poll().await.unwrap().json().await.unwrap();
        assert_ne!(job["state"], "failed", "{job}");
        job["state"] == "succeeded"
    })
    .await;
    let rotation = started.elapsed();
    let result = poll().await.unwrap().json::<Value>().await.unwrap()["result"].clone();

    println!();
    println!("mmt-sidecar encryption-at-rest benchmark (AES-256-GCM, ring), {}", machine());
    println!();
    println!("| operation | count | p50 ms | p99 ms |");
    println!("|---|--:|--:|--:|");
    println!(
        "| create a note, 20 segments (8 in flight) | {notes} | {:.1} | {:.1} |",
        percentile(&create_us, 50.0),
        percentile(&create_us, 99.0)
    );
    println!(
        "| read a note, 20 segments (one client) | {reads} | {:.1} | {:.1} |",
        percentile(&read_us, 50.0),
        percentile(&read_us, 99.0)
    );
    println!();
    println!(
        "40 MB recording: upload {:.1} MB/s (8 MB chunks), download {:.1} MB/s; sidecar peak RSS {rss}",
        mb_per_s(up),
        mb_per_s(down)
    );
    println!(
        "rotate-key: {values} sealed values and 1 audio file resealed in {:.1} s ({:.0} values/s); job result {result}",
        rotation.as_secs_f64(),
        values.parse::<f64>().unwrap_or(0.0) / rotation.as_secs_f64()
    );
    drop(guard);
}
