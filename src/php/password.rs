//! Password verification with the outcome of OpenEMR's `AuthHash::passwordVerify` (PHP 8).
//!
//! PHP verifies crypt(3)-style hashes by recomputing the whole string and comparing it with the stored
//! one, so a hash that a lenient parser would accept but that is not exactly what `crypt()` emits is
//! rejected here as well.

use std::collections::HashMap;

use argon2::{Argon2, PasswordHash, PasswordHasher, PasswordVerifier};
use rand::{Rng, distr::Alphanumeric};
use sha_crypt::{Params, sha256_crypt, sha512_crypt};
use subtle::ConstantTimeEq;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HashFormat {
    /// `$2y$`, `$2a$` or `$2b$`.
    Bcrypt,
    /// `$2a$05$` with `.` at index 28: OpenEMR 4.1.2–5.0.x (21-char salt) or a plain bcrypt hash.
    LegacyBcrypt21Salt,
    Argon2i,
    Argon2id,
    Sha512Crypt,
    Sha256Crypt,
}

pub fn format_of(hash: &str) -> Option<HashFormat> {
    let prefix = |p: &str| hash.starts_with(p);
    if prefix("$2a$05$") && hash.as_bytes().get(28) == Some(&b'.') {
        Some(HashFormat::LegacyBcrypt21Salt)
    } else if prefix("$2y$") || prefix("$2a$") || prefix("$2b$") {
        Some(HashFormat::Bcrypt)
    } else if prefix("$argon2i$") {
        Some(HashFormat::Argon2i)
    } else if prefix("$argon2id$") {
        Some(HashFormat::Argon2id)
    } else if prefix("$6$") {
        Some(HashFormat::Sha512Crypt)
    } else if prefix("$5$") {
        Some(HashFormat::Sha256Crypt)
    } else {
        None
    }
}

pub fn verify(password: &str, hash: &str) -> bool {
    // OpenEMR tests PHP's empty(), which is also true for "0".
    if matches!(password, "" | "0") || matches!(hash, "" | "0") {
        return false;
    }
    match format_of(hash) {
        None => false,
        Some(HashFormat::Bcrypt) => bcrypt_matches(password, hash),
        Some(HashFormat::LegacyBcrypt21Salt) => {
            bcrypt_matches(password, hash) || legacy_matches(password, hash)
        }
        Some(HashFormat::Argon2i | HashFormat::Argon2id) => argon2_matches(password, hash),
        Some(HashFormat::Sha512Crypt | HashFormat::Sha256Crypt) => sha_crypt_matches(password, hash),
    }
}

/// The algorithm and options OpenEMR's `AuthHash::passwordHash` makes new hashes with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HashScheme {
    Bcrypt { cost: u32 },
    Argon2 { id: bool, memory_kib: u32, time: u32, threads: u32 },
    Sha512 { rounds: u32 },
}

impl HashScheme {
    pub const GLOBALS: [&str; 6] = [
        "gbl_auth_hash_algo",
        "gbl_auth_bcrypt_hash_cost",
        "gbl_auth_argon_hash_memory_cost",
        "gbl_auth_argon_hash_time_cost",
        "gbl_auth_argon_hash_thread_cost",
        "gbl_auth_sha512_rounds",
    ];

    /// From OpenEMR's globals; `DEFAULT` (or no value) means PHP's own default: bcrypt at cost 10,
    /// argon2 with m=65536 KiB, t=4, p=1, and 100000 SHA-512 rounds (OpenEMR's default).
    pub fn from_globals(globals: &HashMap<String, String>) -> Self {
        let option = |name: &str, default: u32| {
            globals.get(name).and_then(|v| v.trim().parse::<u32>().ok()).unwrap_or(default)
        };
        let argon2 = |id| Self::Argon2 {
            id,
            memory_kib: option("gbl_auth_argon_hash_memory_cost", 65_536),
            time: option("gbl_auth_argon_hash_time_cost", 4),
            threads: option("gbl_auth_argon_hash_thread_cost", 1),
        };
        match globals.get("gbl_auth_hash_algo").map(|v| v.trim()) {
            Some("ARGON2I") => argon2(false),
            Some("ARGON2ID") => argon2(true),
            Some("SHA512HASH") => Self::Sha512 { rounds: option("gbl_auth_sha512_rounds", 100_000) },
            _ => Self::Bcrypt { cost: option("gbl_auth_bcrypt_hash_cost", 10) },
        }
    }
}

