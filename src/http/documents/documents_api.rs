use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use poem::{http::StatusCode, web::Data};
use poem_openapi::{
    ApiResponse, Object, OpenApi,
    param::{Header, Path, Query},
    payload::{Binary, Json},
};

use crate::{
    app::AppState,
    domain::{
        audio::{ByteRange, byte_range},
        documents::{category::Node, document::content_disposition},
    },
    http::{
        ApiTags,
        auth::Auth,
        documents::form::DocumentForm,
        problem::{ApiError, Problem},
    },
    service::documents::{
        ocr,
        records::{self, Content, DocumentView, ListFilter},
        views,
    },
    storage::{mmt::documents::PageText, openemr::uuid_registry},
};

#[derive(Object)]
pub struct CategoryRef {
    pub id: i64,
    /// From the root down, e.g. `Categories/Medical Record`.
    pub path: String,
}

/// A document in OpenEMR's store.
#[derive(Object)]
pub struct Document {
    pub id: i64,
    pub uuid: Option<String>,
    pub pid: i64,
    /// The original file name.
    pub name: String,
    pub mimetype: String,
    /// Bytes of the plaintext.
    pub size: i64,
    /// When it was stored (server local time).
    pub date: Option<NaiveDateTime>,
    pub docdate: Option<NaiveDate>,
    /// Hex SHA3-512 of the plaintext.
    pub hash: Option<String>,
    /// The encounter it is tagged to.
    #[oai(skip_serializing_if_is_none)]
    pub encounter: Option<i64>,
    /// Encrypted at rest with OpenEMR's database keys.
    pub encrypted: bool,
    pub categories: Vec<CategoryRef>,
}

impl From<DocumentView> for Document {
    fn from(view: DocumentView) -> Self {
        let r = view.row;
        Self {
            id: r.id,
            uuid: uuid_registry::to_string(r.uuid.as_deref()),
            pid: r.foreign_id.unwrap_or_default(),
            name: r.name.unwrap_or_default(),
            mimetype: r.mimetype.unwrap_or_default(),
            size: r.size.unwrap_or_default(),
            date: r.date,
            docdate: r.docdate,
            hash: r.hash,
            encounter: (r.encounter_id != 0).then_some(r.encounter_id),
            encrypted: r.encrypted == 1,
            categories: view.categories.into_iter().map(|(id, path)| CategoryRef { id, path }).collect(),
        }
    }
}

#[derive(Object)]
pub struct DocumentList {
    pub items: Vec<Document>,
}

/// A document category and those below it.
#[derive(Object)]
pub struct Category {
    pub id: i64,
    pub name: String,
    /// The OpenEMR permission (`section|value`) needed to see or file documents here.
    pub aco_spec: String,
    /// Codes documents here carry, e.g. `LOINC:42348-3`.
    pub codes: String,
    pub children: Vec<Category>,
}

impl From<Node> for Category {
    fn from(n: Node) -> Self {
        let c = n.category;
        Self {
            id: c.id,
            name: c.name,
            aco_spec: c.aco_spec,
            codes: c.codes,
            children: n.children.into_iter().map(Into::into).collect(),
        }
    }
}

#[derive(Object)]
pub struct CategoryTree {
    pub items: Vec<Category>,
}

