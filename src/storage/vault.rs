//! Encryption at rest of the sidecar's own PHI: transcription text, segments and revisions, chat,
//! extracted document text and dictation audio. Envelope encryption: AES-256-GCM data keys kept in
//! `mmt_data_keys` only wrapped by the master key from the configuration. Every sealed value names
//! the data key that sealed it, so a rotation adds a key and re-seals in the background while both
//! keys open values. A value is bound to its column (associated data), so it cannot be moved into
//! another column and opened there. OpenEMR's own tables are never touched.

use std::{
    collections::HashMap,
    sync::Arc,
    time::{Duration, Instant},
};

use base64::{Engine, engine::general_purpose::STANDARD};
use ring::{
    aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey},
    hmac,
    rand::{SecureRandom, SystemRandom},
};
use secrecy::{ExposeSecret, SecretSlice};
use sqlx::MySqlPool;
use tokio::sync::RwLock;

use crate::storage::{
    StorageError, advisory_lock,
    mmt::data_keys::{self, KeyRow, Purpose},
};

/// 0xFF never occurs in UTF-8, so a sealed value is never mistaken for text stored before sealing.
const MARK: [u8; 2] = [0xFF, 0x01];
const HEADER: usize = MARK.len() + 4;
const TAG: usize = 16;
/// Another replica may add a key (a rotation); keys are re-read at least this often.
const KEYS_MAX_AGE: Duration = Duration::from_secs(60);

/// The key that wraps the data keys: 32 random bytes, given base64-encoded.
#[derive(Clone)]
pub struct MasterKey(Arc<SecretSlice<u8>>);

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MasterKey(..)")
    }
}

impl MasterKey {
    pub fn parse(text: &str) -> Result<Self, &'static str> {
        let bytes =
            STANDARD.decode(text.trim()).map_err(|_| "expected base64 (e.g. `openssl rand -base64 32`)")?;
        if bytes.len() != 32 {
            return Err("expected 32 bytes, base64-encoded (e.g. `openssl rand -base64 32`)");
        }
        Ok(Self(Arc::new(bytes.into())))
    }

    fn aead(&self) -> LessSafeKey {
        aead_key(self.0.expose_secret())
    }

    /// Names the master key without revealing it.
    fn id(&self) -> [u8; 8] {
        let tag =
            hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, self.0.expose_secret()), b"mmt-sidecar master key");
        tag.as_ref()[..8].try_into().expect("HMAC-SHA-256 is 32 bytes")
    }

    fn wrap(&self, purpose: Purpose, key: &[u8]) -> Vec<u8> {
        seal_raw(&self.aead(), purpose.as_str().as_bytes(), key, Vec::new())
    }

    fn unwrap(&self, row: &KeyRow) -> Option<Vec<u8>> {
        open_raw(&self.aead(), row.purpose.as_bytes(), &row.wrapped).filter(|k| k.len() == 32)
    }
}

fn aead_key(bytes: &[u8]) -> LessSafeKey {
    LessSafeKey::new(UnboundKey::new(&AES_256_GCM, bytes).expect("AES-256 keys are 32 bytes"))
}

fn random<const N: usize>() -> [u8; N] {
    let mut bytes = [0; N];
    SystemRandom::new().fill(&mut bytes).expect("the system's random source works");
    bytes
}

/// Appends nonce, ciphertext and tag to `out`.
fn seal_raw(key: &LessSafeKey, aad: &[u8], plain: &[u8], mut out: Vec<u8>) -> Vec<u8> {
    let nonce = random::<NONCE_LEN>();
    out.reserve(NONCE_LEN + plain.len() + TAG);
    out.extend_from_slice(&nonce);
    let start = out.len();
    out.extend_from_slice(plain);
    let tag = key
        .seal_in_place_separate_tag(Nonce::assume_unique_for_key(nonce), Aad::from(aad), &mut out[start..])
        .expect("AES-GCM seals any length the database holds");
    out.extend_from_slice(tag.as_ref());
    out
}

