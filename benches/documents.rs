//! Documents in OpenEMR's store (issue 13). Starts a private MariaDB (scripts/db.sh) with schema/
//! and openemr-fixtures/, a throwaway OpenEMR site folder, and the release binary with
//! `OPENEMR_SITE_DIR` (files encrypted as OpenEMR's default `drive_encryption` says). Then, as
//! drgarcia: uploads and downloads of 1 MB and 20 MB files (MB/s each way, every download checked
//! byte for byte), the sidecar's peak resident memory before and after the 20 MB uploads, and OCR
//! seconds per page for a scanned page (a prescription PDF the sidecar renders, rasterised at
//! 300 dpi by pdftoppm, read by Tesseract). Everything it starts it stops.
//!
//!   cargo bench --bench documents
//!
//! BENCH_ROUNDS (default 10) uploads per size (a quarter of that at 20 MB, at least 2).

#[path = "support/http.rs"]
mod http_support;
#[path = "support/mod.rs"]
mod support;

use std::{
    process::Command,
    time::{Duration, Instant},
};

use http_support::{peak_rss_mib, percentile, sign_in, start_sidecar, wait_until};
use serde_json::Value;
use support::{Guard, free_ports, machine, sql};

const MB: usize = 1024 * 1024;
/// The demo's "Medical Record" category.
const CATEGORY: &str = "3";
const PID: i64 = 9;

struct Api {
    client: reqwest::Client,
    base: String,
    token: String,
}

impl Api {
    async fn upload(&self, name: &str, mime: &str, bytes: Vec<u8>) -> i64 {
        let part = reqwest::multipart::Part::bytes(bytes).file_name(name.to_string()).mime_str(mime).unwrap();
        let form = reqwest::multipart::Form::new().text("category", CATEGORY).part("file", part);
        let reply: Value = self
            .client
            .post(format!("{}/api/patients/{PID}/documents/", self.base))
            .bearer_auth(&self.token)
            .multipart(form)
            .send()
            .await
            .unwrap()
            .error_for_status()
            .unwrap_or_else(|e| panic!("upload {name}: {e}"))
            .json()
            .await
            .unwrap();
        reply["id"].as_i64().expect("the document id")
    }

    async fn get(&self, path: &str) -> reqwest::Response {
        self.client
            .get(format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .send()
            .await
            .unwrap()
            .error_for_status()
            .unwrap_or_else(|e| panic!("GET {path}: {e}"))
    }
}

/// A PDF-typed file (OpenEMR's upload allow-list goes by the first bytes) of bytes that do not
/// compress, so nothing along the way can shortcut them.
fn random_file(size: usize, seed: u64) -> Vec<u8> {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut file = b"%PDF-1.4\n".to_vec();
    file.extend((file.len()..size).map(|_| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state >> 24) as u8
    }));
    file
}

/// MB/s and the median milliseconds per file, one way.
struct Rate {
    mb_per_s: f64,
    p50_ms: f64,
}

fn rate(size: usize, mut micros: Vec<u64>) -> Rate {
    let total: u64 = micros.iter().sum();
    micros.sort_unstable();
    let megabytes = (size * micros.len()) as f64 / MB as f64;
    Rate { mb_per_s: megabytes / (total as f64 / 1e6), p50_ms: percentile(&micros, 0.5) }
}

/// Uploads then downloads `rounds` files of `size` bytes, one at a time: (up, down).
async fn round_trips(api: &Api, size: usize, rounds: usize) -> (Rate, Rate) {
    let files: Vec<Vec<u8>> = (0..rounds).map(|i| random_file(size, i as u64 + size as u64)).collect();
    let (mut ids, mut up, mut down) = (Vec::new(), Vec::new(), Vec::new());
    for (i, file) in files.iter().enumerate() {
        let started = Instant::now();
        ids.push(api.upload(&format!("scan-{i}.pdf"), "application/pdf", file.clone()).await);
        up.push(started.elapsed().as_micros() as u64);
    }
    for (id, file) in ids.iter().zip(&files) {
        let started = Instant::now();
        let body = api.get(&format!("/api/documents/{id}/content")).await.bytes().await.unwrap();
        down.push(started.elapsed().as_micros() as u64);
        assert!(body.as_ref() == file.as_slice(), "document {id} came back different");
    }
    (rate(size, up), rate(size, down))
}