/// A new hash of `password` in the format PHP's `password_hash` (or, for SHA-512, OpenEMR's
/// `crypt` call) writes, which [`verify`] and PHP's `password_verify` both accept. `None` only
/// when the scheme's options are out of the algorithm's range.
pub fn hash(password: &str, scheme: HashScheme) -> Option<String> {
    match scheme {
        HashScheme::Bcrypt { cost } => bcrypt::hash_with_result(c_string(password), cost)
            .ok()
            .map(|parts| parts.format_for_version(bcrypt::Version::TwoY)),
        HashScheme::Argon2 { id, memory_kib, time, threads } => {
            let algorithm = if id { argon2::Algorithm::Argon2id } else { argon2::Algorithm::Argon2i };
            let params = argon2::Params::new(memory_kib, time, threads, None).ok()?;
            let salt: [u8; 16] = rand::rng().random();
            Argon2::new(algorithm, argon2::Version::V0x13, params)
                .hash_password_with_salt(password.as_bytes(), &salt)
                .ok()
                .map(|h| h.to_string())
        }
        HashScheme::Sha512 { rounds } => {
            let salt: String = rand::rng().sample_iter(Alphanumeric).take(16).map(char::from).collect();
            String::from_utf8(sha_crypt_string("$6$", Some(rounds), salt.as_bytes(), password)?).ok()
        }
    }
}

/// A valid bcrypt (cost 10) hash of a random, discarded password, for verifying unknown users.
pub fn dummy_hash() -> &'static str {
    "$2y$10$6acP/IzjZQTOnsLZM2SdXOqcraYFkLHOmmaZwY9OC8q/4fm/.dfFS"
}

/// crypt() takes C strings, so PHP ignores everything from the first NUL on.
fn c_string(password: &str) -> &[u8] {
    let bytes = password.as_bytes();
    bytes.split(|&b| b == 0).next().unwrap_or(bytes)
}

fn bcrypt_matches(password: &str, hash: &str) -> bool {
    let version = match hash.get(..4) {
        Some("$2a$") => bcrypt::Version::TwoA,
        Some("$2b$") => bcrypt::Version::TwoB,
        Some("$2y$") => bcrypt::Version::TwoY,
        _ => return false,
    };
    let Ok(parts) = hash.parse::<bcrypt::HashParts>() else {
        return false;
    };
    bcrypt::hash_with_salt(c_string(password), parts.get_cost(), parts.get_salt_raw()).is_ok_and(|computed| {
        let computed = computed.format_for_version(version);
        computed.as_bytes().ct_eq(hash.as_bytes()).into()
    })
}

/// Old crypt_blowfish zero-filled the 16th salt byte of a 21-char salt; salt characters 21-22 being
/// `..` encode exactly that (facts §2.2 item 3).
fn legacy_matches(password: &str, hash: &str) -> bool {
    let mut fixed = hash.as_bytes().to_vec();
    fixed[27] = b'.';
    String::from_utf8(fixed).is_ok_and(|fixed| bcrypt_matches(password, &fixed))
}

/// Refuses hashes asking for more memory than this, which would abort the process on allocation.
const ARGON2_MAX_KIB: u32 = 1 << 20;

fn argon2_matches(password: &str, hash: &str) -> bool {
    let Ok(parsed) = PasswordHash::new(hash) else {
        return false;
    };
    // libargon2 (PHP) requires exactly m, t, p in this order; the PHC parser accepts any order.
    let names = parsed.params.iter().map(|(name, _)| name.as_str().to_owned());
    let memory_ok = argon2::Params::try_from(&parsed).is_ok_and(|p| p.m_cost() <= ARGON2_MAX_KIB);
    names.eq(["m", "t", "p"])
        && memory_ok
        && Argon2::default().verify_password(password.as_bytes(), &parsed).is_ok()
}

fn sha_crypt_matches(password: &str, hash: &str) -> bool {
    let (prefix, rest) = hash.split_at(3);
    let (rounds, rest) = match rounds_field(rest) {
        RoundsField::Absent => (None, rest),
        RoundsField::Canonical(rounds, tail) => (Some(rounds), tail),
        RoundsField::Unusable => return false,
    };
    let salt_len = rest.bytes().take(16).position(|b| b == b'$' || b == 0).unwrap_or(rest.len().min(16));
    let salt = &rest.as_bytes()[..salt_len];
    sha_crypt_string(prefix, rounds, salt, password)
        .is_some_and(|expected| expected.ct_eq(hash.as_bytes()).into())
}

/// What crypt(3) emits for a `$5$`/`$6$` setting with this salt and optional rounds field.
fn sha_crypt_string(prefix: &str, rounds: Option<u32>, salt: &[u8], password: &str) -> Option<Vec<u8>> {
    let params = Params::new(rounds.unwrap_or(Params::RECOMMENDED_ROUNDS)).ok()?;
    let mut out = prefix.as_bytes().to_vec();
    if let Some(rounds) = rounds {
        out.extend_from_slice(format!("rounds={rounds}$").as_bytes());
    }
    out.extend_from_slice(salt);
    out.push(b'$');
    let pw = c_string(password);
    if prefix == "$6$" {
        let raw = sha512_crypt(pw, salt, params);
        crypt_base64(&SHA512_ORDER.map(|i| raw[i]), &mut out);
    } else {
        let raw = sha256_crypt(pw, salt, params);
        crypt_base64(&SHA256_ORDER.map(|i| raw[i]), &mut out);
    }
    Some(out)
}

