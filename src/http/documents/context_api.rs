use chrono::NaiveDateTime;
use poem::web::Data;
use poem_openapi::{ApiResponse, Object, OpenApi, param::Path, payload::Json};

use crate::{
    app::AppState,
    http::{
        ApiTags,
        auth::Auth,
        documents::documents_api::{Document, OcrPage},
        problem::ApiError,
        transcriptions_api::parse_id,
    },
    service::documents::context::{self, Context, ContextError},
};

impl From<ContextError> for ApiError {
    fn from(err: ContextError) -> Self {
        match err {
            ContextError::Transcription(e) => e.into(),
            ContextError::Document(e) => e.into(),
        }
    }
}

/// Which document to attach.
#[derive(Object)]
#[oai(deny_unknown_fields)]
pub struct AttachBody {
    /// A document of the transcription's patient that the caller may open.
    pub document_id: i64,
}

/// A document attached to a transcription, with the text extracted from it so far.
#[derive(Object)]
pub struct ContextDocument {
    pub document: Document,
    /// OpenEMR `users.id` of who attached it.
    pub attached_by: i64,
    /// Local time.
    pub attached_at: NaiveDateTime,
    /// Empty until `POST /api/documents/{id}/ocr/` has run.
    pub text: Vec<OcrPage>,
}

impl From<Context> for ContextDocument {
    fn from(c: Context) -> Self {
        Self {
            document: c.document.into(),
            attached_by: c.attached.attached_by,
            attached_at: c.attached.attached_at,
            text: c.text.into_iter().map(Into::into).collect(),
        }
    }
}

#[derive(Object)]
pub struct ContextList {
    pub items: Vec<ContextDocument>,
}

#[derive(ApiResponse)]
pub enum ListResponse {
    #[oai(status = 200)]
    Ok(Json<ContextList>),
}

#[derive(ApiResponse)]
pub enum AttachResponse {
    /// Attached; the transcription's context documents follow.
    #[oai(status = 201)]
    Attached(Json<ContextList>),
    /// It was attached already.
    #[oai(status = 200)]
    Already(Json<ContextList>),
}

#[derive(ApiResponse)]
pub enum DetachResponse {
    #[oai(status = 204)]
    Detached,
}

#[derive(Default)]
pub struct TranscriptionContextApi;

#[OpenApi(tag = "ApiTags::Documents")]
impl TranscriptionContextApi {
    /// Documents attached to the transcription as context (a scanned lab report, a letter), with
    /// their extracted text; those the caller may not open are left out.
    #[oai(path = "/transcriptions/:id/documents/", method = "get", operation_id = "transcription_documents")]
    async fn list(
        &self,
        state: Data<&AppState>,
        auth: Auth,
        id: Path<String>,
    ) -> Result<ListResponse, ApiError> {
        let found = context::list(&state, &auth.0, parse_id(&id.0)?).await?;
        Ok(ListResponse::Ok(Json(ContextList { items: found.into_iter().map(Into::into).collect() })))
    }

    /// Attach a document of the same patient as context. The transcription's author (or an
    /// administrator) while it is a draft; the document must be one the caller may open.
    #[oai(
        path = "/transcriptions/:id/documents/",
        method = "post",
        operation_id = "transcription_documents_attach"
    )]
    async fn attach(
        &self,
        state: Data<&AppState>,
        auth: Auth,
        id: Path<String>,
        body: Json<AttachBody>,
    ) -> Result<AttachResponse, ApiError> {
        let id = parse_id(&id.0)?;
        let added = context::attach(&state, &auth.0, id, body.0.document_id).await?;
        let found = context::list(&state, &auth.0, id).await?;
        let list = Json(ContextList { items: found.into_iter().map(Into::into).collect() });
        Ok(if added { AttachResponse::Attached(list) } else { AttachResponse::Already(list) })
    }

    /// Detach a document (the document itself stays in the chart).
    #[oai(
        path = "/transcriptions/:id/documents/:document_id/",
        method = "delete",
        operation_id = "transcription_documents_detach"
    )]
    async fn detach(
        &self,
        state: Data<&AppState>,
        auth: Auth,
        id: Path<String>,
        document_id: Path<i64>,
    ) -> Result<DetachResponse, ApiError> {
        context::detach(&state, &auth.0, parse_id(&id.0)?, document_id.0).await?;
        Ok(DetachResponse::Detached)
    }
}