/// A scanned page: a prescription the sidecar renders, rasterised to a 300 dpi gray PNG.
async fn scanned_page(api: &Api, dir: &std::path::Path) -> Vec<u8> {
    let list: Value = api.get(&format!("/api/patients/{PID}/prescriptions/")).await.json().await.unwrap();
    let rx = list["items"][0]["id"].as_i64().expect("the demo patient has a prescription");
    let pdf = api.get(&format!("/api/prescriptions/{rx}/pdf")).await.bytes().await.unwrap();
    let input = dir.join("rx.pdf");
    std::fs::write(&input, &pdf).unwrap();
    let stem = dir.join("rx-scan");
    let status = Command::new("pdftoppm")
        .args(["-r", "300", "-gray", "-png", "-singlefile"])
        .arg(&input)
        .arg(&stem)
        .status()
        .expect("pdftoppm (poppler-utils) is required");
    assert!(status.success());
    std::fs::read(stem.with_extension("png")).unwrap()
}

/// Seconds from queueing OCR of the document to its job succeeding.
async fn ocr_seconds(api: &Api, id: i64) -> f64 {
    let started = Instant::now();
    let queued: Value = api
        .client
        .post(format!("{}/api/documents/{id}/ocr/", api.base))
        .bearer_auth(&api.token)
        .send()
        .await
        .unwrap()
        .error_for_status()
        .unwrap()
        .json()
        .await
        .unwrap();
    let job = queued["job_id"].as_str().expect("the OCR job id").to_string();
    wait_until("the OCR job", Duration::from_secs(300), || async {
        let state: Value = api.get(&format!("/api/jobs/{job}/")).await.json().await.unwrap();
        assert_ne!(state["state"], "failed", "{state}");
        state["state"] == "succeeded"
    })
    .await;
    started.elapsed().as_secs_f64()
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let rounds: usize = std::env::var("BENCH_ROUNDS").ok().and_then(|v| v.parse().ok()).unwrap_or(10);
    let [db_port, http_port] = free_ports::<2>();
    let mut guard = Guard::new("mmt-bench-docs");
    guard.start_db(db_port);
    let site = guard.dir.join("site");
    std::fs::create_dir_all(site.join("documents")).unwrap();
    let database_url = format!("mysql://mmt:mmt@127.0.0.1:{db_port}/openemr");
    let site_dir = site.to_str().unwrap().to_string();
    let env = [("OPENEMR_SITE_DIR", site_dir.as_str()), ("MMT_WORKERS", "1")];
    let server = start_sidecar(&mut guard, http_port, &database_url, &env).await;
    let base = format!("http://127.0.0.1:{http_port}");
    let client = reqwest::Client::new();
    let token = sign_in(&client, &base, "drgarcia", "Physician-Garcia-2").await;
    let api = Api { client, base, token };

    let one = round_trips(&api, MB, rounds).await;
    let before_large = peak_rss_mib(server);
    let twenty = round_trips(&api, 20 * MB, (rounds / 4).max(2)).await;
    let after_large = peak_rss_mib(server);

    let page = scanned_page(&api, &guard.dir).await;
    let mut ocr = Vec::new();
    for i in 0..3 {
        let id = api.upload(&format!("scan-{i}.png"), "image/png", page.clone()).await;
        ocr.push(ocr_seconds(&api, id).await);
    }
    ocr.sort_by(f64::total_cmp);

    let mib = |v: Option<f64>| v.map_or("unknown".into(), |v| format!("{v:.1} MiB"));
    println!();
    println!("mmt-sidecar documents benchmark (CryptoGen-encrypted files), {}", machine());
    println!();
    let encrypted = sql(&guard.dir, "SELECT CONCAT(SUM(encrypted = 1), ' of ', COUNT(*)) FROM documents");
    println!("files encrypted on disk: {encrypted}");
    println!();
    println!("| file | files | upload MB/s | upload p50 ms | download MB/s | download p50 ms |");
    println!("|---|--:|--:|--:|--:|--:|");
    for (label, n, (up, down)) in [("1 MB", rounds, one), ("20 MB", (rounds / 4).max(2), twenty)] {
        println!(
            "| {label} | {n} | {:.1} | {:.0} | {:.1} | {:.0} |",
            up.mb_per_s, up.p50_ms, down.mb_per_s, down.p50_ms
        );
    }
    println!();
    println!(
        "sidecar peak RSS (VmHWM): {} before the 20 MB files, {} after them",
        mib(before_large),
        mib(after_large)
    );
    println!("OCR of a scanned page (300 dpi, Tesseract): median {:.1} s, of {:?}", ocr[1], ocr);
    drop(guard);
}