fn open_raw(key: &LessSafeKey, aad: &[u8], sealed: &[u8]) -> Option<Vec<u8>> {
    let (nonce, rest) = sealed.split_at_checked(NONCE_LEN)?;
    let nonce = Nonce::try_assume_unique_for_key(nonce).ok()?;
    let mut buf = rest.to_vec();
    let len = key.open_in_place(nonce, Aad::from(aad), &mut buf).ok()?.len();
    buf.truncate(len);
    Some(buf)
}

/// A sealed column: its value is bound to the column it was written to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    TranscriptionTitle,
    TranscriptionText,
    RejectReason,
    SegmentText,
    RevisionText,
    RevisionReason,
    ChatText,
    RoomTitle,
    PageText,
    Hl7Message,
}

impl Field {
    pub const ALL: [Self; 10] = [
        Self::TranscriptionTitle,
        Self::TranscriptionText,
        Self::RejectReason,
        Self::SegmentText,
        Self::RevisionText,
        Self::RevisionReason,
        Self::ChatText,
        Self::RoomTitle,
        Self::PageText,
        Self::Hl7Message,
    ];

    pub fn table(self) -> &'static str {
        match self {
            Self::TranscriptionTitle | Self::TranscriptionText | Self::RejectReason => "mmt_transcriptions",
            Self::SegmentText => "mmt_transcription_segments",
            Self::RevisionText | Self::RevisionReason => "mmt_transcription_revisions",
            Self::ChatText => "mmt_chat_messages",
            Self::RoomTitle => "mmt_chat_rooms",
            Self::PageText => "mmt_document_text",
            Self::Hl7Message => "mmt_hl7_messages",
        }
    }

    pub fn column(self) -> &'static str {
        match self {
            Self::TranscriptionTitle | Self::RoomTitle => "title",
            Self::TranscriptionText | Self::RevisionText => "note_text",
            Self::RejectReason => "reject_reason",
            Self::SegmentText | Self::ChatText => "text",
            Self::RevisionReason => "reason",
            Self::PageText => "content",
            Self::Hl7Message => "raw",
        }
    }

    /// The row's primary key columns.
    pub fn key_columns(self) -> &'static [&'static str] {
        match self {
            Self::TranscriptionTitle | Self::TranscriptionText | Self::RejectReason => &["id"],
            Self::SegmentText => &["transcription_id", "seq"],
            Self::RevisionText
            | Self::RevisionReason
            | Self::ChatText
            | Self::RoomTitle
            | Self::Hl7Message => &["id"],
            Self::PageText => &["document_id", "page"],
        }
    }

    fn aad(self) -> String {
        format!("{}.{}", self.table(), self.column())
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SealError {
    #[error("sealed by data key {0}, which this replica does not have")]
    UnknownKey(u32),
    #[error("a sealed value failed its integrity check")]
    Damaged,
}

impl From<SealError> for StorageError {
    fn from(e: SealError) -> Self {
        match e {
            SealError::UnknownKey(_) => {
                StorageError::Sealed("a value is sealed by a data key that is missing")
            }
            SealError::Damaged => StorageError::Sealed("a sealed value failed its integrity check"),
        }
    }
}

/// The data key id a sealed value names; `None` for text stored before sealing.
fn key_of(stored: &[u8]) -> Option<u32> {
    let header = stored.get(..HEADER).filter(|h| h.starts_with(&MARK))?;
    Some(u32::from_be_bytes(header[MARK.len()..].try_into().ok()?))
}

/// The first bytes of every value the data key `id` sealed.
pub fn prefix(id: u32) -> [u8; HEADER] {
    let mut out = [0; HEADER];
    out[..MARK.len()].copy_from_slice(&MARK);
    out[MARK.len()..].copy_from_slice(&id.to_be_bytes());
    out
}

/// The unwrapped keys, as loaded at one moment.
pub struct Keyring {
    current: u32,
    data: HashMap<u32, LessSafeKey>,
    index: hmac::Key,
    loaded: Instant,
}

impl Keyring {
    /// The data key new values are sealed with.
    pub fn current(&self) -> u32 {
        self.current
    }

    pub fn seal(&self, field: Field, plain: &str) -> Vec<u8> {
        self.seal_bytes(field.aad().as_bytes(), plain.as_bytes())
    }

    /// Seals bytes under the current key, bound to `aad`.
    fn seal_bytes(&self, aad: &[u8], plain: &[u8]) -> Vec<u8> {
        seal_raw(&self.data[&self.current], aad, plain, prefix(self.current).to_vec())
    }

    pub fn open(&self, field: Field, stored: &[u8]) -> Result<String, SealError> {
        let plain = self.open_bytes(field.aad().as_bytes(), stored)?;
        String::from_utf8(plain).map_err(|_| SealError::Damaged)
    }

    /// Opens what `seal_bytes` sealed; text from before sealing is returned as it is.
    fn open_bytes(&self, aad: &[u8], stored: &[u8]) -> Result<Vec<u8>, SealError> {
        let Some(id) = key_of(stored) else {
            return Ok(stored.to_vec());
        };
        let key = self.data.get(&id).ok_or(SealError::UnknownKey(id))?;
        open_raw(key, aad, &stored[HEADER..]).ok_or(SealError::Damaged)
    }

    pub fn has(&self, id: u32) -> bool {
        self.data.contains_key(&id)
    }

    /// Seals with the data key `id` (a file keeps the key it was begun with): nonce, ciphertext, tag.
    pub fn seal_with(&self, id: u32, aad: &[u8], plain: &[u8]) -> Result<Vec<u8>, SealError> {
        Ok(seal_raw(self.data.get(&id).ok_or(SealError::UnknownKey(id))?, aad, plain, Vec::new()))
    }

    pub fn open_with(&self, id: u32, aad: &[u8], sealed: &[u8]) -> Result<Vec<u8>, SealError> {
        open_raw(self.data.get(&id).ok_or(SealError::UnknownKey(id))?, aad, sealed).ok_or(SealError::Damaged)
    }

    /// The blind index terms of `text`: each word and each beginning of four or more characters.
    pub fn terms(&self, text: &str) -> Vec<[u8; 16]> {
        let mut terms: Vec<[u8; 16]> =
            words(text).flat_map(|w| beginnings(&w).map(|b| self.term(&b)).collect::<Vec<_>>()).collect();
        terms.sort_unstable();
        terms.dedup();
        terms
    }

    /// The terms a search for `query` must all find: one per word.
    pub fn query_terms(&self, query: &str) -> Vec<[u8; 16]> {
        let mut terms: Vec<[u8; 16]> = words(query).map(|w| self.term(&w)).collect();
        terms.sort_unstable();
        terms.dedup();
        terms
    }

    fn term(&self, word: &str) -> [u8; 16] {
        hmac::sign(&self.index, word.as_bytes()).as_ref()[..16].try_into().expect("HMAC-SHA-256 is 32 bytes")
    }
}

/// Longest word the index keeps whole: longer runs (identifiers, garbage from OCR) are cut.
const MAX_WORD: usize = 32;
const MIN_BEGINNING: usize = 4;

fn words(text: &str) -> impl Iterator<Item = String> + '_ {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(|w| w.chars().take(MAX_WORD).flat_map(char::to_lowercase).collect())
}

