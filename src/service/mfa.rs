//! OpenEMR's second factor: TOTP checked exactly as OpenEMR checks it (RFC 6238, SHA-1, 6 digits,
//! 30 s, one step either side) against the secret OpenEMR stores encrypted with its drive keys;
//! enrolment writes the registration OpenEMR's own screen writes, so one authenticator app works
//! in both. U2F/WebAuthn cannot be done here: those users sign in through OpenEMR and the bridge.

use totp_rs::{Secret, Totp};

use crate::{
    app::AppState,
    php::crypto_gen::{self, CryptoError, KeyPair},
    service::audit,
    storage::{
        StorageError,
        mmt::mfa as pending,
        openemr::{globals, mfa, users::UserRecord},
    },
};

/// Enrolments must be confirmed with a first code within this.
const ENROLMENT_MINUTES: i64 = 10;

#[derive(Debug, thiserror::Error)]
pub enum MfaError {
    #[error("this account has a second factor in OpenEMR: send `totp_code` with the password")]
    Required(Vec<String>),
    #[error("the authenticator code is wrong, expired or already used")]
    Invalid,
    #[error("{0}")]
    Unsupported(String),
    #[error("{0}")]
    Conflict(String),
    #[error(transparent)]
    Storage(#[from] StorageError),
}

fn bridge_instead(why: &str) -> MfaError {
    MfaError::Unsupported(format!(
        "{why}; sign in to OpenEMR with your second factor, then exchange that session at /api/auth/bridge/"
    ))
}

/// The drive key pair of one version, unwrapped with the database keys as OpenEMR does.
async fn drive_keys(state: &AppState, version: u8) -> Result<Option<KeyPair>, MfaError> {
    let (Some(site_dir), Some((a, b))) = (&state.config.openemr_site_dir, crypto_gen::key_labels(version))
    else {
        return Ok(None);
    };
    let mut unwrapped = Vec::with_capacity(2);
    for label in [a, b] {
        let Some(file) = mfa::drive_key_file(site_dir, &label).await.map_err(|e| {
            tracing::error!(error = %e.kind(), "OpenEMR's key files could not be read");
            bridge_instead("the sidecar cannot read OpenEMR's key files")
        })?
        else {
            return Ok(None);
        };
        let Some(wrapping) = crypto_gen::version_of(&file).and_then(crypto_gen::key_labels) else {
            return Ok(None);
        };
        let (Some(aes), Some(hmac)) = (
            mfa::database_key(&state.pool, &wrapping.0).await?,
            mfa::database_key(&state.pool, &wrapping.1).await?,
        ) else {
            return Ok(None);
        };
        let key = crypto_gen::decrypt(&file, &KeyPair { aes, hmac })
            .ok()
            .and_then(|k| <[u8; 32]>::try_from(k).ok());
        let Some(key) = key else { return Ok(None) };
        unwrapped.push(key);
    }
    Ok(Some(KeyPair { aes: unwrapped[0], hmac: unwrapped[1] }))
}

/// `decryptFromDatabase`: values without a version prefix are stored in plain text.
async fn decrypt_from_database(state: &AppState, value: &str) -> Result<String, MfaError> {
    let Some(version) = crypto_gen::version_of(value) else {
        return Ok(value.to_string());
    };
    let keys = drive_keys(state, version).await?.ok_or_else(|| {
        bridge_instead("OpenEMR's encryption keys are not available to the sidecar (set OPENEMR_SITE_DIR)")
    })?;
    match crypto_gen::decrypt(value, &keys) {
        Ok(plain) => String::from_utf8(plain).map_err(|_| bridge_instead("the stored secret is unreadable")),
        // OpenEMR's installer encrypts the first admin's secret with a password-based scheme under
        // the same prefix; OpenEMR re-encrypts it at the first sign-in there.
        Err(CryptoError::BadMac | CryptoError::Malformed) => {
            Err(bridge_instead("the stored secret is in a form only OpenEMR's login screen converts"))
        }
        Err(e) => Err(bridge_instead(&e.to_string())),
    }
}

/// `encryptForDatabase`: plain text when OpenEMR's `database_encryption` global is off.
async fn encrypt_for_database(state: &AppState, value: &str) -> Result<String, MfaError> {
    let off = globals::value(&state.pool, "database_encryption").await?.is_some_and(|v| v.trim() == "0");
    if off {
        return Ok(value.to_string());
    }
    let keys = drive_keys(state, crypto_gen::CURRENT_VERSION).await?.ok_or_else(|| {
        MfaError::Unsupported(
            "OpenEMR's encryption keys are not available to the sidecar (set OPENEMR_SITE_DIR to the site folder)"
                .into(),
        )
    })?;
    Ok(crypto_gen::encrypt(value.as_bytes(), &keys))
}

fn totp(secret_base32: &str, account: &str) -> Result<Totp, MfaError> {
    let secret = Secret::try_from_base32(secret_base32.trim())
        .map_err(|_| bridge_instead("the stored secret is unreadable"))?;
    totp_rs::Builder::new()
        .with_secret(secret)
        .with_issuer(Some("OpenEMR"))
        .with_account_name(account)
        .build()
        .map_err(|_| bridge_instead("the stored secret is not a usable TOTP secret"))
}

fn unix_now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// Checks a code and uses it up: a code seen once is refused for the rest of its window.
async fn check_code(state: &AppState, user_id: i64, totp: &Totp, code: &str) -> Result<(), MfaError> {
    let step = totp.check(code.trim(), unix_now()).ok_or(MfaError::Invalid)?;
    if !pending::consume_step(&state.pool, user_id, step as i64).await? {
        return Err(MfaError::Invalid);
    }
    Ok(())
}

/// The second step of a password sign-in. Users without a registration pass; TOTP users must send
/// a valid, unused code; users with only U2F/WebAuthn are told to use OpenEMR and the bridge.
pub async fn second_factor(state: &AppState, user: &UserRecord, code: Option<&str>) -> Result<(), MfaError> {
    let registrations = mfa::registrations(&state.pool, user.id).await?;
    if registrations.is_empty() {
        return Ok(());
    }
    let Some(registration) = registrations.iter().find(|r| r.method == "TOTP") else {
        return Err(bridge_instead("this account's second factor is a security key (U2F/WebAuthn)"));
    };
    let Some(code) = code.filter(|c| !c.trim().is_empty()) else {
        let mut methods: Vec<String> = registrations.iter().map(|r| r.method.clone()).collect();
        methods.dedup();
        return Err(MfaError::Required(methods));
    };
    let secret = decrypt_from_database(state, &registration.var1).await?;
    check_code(state, user.id, &totp(&secret, &user.username)?, code).await?;
    mfa::record_challenge(&state.pool, user.id).await?;
    Ok(())
}

pub struct Enrolment {
    pub otpauth_uri: String,
    pub secret: String,
    pub qr_svg: String,
}

/// Starts an enrolment (the caller has re-entered their password): a new secret, shown once.
pub async fn start_enrolment(state: &AppState, user: &UserRecord) -> Result<Enrolment, MfaError> {
    if mfa::registrations(&state.pool, user.id).await?.iter().any(|r| r.method == "TOTP") {
        return Err(MfaError::Conflict(
            "an authenticator app is already registered; remove it first to register another".into(),
        ));
    }
    let secret = Secret::generate().to_base32();
    let stored = encrypt_for_database(state, &secret).await?;
    let expires = super::wall_clock_now() + chrono::Duration::minutes(ENROLMENT_MINUTES);
    pending::save_enrolment(&state.pool, user.id, &stored, expires).await?;
    let uri = totp(&secret, &user.username)?
        .to_url()
        .map_err(|_| MfaError::Conflict("the username cannot be put in an otpauth URI".into()))?;
    let qr = qrcode::QrCode::new(uri.as_bytes())
        .map_err(|_| MfaError::Conflict("the otpauth URI is too long for a QR code".into()))?;
    let qr_svg = qr.render::<qrcode::render::svg::Color<'_>>().min_dimensions(200, 200).build();
    Ok(Enrolment { otpauth_uri: uri, secret, qr_svg })
}

/// Confirms an enrolment with a first code and writes OpenEMR's registration row.
pub async fn confirm_enrolment(state: &AppState, user: &UserRecord, code: &str) -> Result<(), MfaError> {
    let mut tx = state.pool.begin().await.map_err(StorageError::from_sqlx)?;
    let stored = pending::pending_enrolment(&mut tx, user.id, super::wall_clock_now())
        .await?
        .ok_or_else(|| MfaError::Conflict("no enrolment is waiting for confirmation; start again".into()))?;
    let secret = decrypt_from_database(state, &stored).await?;
    check_code(state, user.id, &totp(&secret, &user.username)?, code).await?;
    if mfa::registrations(&state.pool, user.id).await?.iter().any(|r| r.method == "TOTP") {
        return Err(MfaError::Conflict("an authenticator app is already registered".into()));
    }
    mfa::insert_totp(&mut tx, user.id, &stored).await?;
    pending::delete_enrolment(&mut tx, user.id).await?;
    tx.commit().await.map_err(StorageError::from_sqlx)?;
    audit::security_event(state, &user.username, "mmt-sidecar registered an authenticator app (TOTP)").await;
    Ok(())
}

/// Removes the user's TOTP registration; the caller has re-entered the password, and the code.
pub async fn remove(state: &AppState, user: &UserRecord, code: &str) -> Result<(), MfaError> {
    let registration = mfa::registrations(&state.pool, user.id)
        .await?
        .into_iter()
        .find(|r| r.method == "TOTP")
        .ok_or_else(|| MfaError::Conflict("no authenticator app is registered".into()))?;
    let secret = decrypt_from_database(state, &registration.var1).await?;
    check_code(state, user.id, &totp(&secret, &user.username)?, code).await?;
    let mut conn = state.pool.acquire().await.map_err(StorageError::from_sqlx)?;
    mfa::delete_totp(&mut conn, user.id).await?;
    audit::security_event(state, &user.username, "mmt-sidecar removed an authenticator app (TOTP)").await;
    Ok(())
}
