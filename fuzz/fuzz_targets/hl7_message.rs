#![no_main]

use libfuzzer_sys::fuzz_target;
use mmt_sidecar::domain::{hl7, hl7_import};

// Whatever a sender or an MLLP peer sends is answered, never a panic: framing, splitting, parsing.
fuzz_target!(|data: &[u8]| {
    if let Some((Some(message), _)) = hl7::next_block(data) {
        let _ = std::str::from_utf8(message).map(hl7_import::split);
    }
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    for message in hl7_import::split(text) {
        let _ = hl7_import::parse(&message);
    }
});