fn beginnings(word: &str) -> impl Iterator<Item = String> + '_ {
    let ends: Vec<usize> =
        word.char_indices().map(|(i, _)| i).skip(MIN_BEGINNING).chain([word.len()]).collect();
    ends.into_iter().map(|end| word[..end].to_string())
}

/// The keys of one database, loaded when first needed and re-read when they may have changed.
pub struct Vault {
    pool: MySqlPool,
    master: MasterKey,
    previous: Option<MasterKey>,
    keys: RwLock<Option<Arc<Keyring>>>,
}

impl Vault {
    /// `previous` is the master key being replaced: keys it wrapped are rewrapped under `master`.
    pub fn new(pool: MySqlPool, master: MasterKey, previous: Option<MasterKey>) -> Self {
        Self { pool, master, previous, keys: RwLock::new(None) }
    }

    pub async fn keys(&self) -> Result<Arc<Keyring>, StorageError> {
        let fresh = |k: &&Arc<Keyring>| k.loaded.elapsed() < KEYS_MAX_AGE;
        if let Some(keys) = self.keys.read().await.as_ref().filter(fresh) {
            return Ok(keys.clone());
        }
        let mut slot = self.keys.write().await;
        // Requests that queued behind the one that just read the keys use its copy.
        if let Some(keys) = slot.as_ref().filter(fresh) {
            return Ok(keys.clone());
        }
        let keys = Arc::new(self.load().await?);
        *slot = Some(keys.clone());
        Ok(keys)
    }