enum RoundsField<'a> {
    Absent,
    Canonical(u32, &'a str),
    /// PHP reads a number here but would emit a different string (or fail), so no hash can match.
    Unusable,
}

/// PHP's crypt reads `rounds=` with strtoul and takes it as rounds only if a `$` follows.
fn rounds_field(rest: &str) -> RoundsField<'_> {
    let Some((field, tail)) = rest.strip_prefix("rounds=").and_then(|r| r.split_once('$')) else {
        return RoundsField::Absent;
    };
    let unsigned = field.trim_start_matches([' ', '\t', '\n', '\x0b', '\x0c', '\r']);
    let digits = unsigned.strip_prefix(['+', '-']).unwrap_or(unsigned);
    let strtoul_reads_all = !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit());
    if !field.is_empty() && !strtoul_reads_all {
        return RoundsField::Absent;
    }
    match field.parse::<u32>() {
        Ok(n) if n.to_string() == field => RoundsField::Canonical(n, tail),
        _ => RoundsField::Unusable,
    }
}

/// Byte order of crypt's base64 output (the sha-crypt crate keeps its tables private); each group of
/// three is then written least significant 6 bits first.
const SHA512_ORDER: [usize; 64] = [
    42, 21, 0, 1, 43, 22, 23, 2, 44, 45, 24, 3, 4, 46, 25, 26, 5, 47, 48, 27, 6, 7, 49, 28, 29, 8, 50, 51,
    30, 9, 10, 52, 31, 32, 11, 53, 54, 33, 12, 13, 55, 34, 35, 14, 56, 57, 36, 15, 16, 58, 37, 38, 17, 59,
    60, 39, 18, 19, 61, 40, 41, 20, 62, 63,
];
const SHA256_ORDER: [usize; 32] = [
    20, 10, 0, 11, 1, 21, 2, 22, 12, 23, 13, 3, 14, 4, 24, 5, 25, 15, 26, 16, 6, 17, 7, 27, 8, 28, 18, 29,
    19, 9, 30, 31,
];

