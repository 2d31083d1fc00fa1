//! OpenEMR's `CryptoGen` standard format, versions 004 to 007:
//! `"00N" + base64( HMAC-SHA384(hmac_key, iv ‖ ct) [48] ‖ iv [16] ‖ AES-256-CBC-PKCS7(aes_key, iv, plain) )`.
//! Older versions (001–003) used other layouts and keys and are refused.

use aes::cipher::{BlockModeDecrypt, BlockModeEncrypt, KeyIvInit, block_padding::Pkcs7};
use base64::{Engine, engine::general_purpose::STANDARD};
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha384;

const MAC_LEN: usize = 48;
const IV_LEN: usize = 16;
pub const CURRENT_VERSION: u8 = 7;

/// One key version's pair: `<version>a` encrypts, `<version>b` authenticates.
#[derive(Clone)]
pub struct KeyPair {
    pub aes: [u8; 32],
    pub hmac: [u8; 32],
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CryptoError {
    #[error("the value was written with OpenEMR key version {0:03}, which the sidecar cannot read")]
    UnsupportedVersion(u8),
    #[error("the value is not valid CryptoGen output")]
    Malformed,
    #[error("the value's authentication code does not verify: wrong key or tampered value")]
    BadMac,
}

/// The key version named by the value's prefix, or None if the value is not encrypted at all
/// (OpenEMR passes such values through as plaintext).
pub fn version_of(value: impl AsRef<[u8]>) -> Option<u8> {
    let prefix = value.as_ref().get(..3)?;
    let version =
        prefix.iter().try_fold(0u16, |n, b| b.is_ascii_digit().then(|| n * 10 + u16::from(b - b'0')))?;
    (1..=7).contains(&version).then_some(version as u8)
}

/// OpenEMR's names for a version's keys (`sevena`/`sevenb` for 007), in the `keys` table and
/// in the site's `documents/logs_and_misc/methods/` folder alike.
pub fn key_labels(version: u8) -> Option<(String, String)> {
    let word = ["four", "five", "six", "seven"].get(usize::from(version).checked_sub(4)?)?;
    Some((format!("{word}a"), format!("{word}b")))
}

fn mac(keys: &KeyPair, iv: &[u8], ct: &[u8]) -> Hmac<Sha384> {
    let mut mac = <Hmac<Sha384> as KeyInit>::new_from_slice(&keys.hmac).expect("HMAC takes any key length");
    mac.update(iv);
    mac.update(ct);
    mac
}

/// Decrypts a value or a whole file (OpenEMR stores encrypted documents as this same text).
pub fn decrypt(value: impl AsRef<[u8]>, keys: &KeyPair) -> Result<Vec<u8>, CryptoError> {
    let value = value.as_ref();
    let version = version_of(value).ok_or(CryptoError::Malformed)?;
    if version < 4 {
        return Err(CryptoError::UnsupportedVersion(version));
    }
    let raw = STANDARD.decode(value[3..].trim_ascii_end()).map_err(|_| CryptoError::Malformed)?;
    if raw.len() < MAC_LEN + IV_LEN + 16 || !(raw.len() - MAC_LEN - IV_LEN).is_multiple_of(16) {
        return Err(CryptoError::Malformed);
    }
    let (tag, rest) = raw.split_at(MAC_LEN);
    let (iv, ct) = rest.split_at(IV_LEN);
    mac(keys, iv, ct).verify_slice(tag).map_err(|_| CryptoError::BadMac)?;
    cbc::Decryptor::<aes::Aes256>::new(&keys.aes.into(), iv.try_into().map_err(|_| CryptoError::Malformed)?)
        .decrypt_padded_vec::<Pkcs7>(ct)
        .map_err(|_| CryptoError::Malformed)
}

/// Encrypts as OpenEMR's current version (007) does, with a fresh random IV.
pub fn encrypt(plain: &[u8], keys: &KeyPair) -> String {
    encrypt_with_iv(plain, keys, rand::random())
}

fn encrypt_with_iv(plain: &[u8], keys: &KeyPair, iv: [u8; IV_LEN]) -> String {
    let ct =
        cbc::Encryptor::<aes::Aes256>::new(&keys.aes.into(), &iv.into()).encrypt_padded_vec::<Pkcs7>(plain);
    let tag = mac(keys, &iv, &ct).finalize().into_bytes();
    let mut raw = Vec::with_capacity(MAC_LEN + IV_LEN + ct.len());
    raw.extend_from_slice(&tag);
    raw.extend_from_slice(&iv);
    raw.extend_from_slice(&ct);
    format!("{CURRENT_VERSION:03}{}", STANDARD.encode(raw))
}

/// `encryptStandard` over a stream, for files too large to hold twice: ciphertext comes out block
/// by block, while the MAC and IV that head the stored value are known only at the end. The stored
/// value is `"007" + base64(head ‖ every ciphertext piece)`.
pub struct StreamEncryptor {
    cipher: cbc::Encryptor<aes::Aes256>,
    mac: Hmac<Sha384>,
    iv: [u8; IV_LEN],
    pending: Vec<u8>,
}

/// What [`StreamEncryptor::finish`] leaves: the last ciphertext and the value's head.
pub struct Sealed {
    pub last: Vec<u8>,
    /// MAC ‖ IV, the bytes that precede the ciphertext inside the base64.
    pub head: Vec<u8>,
}

impl StreamEncryptor {
    pub const PREFIX: &'static [u8] = b"007";

