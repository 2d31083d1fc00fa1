//! Documents attached to a transcription as context (a scanned lab report beside the dictation):
//! the transcription's author attaches them while it is a draft; whoever may read the
//! transcription sees those of them they may also open, with their extracted text.

use crate::{
    app::AppState,
    domain::{transcription::TranscriptionId, user::Caller, validation::Issues},
    service::{
        audit,
        transcriptions::{self, TranscriptionError},
        wall_clock_now,
    },
    storage::mmt::documents::{self as store, Attached, PageText},
};

use super::records::{self, DocumentError, DocumentView, entry};

/// A document beside a transcription, with its extracted text when OCR has run.
pub struct Context {
    pub attached: Attached,
    pub document: DocumentView,
    pub text: Vec<PageText>,
}

#[derive(Debug, thiserror::Error)]
pub enum ContextError {
    #[error(transparent)]
    Transcription(#[from] TranscriptionError),
    #[error(transparent)]
    Document(#[from] DocumentError),
}

impl From<crate::storage::StorageError> for ContextError {
    fn from(e: crate::storage::StorageError) -> Self {
        Self::Document(e.into())
    }
}

type Result<T> = std::result::Result<T, ContextError>;

/// Attaches a document of the transcription's patient; true when it was not attached before.
pub async fn attach(
    state: &AppState,
    caller: &Caller,
    id: TranscriptionId,
    document_id: i64,
) -> Result<bool> {
    let row = transcriptions::editable_by_author(state, caller, id).await?;
    let (document, _) = records::readable(state, caller, document_id).await?;
    if document.row.foreign_id != Some(row.pid) {
        let mut issues = Issues::default();
        issues.add("document_id", "belongs to another patient than the transcription");
        return Err(DocumentError::Invalid(issues).into());
    }
    let added = store::attach(&state.pool, &id.0, document_id, caller.user_id.0, wall_clock_now()).await?;
    let comments = format!("mmt-sidecar attached document {document_id} to transcription {id}");
    audit::record(state, &entry(caller, "other-update", row.pid, comments)).await?;
    Ok(added)
}

pub async fn detach(state: &AppState, caller: &Caller, id: TranscriptionId, document_id: i64) -> Result<()> {
    let row = transcriptions::editable_by_author(state, caller, id).await?;
    if !store::detach(&state.pool, &id.0, document_id).await? {
        return Err(DocumentError::NotFound(document_id).into());
    }
    let comments = format!("mmt-sidecar detached document {document_id} from transcription {id}");
    audit::record(state, &entry(caller, "other-update", row.pid, comments)).await?;
    Ok(())
}

/// The attached documents the caller may open (the others are left out, as document lists do).
pub async fn list(state: &AppState, caller: &Caller, id: TranscriptionId) -> Result<Vec<Context>> {
    let row = transcriptions::readable(state, caller, id).await?;
    let mut shown = Vec::new();
    for attached in store::attached(&state.pool, &id.0).await? {
        match records::readable(state, caller, attached.document_id).await {
            Ok((document, _)) => {
                let text = store::text(&state.pool, &state.vault, attached.document_id).await?;
                shown.push(Context { attached, document, text });
            }
            Err(DocumentError::Storage(e)) => return Err(e.into()),
            Err(_) => {}
        }
    }
    let ids = shown.iter().map(|c| c.attached.document_id.to_string()).collect::<Vec<_>>().join(",");
    let comments = format!("mmt-sidecar read the context documents [{ids}] of transcription {id}");
    audit::record(state, &entry(caller, "other-select", row.pid, comments)).await?;
    Ok(shown)
}