    /// Reads the keys again now: another replica may have added one.
    pub async fn reload(&self) -> Result<Arc<Keyring>, StorageError> {
        let mut slot = self.keys.write().await;
        let keys = Arc::new(self.load().await?);
        *slot = Some(keys.clone());
        Ok(keys)
    }

    /// Opens each of `values`, all sealed in `field`.
    pub async fn open_all(&self, field: Field, values: &[&[u8]]) -> Result<Vec<String>, StorageError> {
        self.with_keys(|keys| values.iter().map(|v| keys.open(field, v)).collect()).await
    }

    /// Runs `f` with the keys, and again with freshly read keys if it met a key this replica lacks.
    pub async fn with_keys<T>(
        &self,
        mut f: impl FnMut(&Keyring) -> Result<T, SealError>,
    ) -> Result<T, StorageError> {
        match f(&*self.keys().await?) {
            Err(SealError::UnknownKey(_)) => Ok(f(&*self.reload().await?)?),
            other => Ok(other?),
        }
    }

    /// Adds a data key, which seals every value from now on; returns its id. The keys are read
    /// first, so a master key that does not open them adds nothing the others could not open.
    pub async fn add_data_key(&self) -> Result<u32, StorageError> {
        self.reload().await?;
        let mut held =
            advisory_lock::Held::take(&self.pool, "mmt-data-keys", advisory_lock::WRITE_WAIT_SECS).await?;
        let added = self.create(held.conn(), Purpose::Data).await;
        held.release().await?;
        let id = added?;
        self.reload().await?;
        Ok(id)
    }

    async fn make_missing(
        &self,
        conn: &mut sqlx::MySqlConnection,
        missing: impl Fn(&[KeyRow]) -> Vec<Purpose>,
    ) -> Result<(), StorageError> {
        for purpose in missing(&data_keys::all(conn).await?) {
            self.create(conn, purpose).await?;
        }
        Ok(())
    }

    async fn create(&self, conn: &mut sqlx::MySqlConnection, purpose: Purpose) -> Result<u32, StorageError> {
        let key = random::<32>();
        let at = chrono::Utc::now().naive_utc();
        data_keys::insert(conn, purpose, &self.master.wrap(purpose, &key), &self.master.id(), at).await
    }

    /// The keys, the first ones made (under a lock, so replicas starting together make one set)
    /// when there are none.
    async fn load(&self) -> Result<Keyring, StorageError> {
        let mut conn = self.pool.acquire().await.map_err(StorageError::from_sqlx)?;
        let mut rows = data_keys::all(&mut conn).await?;
        let missing = |rows: &[KeyRow]| {
            [Purpose::Index, Purpose::Data]
                .into_iter()
                .filter(|p| !rows.iter().any(|r| r.purpose == p.as_str()))
                .collect::<Vec<_>>()
        };
        if !missing(&rows).is_empty() {
            let mut held =
                advisory_lock::Held::take(&self.pool, "mmt-data-keys", advisory_lock::WRITE_WAIT_SECS)
                    .await?;
            let made = self.make_missing(held.conn(), missing).await;
            held.release().await?;
            made?;
            rows = data_keys::all(&mut conn).await?;
        }
        let conn = &mut *conn;
        let mut data = HashMap::new();
        let mut index = None;
        for row in &rows {
            let key = self.unwrap(conn, row).await?;
            if row.purpose == Purpose::Index.as_str() {
                index.get_or_insert_with(|| hmac::Key::new(hmac::HMAC_SHA256, &key));
            } else {
                data.insert(row.id, aead_key(&key));
            }
        }
        let current = data.keys().copied().max().ok_or(StorageError::Sealed("no data key"))?;
        let index = index.ok_or(StorageError::Sealed("no index key"))?;
        Ok(Keyring { current, data, index, loaded: Instant::now() })
    }

