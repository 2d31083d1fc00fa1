use poem::{Body, IntoResponse, Request, Response, http::StatusCode, web::Data};
use poem_openapi::{
    ApiResponse, Object, OpenApi,
    param::{Header, Path},
    payload::{Binary, Json},
    registry::{MetaHeader, MetaResponses, Registry},
    types::Type,
};

use crate::{
    app::AppState,
    domain::audio::{Chunk, Refusal, Upload},
    http::{
        ApiTags,
        auth::Auth,
        problem::{ApiError, Problem},
        transcriptions_api::parse_id,
    },
    service::audio::{self as service, AudioError, AudioRead},
};

#[derive(Object)]
pub struct AudioUpload {
    /// Bytes the server has; send the next chunk at this `Upload-Offset`.
    pub received: i64,
    /// The declared total size.
    pub size: Option<i64>,
    pub complete: bool,
    pub content_type: Option<String>,
    /// Hex SHA-256 of the whole file, once complete and verified.
    #[oai(skip_serializing_if_is_none)]
    pub sha256: Option<String>,
}

impl From<Upload> for AudioUpload {
    fn from(u: Upload) -> Self {
        Self {
            complete: u.complete(),
            received: u.received,
            size: u.size,
            sha256: u.sha256.filter(|_| u.complete()).map(hex::encode),
            content_type: u.content_type,
        }
    }
}

#[derive(ApiResponse)]
pub enum Progress {
    #[oai(status = 200)]
    Ok(Json<AudioUpload>, #[oai(header = "Upload-Offset")] i64),
}

fn progress(upload: Upload) -> Progress {
    let offset = upload.received;
    Progress::Ok(Json(upload.into()), offset)
}

#[derive(ApiResponse)]
pub enum AudioBody {
    /// The whole file.
    #[oai(status = 200)]
    Whole(
        Binary<Body>,
        #[oai(header = "Content-Type")] String,
        #[oai(header = "Content-Length")] u64,
        #[oai(header = "Accept-Ranges")] String,
    ),
    /// The range asked for.
    #[oai(status = 206)]
    Part(
        Binary<Body>,
        #[oai(header = "Content-Type")] String,
        #[oai(header = "Content-Length")] u64,
        #[oai(header = "Accept-Ranges")] String,
        #[oai(header = "Content-Range")] String,
    ),
    /// The range lies outside the file; `Content-Range` gives its size.
    #[oai(status = 416, content_type = "application/problem+json")]
    Unsatisfiable(Json<Problem>, #[oai(header = "Content-Range")] String),
}

/// An `ApiError` that, on an offset mismatch, also carries the server's `Upload-Offset`.
pub struct UploadError(ApiError, Option<i64>);

impl ApiResponse for UploadError {
    fn meta() -> MetaResponses {
        let mut meta = ApiError::meta();
        for r in meta.responses.iter_mut().filter(|r| r.status == Some(409)) {
            r.headers.push(MetaHeader {
                name: "Upload-Offset".into(),
                description: Some("On an offset mismatch: the bytes the server has.".into()),
                required: false,
                deprecated: false,
                schema: i64::schema_ref(),
            });
        }
        meta
    }

