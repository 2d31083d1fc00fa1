#![no_main]

use libfuzzer_sys::fuzz_target;
use mmt_sidecar::php::session;

fuzz_target!(|data: &[u8]| {
    let _ = session::decode(data);
    if let Ok(id) = std::str::from_utf8(data) {
        let _ = session::is_valid_session_id(id);
    }
});
