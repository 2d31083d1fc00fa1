//! Sidecar tokens: opaque random strings; only their SHA-256 digests are stored.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use rand::RngCore;
use sha2::{Digest, Sha256};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKind {
    Access,
    Refresh,
}

impl TokenKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Access => "access",
            Self::Refresh => "refresh",
        }
    }

    fn prefix(self) -> &'static str {
        match self {
            Self::Access => "mmt_at_",
            Self::Refresh => "mmt_rt_",
        }
    }
}

/// A freshly minted token: the secret goes to the client once, the digest to the database.
pub struct NewToken {
    pub secret: String,
    pub digest: [u8; 32],
}

impl NewToken {
    pub fn generate(kind: TokenKind) -> Self {
        let mut bytes = [0u8; 32];
        rand::rng().fill_bytes(&mut bytes);
        let secret = format!("{}{}", kind.prefix(), URL_SAFE_NO_PAD.encode(bytes));
        let digest = digest(&secret);
        Self { secret, digest }
    }
}

/// The digest a presented token is looked up by. A token of the wrong kind or shape yields `None`
/// without a database round trip.
pub fn digest_of(kind: TokenKind, presented: &str) -> Option<[u8; 32]> {
    let body = presented.strip_prefix(kind.prefix())?;
    (body.len() == 43 && body.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'))
        .then(|| digest(presented))
}

fn digest(secret: &str) -> [u8; 32] {
    Sha256::digest(secret.as_bytes()).into()
}

pub fn new_family() -> [u8; 16] {
    *uuid::Uuid::new_v4().as_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_generated_token_is_found_by_its_digest_and_only_as_its_own_kind() {
        let token = NewToken::generate(TokenKind::Access);
        assert_eq!(digest_of(TokenKind::Access, &token.secret), Some(token.digest));
        assert_eq!(digest_of(TokenKind::Refresh, &token.secret), None);
    }

    #[test]
    fn malformed_tokens_are_rejected_without_lookup() {
        assert_eq!(digest_of(TokenKind::Access, "mmt_at_short"), None);
        assert_eq!(digest_of(TokenKind::Access, &format!("mmt_at_{}", "a".repeat(42) + "!")), None);
        assert_eq!(digest_of(TokenKind::Access, ""), None);
    }

    #[test]
    fn tokens_are_unique() {
        assert_ne!(
            NewToken::generate(TokenKind::Refresh).secret,
            NewToken::generate(TokenKind::Refresh).secret
        );
    }
}
