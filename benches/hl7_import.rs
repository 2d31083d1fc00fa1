//! HL7 v2 import (issue 16). Starts a private MariaDB (scripts/db.sh) with schema/ and
//! openemr-fixtures/ and the release binary with its MLLP listener. Then `ORU^R01` results for the
//! demo patients (three results each, no OpenEMR order: the patient is matched from PID and a
//! results-only order made), over HTTP at 8 concurrent clients, the same messages again (resends,
//! answered from the kept message), and new ones over 4 MLLP connections; messages/s and
//! p50/p99 per path. Everything it starts it stops.
//!
//!   cargo bench --bench hl7_import
//!
//! BENCH_MESSAGES (default 1600) messages per path.

#[path = "support/http.rs"]
mod http_support;
#[path = "support/mod.rs"]
mod support;

use std::time::Instant;

use http_support::{peak_rss_mib, percentile, sign_in, start_sidecar};
use mmt_sidecar::domain::hl7::{framed, next_block};
use support::{Guard, free_ports, machine, sql};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

const HTTP_CLIENTS: usize = 8;
const MLLP_CONNECTIONS: usize = 4;

fn oru(control: &str, (family, given, dob): &(String, String, String)) -> String {
    format!(
        "MSH|^~\\&|LAB|ACME|MMT|CLINIC|20261201101500||ORU^R01|{control}|P|2.5.1\r\
PID|1||||{family}^{given}||{dob}\r\
OBR|1||F-{control}|24323-8^Comprehensive metabolic panel^LN|||20261130083000||||||||||||||20261201101000|||F\r\
OBX|1|NM|2823-3^Potassium^LN||4.1|mmol/L|3.5-5.1|N|||F\r\
OBX|2|NM|2951-2^Sodium^LN||139|mmol/L|135-145|N|||F\r\
OBX|3|NM|2345-7^Glucose^LN||131|mg/dL|70-99|H|||F"
    )
}

fn msa_code(ack: &str) -> &str {
    ack.split('\r').find(|s| s.starts_with("MSA|")).and_then(|s| s.split('|').nth(1)).unwrap_or("")
}

/// Each client posts its share in turn; latencies in microseconds, sorted, and messages/s.
async fn over_http(base: &str, token: &str, messages: &[String]) -> (f64, Vec<u64>) {
    let client = reqwest::Client::new();
    let started = Instant::now();
    let tasks: Vec<_> = messages
        .chunks(messages.len().div_ceil(HTTP_CLIENTS))
        .map(|share| {
            let (client, url, token, share) =
                (client.clone(), format!("{base}/api/hl7/"), token.to_string(), share.to_vec());
            tokio::spawn(async move {
                let mut micros = Vec::with_capacity(share.len());
                for message in share {
                    let at = Instant::now();
                    let reply = client
                        .post(&url)
                        .bearer_auth(&token)
                        .header("content-type", "application/hl7-v2")
                        .body(message)
                        .send()
                        .await
                        .unwrap();
                    let ack = reply.text().await.unwrap();
                    assert_eq!(msa_code(&ack), "AA", "{ack}");
                    micros.push(at.elapsed().as_micros() as u64);
                }
                micros
            })
        })
        .collect();
    collect(started, tasks).await
}

/// Each connection sends its share one message at a time, waiting for each ACK.
async fn over_mllp(addr: &str, messages: &[String]) -> (f64, Vec<u64>) {
    let started = Instant::now();
    let tasks: Vec<_> = messages
        .chunks(messages.len().div_ceil(MLLP_CONNECTIONS))
        .map(|share| {
            let (addr, share) = (addr.to_string(), share.to_vec());
            tokio::spawn(async move {
                let mut stream = TcpStream::connect(&addr).await.unwrap();
                let (mut micros, mut received, mut chunk) = (Vec::new(), Vec::new(), vec![0u8; 8192]);
                for message in share {
                    let at = Instant::now();
                    stream.write_all(&framed(&message)).await.unwrap();
                    let ack = loop {
                        if let Some((Some(ack), used)) = next_block(&received) {
                            let ack = String::from_utf8(ack.to_vec()).unwrap();
                            received.drain(..used);
                            break ack;
                        }
                        let n = stream.read(&mut chunk).await.unwrap();
                        assert!(n > 0, "the listener closed the connection");
                        received.extend_from_slice(&chunk[..n]);
                    };
                    assert_eq!(msa_code(&ack), "AA", "{ack}");
                    micros.push(at.elapsed().as_micros() as u64);
                }
                micros
            })
        })
        .collect();
    collect(started, tasks).await
}