#[derive(ApiResponse)]
pub enum CreatedResponse {
    #[oai(status = 201)]
    Created(Json<Document>, #[oai(header = "Location")] String),
}

/// A link that shows the document in a browser without credentials, for its maker alone.
#[derive(Object)]
pub struct ViewLink {
    /// Open this (a tab, an `<iframe>`); it acts as you, with your current permissions.
    pub url: String,
    pub expires_at: DateTime<Utc>,
}

#[derive(ApiResponse)]
pub enum ViewCreated {
    #[oai(status = 201)]
    Created(Json<ViewLink>),
}

#[derive(Object)]
pub struct OcrQueued {
    /// Follow it at `/api/jobs/{job_id}/` or live (`job` events, one per page).
    pub job_id: String,
}

#[derive(ApiResponse)]
pub enum OcrAccepted {
    #[oai(status = 202)]
    Accepted(Json<OcrQueued>, #[oai(header = "Location")] String),
}

/// One page of a document's extracted text.
#[derive(Object)]
pub struct OcrPage {
    /// 1-based.
    pub page: i32,
    /// `text` (the PDF's own text layer) or `ocr` (Tesseract).
    pub method: String,
    /// Tesseract's mean word confidence, 0-100; absent for a text layer.
    #[oai(skip_serializing_if_is_none)]
    pub confidence: Option<f64>,
    pub text: String,
}

impl From<PageText> for OcrPage {
    fn from(p: PageText) -> Self {
        Self { page: p.page, method: p.method, confidence: p.confidence, text: p.content }
    }
}

#[derive(Object)]
pub struct OcrText {
    /// Empty until an extraction has run.
    pub pages: Vec<OcrPage>,
}

#[derive(ApiResponse)]
pub enum Deleted {
    #[oai(status = 204)]
    Deleted,
}

#[derive(ApiResponse)]
pub enum ContentResponse {
    /// The whole file.
    #[oai(status = 200)]
    Whole(
        Binary<Vec<u8>>,
        #[oai(header = "Content-Type")] String,
        #[oai(header = "Content-Disposition")] String,
        #[oai(header = "Accept-Ranges")] String,
    ),
    /// The range asked for.
    #[oai(status = 206)]
    Part(
        Binary<Vec<u8>>,
        #[oai(header = "Content-Type")] String,
        #[oai(header = "Content-Disposition")] String,
        #[oai(header = "Accept-Ranges")] String,
        #[oai(header = "Content-Range")] String,
    ),
    /// The range lies outside the file; `Content-Range` gives its size.
    #[oai(status = 416, content_type = "application/problem+json")]
    Unsatisfiable(Json<Problem>, #[oai(header = "Content-Range")] String),
}

/// The bytes, or the one range asked for.
fn serve(content: Content, range: Option<&str>, inline: bool) -> ContentResponse {
    let len = content.bytes.len() as u64;
    let disposition = content_disposition(&content.name, inline);
    let ranges = "bytes".to_string();
    match byte_range(range, len) {
        ByteRange::Whole => {
            ContentResponse::Whole(Binary(content.bytes), content.mimetype, disposition, ranges)
        }
        ByteRange::Part(first, last) => ContentResponse::Part(
            Binary(content.bytes[first as usize..=last as usize].to_vec()),
            content.mimetype,
            disposition,
            ranges,
            format!("bytes {first}-{last}/{len}"),
        ),
        ByteRange::Unsatisfiable => ContentResponse::Unsatisfiable(
            Json(Problem::new(
                StatusCode::RANGE_NOT_SATISFIABLE,
                format!("the requested range is outside the document's {len} bytes"),
            )),
            format!("bytes */{len}"),
        ),
    }
}

#[derive(Default)]
pub struct DocumentsApi;

#[OpenApi(tag = "ApiTags::Documents")]
impl DocumentsApi {
    /// The patient's documents, newest first, that the caller may open (`patients|docs` and each
    /// category's own permission). `category` includes the categories below it; `q` keeps those
    /// whose extracted text (`POST /api/documents/{id}/ocr/`) contains it, ignoring case.
    #[oai(path = "/patients/:pid/documents/", method = "get", operation_id = "patient_documents")]
    async fn list(
        &self,
        state: Data<&AppState>,
        auth: Auth,
        pid: Path<i64>,
        category: Query<Option<i64>>,
        encounter: Query<Option<i64>>,
        q: Query<Option<String>>,
    ) -> Result<Json<DocumentList>, ApiError> {
        let filter = ListFilter { category: category.0, encounter: encounter.0, text: q.0 };
        let found = records::list(&state, &auth.0, pid.0, filter).await?;
        Ok(Json(DocumentList { items: found.into_iter().map(Into::into).collect() }))
    }

    /// Upload a document into OpenEMR's store, as OpenEMR files it: a `multipart/form-data` body
    /// with `file`, `category` and optionally `encounter`. Encrypted at rest when OpenEMR's
    /// `drive_encryption` is on; with `secure_upload` on, only types on OpenEMR's allow-list.
    /// Needs `patients|docs` (write or addonly) and the category's permission.
    #[oai(path = "/patients/:pid/documents/", method = "post", operation_id = "patient_documents_upload")]
    async fn upload(
        &self,
        state: Data<&AppState>,
        auth: Auth,
        pid: Path<i64>,
        form: DocumentForm,
    ) -> Result<CreatedResponse, ApiError> {
        let mut upload = records::start_upload(&state, &auth.0, pid.0).await?;
        let fields = form.read_into(&mut upload).await?;
        let view = records::finish_upload(&state, &auth.0, upload, fields).await?;
        let location = format!("/api/documents/{}/", view.row.id);
        Ok(CreatedResponse::Created(Json(view.into()), location))
    }

