#![no_main]

use libfuzzer_sys::fuzz_target;
use mmt_sidecar::php::session;

fuzz_target!(|data: &[u8]| {
    let _ = session::decode(data);
    if let Ok(id) = std::str::from_utf8(data) {
        let _ = session::is_valid_session_id(id);
    }
    // A session table row: `sess_time`, `sess_lifetime` and the clock, then `sess_data`.
    if let Some((head, row_data)) = data.split_first_chunk::<24>() {
        let [time, lifetime, now] =
            [0, 8, 16].map(|at| i64::from_le_bytes(head[at..at + 8].try_into().unwrap()));
        if !session::row_expired(time, lifetime, now) {
            let _ = session::decode(row_data);
        }
    }
});