async fn collect(started: Instant, tasks: Vec<tokio::task::JoinHandle<Vec<u64>>>) -> (f64, Vec<u64>) {
    let mut all = Vec::new();
    for task in tasks {
        all.extend(task.await.unwrap());
    }
    all.sort_unstable();
    (all.len() as f64 / started.elapsed().as_secs_f64(), all)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let total = std::env::var("BENCH_MESSAGES").ok().and_then(|v| v.parse().ok()).unwrap_or(1600usize);
    let [db_port, http_port, mllp_port] = free_ports::<3>();
    let mut guard = Guard::new("mmt-bench-hl7");
    guard.start_db(db_port);
    let database_url = format!("mysql://mmt:mmt@127.0.0.1:{db_port}/openemr");
    let mllp_addr = format!("127.0.0.1:{mllp_port}");
    let env = [("MMT_HL7_LISTEN_ADDR", mllp_addr.as_str()), ("MMT_HL7_LISTEN_USER", "drgarcia")];
    let server = start_sidecar(&mut guard, http_port, &database_url, &env).await;
    let base = format!("http://127.0.0.1:{http_port}");
    let token = sign_in(&reqwest::Client::new(), &base, "drgarcia", "Physician-Garcia-2").await;

    // Patients whose name and birth date match no one else's, so every message files.
    let listed = sql(
        &guard.dir,
        "SELECT lname, fname, DATE_FORMAT(DOB, '%Y%m%d') FROM patient_data p WHERE DOB IS NOT NULL \
         AND (SELECT COUNT(*) FROM patient_data q WHERE q.lname = p.lname AND q.DOB = p.DOB) = 1 \
         AND lname NOT REGEXP '[|^~&\\\\\\\\]' AND fname NOT REGEXP '[|^~&\\\\\\\\]' ORDER BY pid LIMIT 50",
    );
    let patients: Vec<(String, String, String)> = listed
        .lines()
        .filter_map(|l| {
            let mut f = l.split('\t');
            Some((f.next()?.to_string(), f.next()?.to_string(), f.next()?.to_string()))
        })
        .collect();
    assert!(!patients.is_empty(), "no demo patients to send results for");
    let batch = |prefix: &str| {
        (0..total).map(|i| oru(&format!("{prefix}-{i}"), &patients[i % patients.len()])).collect::<Vec<_>>()
    };

    let http = batch("H");
    let (http_rate, http_micros) = over_http(&base, &token, &http).await;
    let (resend_rate, resend_micros) = over_http(&base, &token, &http).await;
    let (mllp_rate, mllp_micros) = over_mllp(&mllp_addr, &batch("L")).await;

    let reports = sql(&guard.dir, "SELECT COUNT(*) FROM procedure_report");
    assert_eq!(reports.parse::<usize>().unwrap(), 2 * total, "each new message filed once, no resend again");
    println!();
    println!("mmt-sidecar HL7 v2 import benchmark, {}", machine());
    println!();
    println!(
        "| ORU^R01, 3 results, patient matched from PID | clients | messages | msg/s | p50 ms | p99 ms |"
    );
    println!("|---|--:|--:|--:|--:|--:|");
    for (path, clients, rate, micros) in [
        ("HTTP `POST /api/hl7/`, new", HTTP_CLIENTS, http_rate, &http_micros),
        ("HTTP, the same messages resent", HTTP_CLIENTS, resend_rate, &resend_micros),
        ("MLLP, new", MLLP_CONNECTIONS, mllp_rate, &mllp_micros),
    ] {
        println!(
            "| {path} | {clients} | {} | {rate:.0} | {:.1} | {:.1} |",
            micros.len(),
            percentile(micros, 0.5),
            percentile(micros, 0.99)
        );
    }
    println!();
    println!("procedure_report rows filed: {reports}");
    let rss = peak_rss_mib(server).map_or("unknown".into(), |v| format!("{v:.1} MiB"));
    println!("sidecar peak RSS (VmHWM): {rss}");
    drop(guard);
}
