#![no_main]

use libfuzzer_sys::fuzz_target;
use mmt_sidecar::domain::patient_search::{Needle, parse_query};

fuzz_target!(|query: &str| {
    for needle in parse_query(query) {
        if let Needle::Prefix(term) = needle {
            // Terms are bound against an ASCII column of at most 64 characters.
            assert!(term.is_ascii() && !term.is_empty() && term.len() <= 64, "{term:?}");
        }
    }
});