    pub fn new(keys: &KeyPair) -> Self {
        let iv: [u8; IV_LEN] = rand::random();
        let mut mac =
            <Hmac<Sha384> as KeyInit>::new_from_slice(&keys.hmac).expect("HMAC takes any key length");
        mac.update(&iv);
        Self { cipher: cbc::Encryptor::new(&keys.aes.into(), &iv.into()), mac, iv, pending: Vec::new() }
    }

    /// The ciphertext of every whole block now available.
    pub fn update(&mut self, data: &[u8]) -> Vec<u8> {
        self.pending.extend_from_slice(data);
        let whole = self.pending.len() - self.pending.len() % 16;
        let rest = self.pending.split_off(whole);
        let mut out = std::mem::replace(&mut self.pending, rest);
        let (blocks, _) = aes::Block::slice_as_chunks_mut(&mut out);
        self.cipher.encrypt_blocks(blocks);
        self.mac.update(&out);
        out
    }

    pub fn finish(mut self) -> Sealed {
        let last = self.cipher.encrypt_padded_vec::<Pkcs7>(&self.pending);
        self.mac.update(&last);
        let mut head = self.mac.finalize().into_bytes().to_vec();
        head.extend_from_slice(&self.iv);
        Sealed { last, head }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(a: u8, b: u8) -> KeyPair {
        KeyPair { aes: [a; 32], hmac: [b; 32] }
    }

    #[test]
    fn round_trips_and_matches_the_layout_php_writes() {
        let k = keys(3, 4);
        let value = encrypt_with_iv(b"JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP", &k, [5; 16]);
        assert_eq!(value.len(), 155, "a 32-character secret encrypts to 155 characters in OpenEMR");
        assert!(value.starts_with("007"));
        assert_eq!(decrypt(&value, &k).unwrap(), b"JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP");
    }

    #[test]
    fn refuses_wrong_keys_tampering_and_old_or_plain_values() {
        let k = keys(3, 4);
        let value = encrypt(b"secret", &k);
        assert_eq!(decrypt(&value, &keys(3, 9)), Err(CryptoError::BadMac));
        let mut tampered = value.clone().into_bytes();
        let last = tampered.len() - 3;
        tampered[last] = if tampered[last] == b'A' { b'B' } else { b'A' };
        assert_eq!(decrypt(std::str::from_utf8(&tampered).unwrap(), &k), Err(CryptoError::BadMac));
        assert_eq!(decrypt("003abcd", &k), Err(CryptoError::UnsupportedVersion(3)));
        assert_eq!(version_of("JBSWY3DPEHPK3PXP"), None);
        assert_eq!(version_of("008xyz"), None);
        assert_eq!(key_labels(7), Some(("sevena".into(), "sevenb".into())));
    }

    #[test]
    fn a_streamed_value_is_the_standard_format() {
        let k = keys(7, 8);
        let plain: Vec<u8> = (0..1000u32).map(|i| (i % 251) as u8).collect();
        let mut enc = StreamEncryptor::new(&k);
        let mut ct = Vec::new();
        for piece in plain.chunks(37) {
            ct.extend(enc.update(piece));
        }
        let sealed = enc.finish();
        ct.extend(sealed.last);
        let value =
            [StreamEncryptor::PREFIX, STANDARD.encode([sealed.head, ct].concat()).as_bytes()].concat();
        assert_eq!(decrypt(&value, &k).unwrap(), plain);
    }
}