    /// Unwraps a key, rewrapping it under the master key when the previous master key wrapped it.
    async fn unwrap(&self, conn: &mut sqlx::MySqlConnection, row: &KeyRow) -> Result<Vec<u8>, StorageError> {
        if row.master_id == self.master.id() {
            return self
                .master
                .unwrap(row)
                .ok_or(StorageError::Sealed("a data key failed its integrity check"));
        }
        let previous =
            self.previous.as_ref().filter(|p| row.master_id == p.id()).ok_or(StorageError::Sealed(
                "the data keys were wrapped by another master key: set the one they were made with \
             (or it as MMT_PREVIOUS_MASTER_KEY_FILE beside the new one)",
            ))?;
        let key =
            previous.unwrap(row).ok_or(StorageError::Sealed("a data key failed its integrity check"))?;
        let purpose = if row.purpose == Purpose::Index.as_str() { Purpose::Index } else { Purpose::Data };
        data_keys::rewrap(conn, row.id, &self.master.wrap(purpose, &key), &self.master.id()).await?;
        Ok(key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keyring() -> Keyring {
        let mut data = HashMap::new();
        data.insert(1, aead_key(&random::<32>()));
        data.insert(2, aead_key(&random::<32>()));
        Keyring {
            current: 2,
            data,
            index: hmac::Key::new(hmac::HMAC_SHA256, &random::<32>()),
            loaded: Instant::now(),
        }
    }

    #[test]
    fn a_sealed_value_opens_only_in_its_own_column() {
        let keys = keyring();
        let sealed = keys.seal(Field::ChatText, "Mrs Smith's INR is 4.2");
        assert_eq!(key_of(&sealed), Some(2));
        assert!(!sealed.windows(5).any(|w| w == b"Smith"));
        assert_eq!(keys.open(Field::ChatText, &sealed).as_deref(), Ok("Mrs Smith's INR is 4.2"));
        assert_eq!(keys.open(Field::PageText, &sealed), Err(SealError::Damaged));
    }

    #[test]
    fn tampering_and_unknown_keys_are_refused_and_old_text_reads_as_it_was() {
        let keys = keyring();
        let mut sealed = keys.seal(Field::SegmentText, "chest pain");
        *sealed.last_mut().unwrap() ^= 1;
        assert_eq!(keys.open(Field::SegmentText, &sealed), Err(SealError::Damaged));
        let mut foreign = keys.seal(Field::SegmentText, "x");
        foreign[2..6].copy_from_slice(&9u32.to_be_bytes());
        assert_eq!(keys.open(Field::SegmentText, &foreign), Err(SealError::UnknownKey(9)));
        assert_eq!(
            keys.open(Field::SegmentText, "written before sealing".as_bytes()).as_deref(),
            Ok("written before sealing")
        );
    }

    #[test]
    fn the_blind_index_finds_words_and_beginnings_without_case() {
        let keys = keyring();
        let terms = keys.terms("Haemoglobin 92 g/L; ECG normal");
        for query in ["haemoglobin", "HAEMO", "ecg", "92", "Normal ecg"] {
            assert!(keys.query_terms(query).iter().all(|t| terms.contains(t)), "{query}");
        }
        for query in ["hae", "globin", "ec", "abnormal"] {
            assert!(!keys.query_terms(query).iter().all(|t| terms.contains(t)), "{query}");
        }
    }

    #[test]
    fn a_master_key_is_32_bytes_of_base64() {
        assert!(MasterKey::parse(&STANDARD.encode([7u8; 32])).is_ok());
        assert!(MasterKey::parse(&STANDARD.encode([7u8; 16])).is_err());
        assert!(MasterKey::parse("not base64!").is_err());
    }
}
