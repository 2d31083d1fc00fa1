#![no_main]

use libfuzzer_sys::fuzz_target;
use mmt_sidecar::php::password;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Some((password, hash)) = text.split_once('\n') else {
        return;
    };
    // Costs come from the hash; big ones (rounds=, m=, t=, bcrypt cost) only make the run slow, like PHP.
    let costly_number = hash
        .split(|c: char| !c.is_ascii_digit())
        .any(|digits| digits.len() > 4);
    let costly_bcrypt = hash.starts_with("$2") && hash.get(4..6).is_some_and(|cost| cost > "06");
    if costly_number || costly_bcrypt {
        return;
    }
    let _ = password::format_of(hash);
    let _ = password::verify(password, hash);
});