fn crypt_base64(bytes: &[u8], out: &mut Vec<u8>) {
    const ALPHABET: &[u8; 64] = b"./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    for chunk in bytes.chunks(3) {
        let n = chunk.iter().enumerate().fold(0u32, |acc, (i, &b)| acc | u32::from(b) << (8 * i));
        out.extend((0..=chunk.len()).map(|i| ALPHABET[(n >> (6 * i)) as usize & 63]));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Made by PHP 8.2: crypt('pw', '$6$rounds=1000$abc$') and friends.
    const SHA512_1000: &str = "$6$rounds=1000$abc$yxe0KSjmoHd8rpohJgwvF5lnIQ/9t.klcz24a1cca3nWm.PLUmhXgcGgKWCoRFHRHYxXj4SVEtjCnCAwaFY0V0";
    const SHA512_5000: &str = "$6$rounds=5000$abc$MtSdWSZbhct2oe.SOqOUM2M/GA/uj5.vyVtJgRHgKi9uqXuWuJqOYE7H/YlsYGVg/YYzDV0xt3fEIwYt580.5.";
    const SHA512_DEFAULT: &str =
        "$6$abc$MtSdWSZbhct2oe.SOqOUM2M/GA/uj5.vyVtJgRHgKi9uqXuWuJqOYE7H/YlsYGVg/YYzDV0xt3fEIwYt580.5.";
    const SHA256_2000: &str = "$5$rounds=2000$ab$WITzhfsi9sVJCBEXFwvJQErI4SDtVmv.CnLI7B1Mjo6";
    const BCRYPT_04: &str = "$2y$04$abcdefghijklmnopqrstuuMFdJu9yVgmagVAIC24fOZkaFqd3s9JC";

    #[test]
    fn formats() {
        assert_eq!(format_of(BCRYPT_04), Some(HashFormat::Bcrypt));
        assert_eq!(format_of(dummy_hash()), Some(HashFormat::Bcrypt));
        assert_eq!(format_of(SHA512_1000), Some(HashFormat::Sha512Crypt));
        assert_eq!(format_of(SHA256_2000), Some(HashFormat::Sha256Crypt));
        assert_eq!(format_of("$argon2i$v=19$"), Some(HashFormat::Argon2i));
        assert_eq!(format_of("$argon2id$v=19$"), Some(HashFormat::Argon2id));
        assert_eq!(format_of("$argon2d$v=19$"), None);
        assert_eq!(format_of("$2x$04$abc"), None);
        assert_eq!(format_of("$1$abc$"), None);
        assert_eq!(
            format_of("$2a$05$Z2RM.D9GFLcbORGVkI07s.1H0hAeFXoZloOhosUbIEt6P0nDv0Ih6"),
            Some(HashFormat::LegacyBcrypt21Salt)
        );
    }

    #[test]
    fn sha_crypt_matches_php_output() {
        for hash in [SHA512_1000, SHA512_5000, SHA512_DEFAULT, SHA256_2000] {
            assert!(verify("pw", hash), "{hash}");
            assert!(!verify("pW", hash), "{hash}");
        }
        assert!(!verify("pw", &SHA512_1000.replace("=1000$", "=999$")));
        assert!(!verify("pw", &SHA512_1000.replace("=1000$", "=01000$")));
        assert!(!verify("pw", &format!("{SHA512_1000}$")));
    }

    #[test]
    fn bcrypt_and_php_quirks() {
        assert!(verify("a", BCRYPT_04));
        assert!(verify("a\0ignored", BCRYPT_04));
        assert!(!verify("b", BCRYPT_04));
        assert!(!verify("a", &BCRYPT_04.replace("$2y$", "$2x$")));
        assert!(!verify("a", &BCRYPT_04.replace("stuuM", "stuvM")));
        assert!(!verify("0", "$2y$04$abcdefghijklmnopqrstuuMFdJu9yVgmagVAIC24fOZkaFqd3s9JC"));
        assert!(!verify("", BCRYPT_04));
        assert!(!verify("a", ""));
    }

    #[test]
    fn dummy_hash_is_cost_10_and_rejects() {
        let parts: bcrypt::HashParts = dummy_hash().parse().expect("valid bcrypt");
        assert_eq!(parts.get_cost(), 10);
        assert!(!verify("password", dummy_hash()));
    }

    #[test]
    fn never_panics_on_odd_hashes() {
        for hash in [
            "$2a$05$",
            "$2a$05$aaaaaaaaaaaaaaaaaaaaa.",
            "$2a$05$ééééééééééééééééééééé.ééé",
            "$6$",
            "$5$rounds=",
            "$6$rounds=99999999999999999999$x$",
            "$6$ü$",
            "$argon2id$",
            "$argon2i$v=19$m=4294967295,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNo",
        ] {
            assert!(!verify("pw", hash), "{hash}");
        }
    }

    #[test]
    fn new_hashes_follow_openemrs_globals_and_verify() {
        let globals = |pairs: &[(&str, &str)]| -> HashMap<String, String> {
            pairs.iter().map(|(k, v)| ((*k).to_string(), (*v).to_string())).collect()
        };
        assert_eq!(HashScheme::from_globals(&globals(&[])), HashScheme::Bcrypt { cost: 10 });
        let cases = [
            (globals(&[("gbl_auth_hash_algo", "BCRYPT"), ("gbl_auth_bcrypt_hash_cost", "5")]), "$2y$05$"),
            (
                globals(&[("gbl_auth_hash_algo", "ARGON2ID"), ("gbl_auth_argon_hash_memory_cost", "512")]),
                "$argon2id$v=19$m=512,t=4,p=1$",
            ),
            (
                globals(&[("gbl_auth_hash_algo", "ARGON2I"), ("gbl_auth_argon_hash_time_cost", "DEFAULT")]),
                "$argon2i$v=19$m=65536,t=4,p=1$",
            ),
            (
                globals(&[("gbl_auth_hash_algo", "SHA512HASH"), ("gbl_auth_sha512_rounds", "1000")]),
                "$6$rounds=1000$",
            ),
        ];
        for (globals, prefix) in cases {
            let made = hash("Correct-Horse-7", HashScheme::from_globals(&globals)).unwrap();
            assert!(made.starts_with(prefix), "{made}");
            assert!(verify("Correct-Horse-7", &made), "{made}");
            assert!(!verify("Correct-Horse-8", &made), "{made}");
        }
        assert_eq!(hash("x", HashScheme::Bcrypt { cost: 99 }), None);
    }

    mod props {
        use super::super::*;
        use proptest::prelude::*;

        proptest! {
            #[test]
            fn never_panics(password in ".{0,80}", hash in "\\$(2[abxy]|argon2i|argon2id|5|6)\\$(0[0-5]\\$)?.{0,70}") {
                // "$5$"/"$6$" with a random tail rarely parse a rounds field, so they stay cheap.
                let _ = verify(&password, &hash);
            }
        }
    }
}
