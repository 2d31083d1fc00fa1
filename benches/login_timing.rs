//! Timing equalisation of failed sign-ins: an unknown (or inactive) user verifies a dummy hash, so
//! the answer takes about as long as a wrong password for a real bcrypt user. Prints the medians
//! and their ratio; a ratio near 1.0 means response time does not reveal whether a user exists.
//!
//!   cargo bench --bench login_timing

use std::time::{Duration, Instant};

use mmt_sidecar::service::credentials::PasswordVerifier;

const ROUNDS: usize = 25;

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

async fn time(verifier: &PasswordVerifier, hash: Option<&str>) -> Duration {
    let mut samples = Vec::with_capacity(ROUNDS);
    for _ in 0..ROUNDS {
        let started = Instant::now();
        let ok = verifier.verify("wrong-password".into(), hash.map(str::to_string)).await.unwrap();
        samples.push(started.elapsed());
        assert!(!ok);
    }
    median(samples)
}

fn fixture_hash(user: &str) -> String {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/openemr-fixtures/passwords.json");
    let all: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    all[user]["hash"].as_str().unwrap().to_string()
}

#[tokio::main]
async fn main() {
    let verifier = PasswordVerifier::new(1, Duration::from_secs(60));
    let unknown = time(&verifier, None).await;
    println!("failed sign-in timing, median of {ROUNDS} (bcrypt cost 10 is OpenEMR's default):");
    println!("  {:<34} {:>8.1} ms", "unknown or inactive user (dummy)", unknown.as_secs_f64() * 1e3);
    for (user, label) in [
        ("admin", "wrong password, bcrypt $2y$10$"),
        ("nkim", "wrong password, SHA-512 crypt 100k"),
        ("drgarcia", "wrong password, argon2id (PHP)"),
    ] {
        let wrong = time(&verifier, Some(&fixture_hash(user))).await;
        println!(
            "  {label:<34} {:>8.1} ms   ratio to unknown user {:.2}",
            wrong.as_secs_f64() * 1e3,
            wrong.as_secs_f64() / unknown.as_secs_f64()
        );
    }
}
