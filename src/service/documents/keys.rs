//! The keys OpenEMR encrypts document files with: `CryptoGen`'s database keys (`keys` table,
//! `<version>a`/`<version>b`), not the drive key files, so the database and the site folder are
//! all the sidecar needs.

use base64::{Engine, engine::general_purpose::STANDARD};

use crate::{
    php::crypto_gen::{self, KeyPair},
    storage::{
        StorageError,
        openemr::{documents::rows, mfa},
    },
};

/// The pair of one key version, if both keys exist.
pub async fn existing(pool: &sqlx::MySqlPool, version: u8) -> Result<Option<KeyPair>, StorageError> {
    let Some((a, b)) = crypto_gen::key_labels(version) else { return Ok(None) };
    match (mfa::database_key(pool, &a).await?, mfa::database_key(pool, &b).await?) {
        (Some(aes), Some(hmac)) => Ok(Some(KeyPair { aes, hmac })),
        _ => Ok(None),
    }
}

/// The current version's pair, created as `CryptoGen::createDatabaseKey` does when missing
/// (base64 of 32 random bytes); a key OpenEMR or another replica made first is kept. None: a
/// key row exists but does not hold 32 bytes.
pub async fn current(pool: &sqlx::MySqlPool) -> Result<Option<KeyPair>, StorageError> {
    let version = crypto_gen::CURRENT_VERSION;
    if let Some(keys) = existing(pool, version).await? {
        return Ok(Some(keys));
    }
    let (a, b) = crypto_gen::key_labels(version).expect("the current version has key labels");
    for label in [a, b] {
        rows::create_key(pool, &label, &STANDARD.encode(rand::random::<[u8; 32]>())).await?;
    }
    existing(pool, version).await
}