    fn register(registry: &mut Registry) {
        ApiError::register(registry);
    }
}

impl IntoResponse for UploadError {
    fn into_response(self) -> Response {
        let mut resp = self.0.into_response();
        if let Some(offset) = self.1 {
            resp.headers_mut().insert("upload-offset", offset.into());
        }
        resp
    }
}

impl From<UploadError> for poem::Error {
    fn from(e: UploadError) -> Self {
        poem::Error::from_response(e.into_response())
    }
}

impl From<AudioError> for UploadError {
    fn from(e: AudioError) -> Self {
        let offset = match &e {
            AudioError::Refused(Refusal::Offset(at)) => Some(*at),
            _ => None,
        };
        Self(e.into(), offset)
    }
}

impl From<ApiError> for UploadError {
    fn from(e: ApiError) -> Self {
        Self(e, None)
    }
}

impl From<AudioError> for ApiError {
    fn from(err: AudioError) -> Self {
        let status = match err {
            AudioError::Transcription(inner) => return inner.into(),
            AudioError::Refused(Refusal::Invalid(issues)) => return issues.into(),
            AudioError::Refused(Refusal::Offset(_) | Refusal::Conflict(_))
            | AudioError::Incomplete { .. } => StatusCode::CONFLICT,
            AudioError::Refused(Refusal::TooLarge(_)) => StatusCode::PAYLOAD_TOO_LARGE,
            AudioError::Refused(Refusal::UnsupportedType(_)) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            AudioError::ChecksumMismatch => StatusCode::UNPROCESSABLE_ENTITY,
            AudioError::Disk(_) => StatusCode::SERVICE_UNAVAILABLE,
        };
        Self::new(status, err.to_string())
    }
}

#[derive(Default)]
pub struct AudioApi;

#[OpenApi(prefix_path = "/transcriptions", tag = "ApiTags::Transcriptions")]
impl AudioApi {
    /// Upload the dictation's audio in resumable chunks.
    ///
    /// Each chunk is the request body, sent with `Upload-Offset` (bytes already sent; must equal
    /// what the server has, else 409 with the server's `Upload-Offset`), `Upload-Length` (the
    /// whole file's size; required on the first chunk) and the audio `Content-Type`. By the last
    /// chunk, declare the whole file's digest with `Upload-Checksum: sha256 <hex or base64>` or
    /// `X-Audio-SHA256: <hex>`; a mismatch discards the upload (422). Only the author (or
    /// `admin|super`) uploads, to a draft or a note pending review; complete audio is final.
    #[oai(path = "/:id/audio", method = "put", operation_id = "transcriptions_audio_upload")]
    #[allow(clippy::too_many_arguments)]
    async fn upload(
        &self,
        state: Data<&AppState>,
        auth: Auth,
        req: &Request,
        id: Path<String>,
        #[oai(name = "Upload-Offset")] offset: Header<i64>,
        #[oai(name = "Upload-Length")] length: Header<Option<i64>>,
        #[oai(name = "Upload-Checksum")] checksum: Header<Option<String>>,
        #[oai(name = "X-Audio-SHA256")] sha256: Header<Option<String>>,
        body: Binary<Vec<u8>>,
    ) -> Result<Progress, UploadError> {
        let chunk = Chunk {
            offset: offset.0,
            len: body.0.len() as i64,
            upload_length: length.0,
            content_type: req.content_type().unwrap_or_default(),
            upload_checksum: checksum.0.as_deref(),
            x_audio_sha256: sha256.0.as_deref(),
        };
        let upload = service::upload(&state, &auth.0, parse_id(&id.0)?, chunk, &body.0).await?;
        Ok(progress(upload))
    }

    /// How much of the audio the server has: resume an interrupted upload from `received`.
    #[oai(path = "/:id/audio/status", method = "get", operation_id = "transcriptions_audio_status")]
    async fn status(
        &self,
        state: Data<&AppState>,
        auth: Auth,
        id: Path<String>,
    ) -> Result<Progress, ApiError> {
        Ok(progress(service::progress(&state, &auth.0, parse_id(&id.0)?).await?))
    }

    /// The complete audio, streamed; one `Range: bytes=…` gives a 206.
    #[oai(path = "/:id/audio", method = "get", operation_id = "transcriptions_audio_get")]
    async fn get(
        &self,
        state: Data<&AppState>,
        auth: Auth,
        id: Path<String>,
        #[oai(name = "Range")] range: Header<Option<String>>,
    ) -> Result<AudioBody, ApiError> {
        let ranges = "bytes".to_string();
        Ok(match service::read(&state, &auth.0, parse_id(&id.0)?, range.0.as_deref()).await? {
            AudioRead::Unsatisfiable { len } => AudioBody::Unsatisfiable(
                Json(Problem::new(
                    StatusCode::RANGE_NOT_SATISFIABLE,
                    format!("the requested range is outside the audio's {len} bytes"),
                )),
                format!("bytes */{len}"),
            ),
            AudioRead::Bytes { content_type, len, range: None, body } => {
                AudioBody::Whole(Binary(Body::from_bytes_stream(body)), content_type, len, ranges)
            }
            AudioRead::Bytes { content_type, len, range: Some((first, last)), body } => AudioBody::Part(
                Binary(Body::from_bytes_stream(body)),
                content_type,
                last + 1 - first,
                ranges,
                format!("bytes {first}-{last}/{len}"),
            ),
        })
    }
}