    /// OpenEMR's document categories as a tree.
    #[oai(path = "/documents/categories/", method = "get", operation_id = "document_categories")]
    async fn categories(&self, state: Data<&AppState>, auth: Auth) -> Result<Json<CategoryTree>, ApiError> {
        let tree = records::categories(&state, &auth.0).await?;
        Ok(Json(CategoryTree { items: tree.children(0).into_iter().map(Into::into).collect() }))
    }

    /// One document's details.
    #[oai(path = "/documents/:id/", method = "get", operation_id = "document_get")]
    async fn get(
        &self,
        state: Data<&AppState>,
        auth: Auth,
        id: Path<i64>,
    ) -> Result<Json<Document>, ApiError> {
        Ok(Json(records::get(&state, &auth.0, id.0).await?.into()))
    }

    /// The document's bytes, decrypted and verified; one `Range: bytes=…` gives a 206. A file that
    /// fails its integrity check is refused (500), never served.
    #[oai(path = "/documents/:id/content", method = "get", operation_id = "document_content")]
    async fn content(
        &self,
        state: Data<&AppState>,
        auth: Auth,
        id: Path<i64>,
        #[oai(name = "Range")] range: Header<Option<String>>,
    ) -> Result<ContentResponse, ApiError> {
        let content = records::content(&state, &auth.0, id.0).await?;
        Ok(serve(content, range.0.as_deref(), false))
    }

    /// A short-lived link (`MMT_DOCUMENT_VIEW_TTL_SECS`, 10 minutes by default) that previews the
    /// document in a browser, which cannot send a bearer token. It works only as the caller: each use
    /// re-checks their permissions and is audited under their name. Nothing decrypted is stored.
    #[oai(path = "/documents/:id/view/", method = "post", operation_id = "document_view_link")]
    async fn view_link(
        &self,
        state: Data<&AppState>,
        auth: Auth,
        id: Path<i64>,
    ) -> Result<ViewCreated, ApiError> {
        let link = views::create(&state, &auth.0, id.0).await?;
        Ok(ViewCreated::Created(Json(ViewLink {
            url: format!("/api/document-views/{}", link.token),
            expires_at: link.expires_at.and_utc(),
        })))
    }

    /// The document behind a preview link, shown inline; one `Range: bytes=…` gives a 206. An
    /// expired or unknown link is a 404.
    #[oai(path = "/document-views/:token", method = "get", operation_id = "document_view")]
    async fn view(
        &self,
        state: Data<&AppState>,
        token: Path<String>,
        #[oai(name = "Range")] range: Header<Option<String>>,
    ) -> Result<ContentResponse, ApiError> {
        let content = views::open(&state, &token.0).await?;
        Ok(serve(content, range.0.as_deref(), true))
    }

    /// Extract the document's text in the background: each PDF page's own text layer, else the
    /// page read by Tesseract; images by Tesseract. Progress arrives per page as `job` events.
    #[oai(path = "/documents/:id/ocr/", method = "post", operation_id = "document_ocr_start")]
    async fn ocr_start(
        &self,
        state: Data<&AppState>,
        auth: Auth,
        id: Path<i64>,
    ) -> Result<OcrAccepted, ApiError> {
        let job_id = ocr::request(&state, &auth.0, id.0).await?.to_string();
        let location = format!("/api/jobs/{job_id}/");
        Ok(OcrAccepted::Accepted(Json(OcrQueued { job_id }), location))
    }

    /// The document's extracted text, page by page, with Tesseract's confidence.
    #[oai(path = "/documents/:id/ocr/", method = "get", operation_id = "document_ocr_text")]
    async fn ocr_text(
        &self,
        state: Data<&AppState>,
        auth: Auth,
        id: Path<i64>,
    ) -> Result<Json<OcrText>, ApiError> {
        let pages = ocr::text(&state, &auth.0, id.0).await?;
        Ok(Json(OcrText { pages: pages.into_iter().map(Into::into).collect() }))
    }

    /// Delete a document as OpenEMR does: marked deleted and taken out of its categories; the file
    /// stays on disk. Needs `patients|docs_rm`.
    #[oai(path = "/documents/:id/", method = "delete", operation_id = "document_delete")]
    async fn delete(&self, state: Data<&AppState>, auth: Auth, id: Path<i64>) -> Result<Deleted, ApiError> {
        records::delete(&state, &auth.0, id.0).await?;
        Ok(Deleted::Deleted)
    }
}
