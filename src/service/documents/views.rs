//! Preview links: a browser tab or `<iframe>` cannot send a bearer token, so a user who may open a
//! document gets a link that works for `MMT_DOCUMENT_VIEW_TTL_SECS`, for them alone: each use
//! acts as that user (their account must still be active, with the password they had when the link
//! was made), re-checks their permissions and is audited under their name. The bytes are decrypted
//! in memory for each request; no decrypted copy is ever written, so nothing is left to remove.

use chrono::NaiveDateTime;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::{
    app::AppState,
    domain::user::{Caller, SignInMethod, UserId},
    service::{
        audit,
        documents::records::{self, Content, DocumentError},
        sign_in,
    },
    storage::{
        StorageError,
        mmt::documents::{self as views, NewView},
        openemr::users,
    },
};

/// A link's secret is a random UUID, which the access log masks like any id.
fn digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

pub struct ViewLink {
    pub token: String,
    pub expires_at: NaiveDateTime,
}

pub async fn create(state: &AppState, caller: &Caller, id: i64) -> Result<ViewLink, DocumentError> {
    let (view, _) = records::readable(state, caller, id).await?;
    let credential = caller.credential.ok_or(DocumentError::NotFound(id))?;
    let token = uuid::Uuid::new_v4().to_string();
    let now = sign_in::now();
    let ttl =
        chrono::Duration::from_std(state.config.documents.view_ttl).unwrap_or(chrono::Duration::minutes(10));
    let expires_at = now + ttl;
    let row = NewView {
        digest: &digest(&token),
        document_id: id,
        user_id: caller.user_id.0,
        credential: &credential,
        expires_at,
    };
    views::insert(&state.pool, &row, now).await?;
    let pid = view.row.foreign_id.unwrap_or_default();
    let comments = format!("mmt-sidecar made a preview link for document {id}");
    audit::record(state, &records::entry(caller, "other-select", pid, comments)).await?;
    Ok(ViewLink { token, expires_at })
}

/// The document behind a live link, read as the user it was made for.
pub async fn open(state: &AppState, token: &str) -> Result<Content, DocumentError> {
    let gone = || DocumentError::LinkGone;
    let link = views::live(&state.pool, &digest(token), sign_in::now()).await?.ok_or_else(gone)?;
    let caller = caller_for(state, link.user_id, &link.credential).await?.ok_or_else(gone)?;
    records::content(state, &caller, link.document_id).await
}

async fn caller_for(
    state: &AppState,
    user_id: i64,
    credential: &[u8],
) -> Result<Option<Caller>, StorageError> {
    let record = users::by_id(&state.pool, UserId(user_id)).await?;
    let Some(record) = record.filter(|r| r.active && r.auth_group.is_some()) else { return Ok(None) };
    let caller = sign_in::caller_from(record, SignInMethod::Password, None);
    let same = caller.credential.is_some_and(|c| bool::from(c.ct_eq(credential)));
    Ok(same.then_some(caller))
}
