use chrono::NaiveDateTime;
use poem::{http::StatusCode, web::Data};
use poem_openapi::{
    ApiResponse, Enum, Object, OpenApi,
    param::{Header, Path, Query},
    payload::Json,
};

use crate::{
    app::AppState,
    domain::{
        transcription::{
            self, Action, Segment, SegmentInput as DomainSegmentInput, TranscriptionId, TranscriptionStatus,
        },
        validation::Issues,
    },
    http::{
        ApiTags,
        auth::Auth,
        etag::{etag, parse_if_match},
        problem::ApiError,
    },
    service::transcriptions::{self as service, NewTranscriptionInput},
    storage::mmt::transcriptions::{Details, ListFilters, RevisionRow, TranscriptionRow},
};

#[derive(Enum, Clone, Copy, PartialEq, Eq, Debug)]
#[oai(rename_all = "snake_case")]
pub enum Status {
    Draft,
    PendingReview,
    Approved,
    Rejected,
    Filed,
    Cancelled,
}

impl From<TranscriptionStatus> for Status {
    fn from(s: TranscriptionStatus) -> Self {
        match s {
            TranscriptionStatus::Draft => Self::Draft,
            TranscriptionStatus::PendingReview => Self::PendingReview,
            TranscriptionStatus::Approved => Self::Approved,
            TranscriptionStatus::Rejected => Self::Rejected,
            TranscriptionStatus::Filed => Self::Filed,
            TranscriptionStatus::Cancelled => Self::Cancelled,
        }
    }
}

impl From<Status> for TranscriptionStatus {
    fn from(s: Status) -> Self {
        match s {
            Status::Draft => Self::Draft,
            Status::PendingReview => Self::PendingReview,
            Status::Approved => Self::Approved,
            Status::Rejected => Self::Rejected,
            Status::Filed => Self::Filed,
            Status::Cancelled => Self::Cancelled,
        }
    }
}

#[derive(Object, Clone)]
#[oai(skip_serializing_if_is_none)]
pub struct SegmentView {
    pub seq: u32,
    pub start_ms: u32,
    pub end_ms: u32,
    pub speaker_label: String,
    /// clinician, patient, other or unknown.
    pub speaker_role: String,
    pub text: String,
    /// 0 to 1.
    pub confidence: Option<f64>,
    pub edited_by_human: bool,
}

impl From<Segment> for SegmentView {
    fn from(s: Segment) -> Self {
        Self {
            seq: s.seq,
            start_ms: s.start_ms,
            end_ms: s.end_ms,
            speaker_label: s.speaker_label,
            speaker_role: s.speaker_role.as_str().into(),
            text: s.text,
            confidence: s.confidence,
            edited_by_human: s.edited_by_human,
        }
    }
}

#[derive(Object)]
#[oai(deny_unknown_fields)]
pub struct SegmentInput {
    /// Order within the transcription; defaults to the position in the request.
    pub seq: Option<u32>,
    pub start_ms: i64,
    pub end_ms: i64,
    pub speaker_label: Option<String>,
    /// clinician, patient, other or unknown (default).
    pub speaker_role: Option<String>,
    pub text: String,
    pub confidence: Option<f64>,
    pub edited_by_human: Option<bool>,
}

impl From<SegmentInput> for DomainSegmentInput {
    fn from(s: SegmentInput) -> Self {
        Self {
            seq: s.seq,
            start_ms: s.start_ms,
            end_ms: s.end_ms,
            speaker_label: s.speaker_label,
            speaker_role: s.speaker_role,
            text: s.text,
            confidence: s.confidence,
            edited_by_human: s.edited_by_human,
        }
    }
}

#[derive(Object)]
#[oai(skip_serializing_if_is_none)]
pub struct AudioView {
    pub content_type: Option<String>,
    /// Declared total size in bytes.
    pub size: Option<i64>,
    /// Bytes received so far; resume the upload from here.
    pub received: i64,
    pub complete: bool,
    pub duration_ms: Option<i64>,
}

#[derive(Object)]
#[oai(skip_serializing_if_is_none)]
pub struct FiledView {
    /// `form_clinical_notes.form_id` (and the `forms` row's form_id) in OpenEMR.
    pub form_id: Option<i64>,
    /// `form_clinical_notes.id` in OpenEMR.
    pub note_id: Option<i64>,
    pub filed_at: Option<NaiveDateTime>,
    pub filed_by: Option<i64>,
}

#[derive(Object)]
#[oai(skip_serializing_if_is_none)]
pub struct Transcription {
    pub id: String,
    pub pid: i64,
    pub encounter: Option<i64>,
    /// OpenEMR user id of the dictating clinician.
    pub author_id: i64,
    pub status: Status,
    /// What may be done next: submit, approve, reject, reopen, cancel, integrate_with_openemr.
    pub allowed_actions: Vec<String>,
    /// Send as `If-Match` to edit; also the `ETag`.
    pub version: u32,
    pub title: String,
    /// An option of OpenEMR's Clinical_Note_Type list, e.g. progress_note.
    pub note_type: String,
    pub language: String,
    pub text: String,
    pub audio: AudioView,
    pub reject_reason: Option<String>,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
    pub submitted_at: Option<NaiveDateTime>,
    pub approved_at: Option<NaiveDateTime>,
    pub approved_by: Option<i64>,
    pub rejected_at: Option<NaiveDateTime>,
    pub rejected_by: Option<i64>,
    pub cancelled_at: Option<NaiveDateTime>,
    /// Present once filed into OpenEMR.
    #[oai(skip_serializing_if_is_none)]
    pub filed: Option<FiledView>,
    /// Present on single-transcription reads.
    #[oai(skip_serializing_if_is_none)]
    pub segments: Option<Vec<SegmentView>>,
}

fn view(r: TranscriptionRow, segments: Option<Vec<Segment>>) -> Transcription {
    let status = r.status();
    Transcription {
        id: TranscriptionId::from_bytes(&r.id).map(|i| i.to_string()).unwrap_or_default(),
        pid: r.pid,
        encounter: r.encounter,
        author_id: r.author_id,
        status: status.into(),
        allowed_actions: transcription::allowed_from(status)
            .into_iter()
            .map(|a| a.as_str().to_string())
            .collect(),
        version: r.version,
        title: r.title,
        note_type: r.note_type,
        language: r.language,
        text: r.note_text,
        audio: AudioView {
            content_type: r.audio_content_type,
            size: r.audio_size,
            received: r.audio_received,
            complete: r.audio_completed_at.is_some(),
            duration_ms: r.audio_duration_ms,
        },
        reject_reason: r.reject_reason,
        created_at: r.created_at,
        updated_at: r.updated_at,
        submitted_at: r.submitted_at,
        approved_at: r.approved_at,
        approved_by: r.approved_by,
        rejected_at: r.rejected_at,
        rejected_by: r.rejected_by,
        cancelled_at: r.cancelled_at,
        filed: r.filed_at.map(|at| FiledView {
            form_id: r.filed_form_id,
            note_id: r.filed_note_id,
            filed_at: Some(at),
            filed_by: r.filed_by,
        }),
        segments: segments.map(|s| s.into_iter().map(SegmentView::from).collect()),
    }
}

#[derive(Object)]
#[oai(deny_unknown_fields)]
pub struct TranscriptionCreate {
    /// A UUID the client generates; sending the same create again returns the original.
    pub id: String,
    pub pid: i64,
    pub encounter: Option<i64>,
    pub title: Option<String>,
    /// Defaults to progress_note.
    pub note_type: Option<String>,
    /// Defaults to en.
    pub language: Option<String>,
    /// The note; defaults to the segments' text in order.
    pub text: Option<String>,
    pub segments: Option<Vec<SegmentInput>>,
}

#[derive(Object)]
#[oai(deny_unknown_fields)]
pub struct TranscriptionEdit {
    pub title: Option<String>,
    pub note_type: Option<String>,
    pub language: Option<String>,
    pub text: Option<String>,
    /// Link (or, with null on PUT, unlink) the encounter to file into.
    pub encounter: Option<i64>,
    /// Why the text changed, kept in the revision history.
    pub reason: Option<String>,
}

#[derive(Object)]
#[oai(deny_unknown_fields)]
pub struct SegmentsInput {
    pub segments: Vec<SegmentInput>,
}

#[derive(Object)]
#[oai(deny_unknown_fields)]
pub struct RejectInput {
    /// Why the note is sent back; shown to the author.
    pub reason: String,
}

#[derive(Object)]
pub struct Revision {
    pub revision_no: u32,
    pub text: String,
    /// OpenEMR user id who made the change.
    pub author_id: i64,
    pub reason: String,
    pub created_at: NaiveDateTime,
}

impl From<RevisionRow> for Revision {
    fn from(r: RevisionRow) -> Self {
        Self {
            revision_no: r.revision_no,
            text: r.note_text,
            author_id: r.author_id,
            reason: r.reason,
            created_at: r.created_at,
        }
    }
}

#[derive(Object)]
pub struct TranscriptionPage {
    pub items: Vec<Transcription>,
    pub total: i64,
    pub page: u32,
    pub page_size: u32,
}

#[derive(ApiResponse)]
pub enum One {
    #[oai(status = 200)]
    Ok(Json<Transcription>, #[oai(header = "ETag")] String),
}

#[derive(ApiResponse)]
pub enum Created {
    /// Created.
    #[oai(status = 201)]
    Created(Json<Transcription>, #[oai(header = "ETag")] String, #[oai(header = "Location")] String),
    /// This id was already created with the same content: the original is returned.
    #[oai(status = 200)]
    Existing(Json<Transcription>, #[oai(header = "ETag")] String, #[oai(header = "Location")] String),
}

#[derive(ApiResponse)]
pub enum PageResponse {
    #[oai(status = 200)]
    Ok(Json<TranscriptionPage>),
}

/// An HL7 v2 message in its text encoding (ER7).
#[derive(ApiResponse)]
pub enum Hl7Message {
    #[oai(status = 200, content_type = "application/hl7-v2")]
    Ok(poem_openapi::payload::PlainText<String>),
}

#[derive(ApiResponse)]
pub enum Revisions {
    #[oai(status = 200)]
    Ok(Json<Vec<Revision>>),
}

fn one(row: TranscriptionRow, segments: Option<Vec<Segment>>) -> One {
    let tag = etag(row.version);
    One::Ok(Json(view(row, segments)), tag)
}

pub(crate) fn parse_id(raw: &str) -> Result<TranscriptionId, ApiError> {
    TranscriptionId::parse(raw).ok_or_else(|| {
        ApiError::new(StatusCode::NOT_FOUND, format!("{raw} is not a transcription id (a UUID)"))
    })
}

/// Submit, approve, reject, reopen or cancel, answering with the transcription as it now is.
async fn act(
    state: &AppState,
    auth: &Auth,
    id: TranscriptionId,
    action: Action,
    if_match: Header<Option<String>>,
    reason: Option<String>,
) -> Result<One, ApiError> {
    let row = service::act(state, &auth.0, id, action, parse_if_match(if_match.0), reason).await?;
    Ok(one(row, None))
}

/// Adds segments (same `seq` replaces) or, with `replace`, swaps the whole set.
async fn put_segments(
    state: &AppState,
    auth: &Auth,
    id: TranscriptionId,
    if_match: Header<Option<String>>,
    body: SegmentsInput,
    replace: bool,
) -> Result<One, ApiError> {
    let segments = body.segments.into_iter().map(Into::into).collect();
    let if_match = parse_if_match(if_match.0);
    let (row, segments) = service::put_segments(state, &auth.0, id, if_match, segments, replace).await?;
    Ok(one(row, Some(segments)))
}

#[derive(Default)]
pub struct TranscriptionsApi;

#[OpenApi(prefix_path = "/transcriptions", tag = "ApiTags::Transcriptions")]
impl TranscriptionsApi {
    /// Transcriptions the caller may see, newest first.
    ///
    /// With OpenEMR `encounters|notes_a` everyone's; otherwise the caller's own.
    #[oai(path = "/", method = "get", operation_id = "transcriptions_list")]
    #[allow(clippy::too_many_arguments)]
    async fn list(
        &self,
        state: Data<&AppState>,
        auth: Auth,
        /// pid.
        patient: Query<Option<i64>>,
        encounter: Query<Option<i64>>,
        status: Query<Option<Status>>,
        /// OpenEMR user id of the author.
        author: Query<Option<i64>>,
        /// Created on or after this date (YYYY-MM-DD).
        created_from: Query<Option<String>>,
        /// Created on or before this date (YYYY-MM-DD).
        created_to: Query<Option<String>>,
        page: Query<Option<u32>>,
        #[oai(validator(minimum(value = "1"), maximum(value = "100")))] page_size: Query<Option<u32>>,
    ) -> Result<PageResponse, ApiError> {
        let mut issues = Issues::default();
        let from = issues.optional_date("created_from", created_from.0);
        let to = issues.optional_date("created_to", created_to.0);
        issues.into_result(())?;
        let filters = ListFilters {
            pid: patient.0,
            encounter: encounter.0,
            status: status.0.map(Into::into),
            author_id: author.0,
            created_from: from.and_then(|d| d.and_hms_opt(0, 0, 0)),
            created_to: to.and_then(|d| d.succ_opt()).and_then(|d| d.and_hms_opt(0, 0, 0)),
            only_author: None,
            reach: None,
        };
        let super::paging::Window { page, page_size, offset } = super::paging::window(page.0, page_size.0);
        let (rows, total) = service::list(&state, &auth.0, filters, page_size, offset).await?;
        Ok(PageResponse::Ok(Json(TranscriptionPage {
            items: rows.into_iter().map(|r| view(r, None)).collect(),
            total,
            page,
            page_size,
        })))
    }

    /// Start a transcription (a draft), with or without segments.
    ///
    /// Needs OpenEMR `encounters|notes`. The `id` is generated by the client, so a retried create
    /// returns the original (200); the same id with different content is a 409.
    #[oai(path = "/", method = "post", operation_id = "transcriptions_create")]
    async fn create(
        &self,
        state: Data<&AppState>,
        auth: Auth,
        body: Json<TranscriptionCreate>,
    ) -> Result<Created, ApiError> {
        let b = body.0;
        let Some(id) = TranscriptionId::parse(&b.id) else {
            let mut issues = Issues::default();
            issues.add("id", "must be a UUID generated by the client");
            return Err(issues.into());
        };
        let input = NewTranscriptionInput {
            id,
            pid: b.pid,
            encounter: b.encounter,
            title: b.title,
            note_type: b.note_type,
            language: b.language,
            text: b.text,
            segments: b.segments.unwrap_or_default().into_iter().map(Into::into).collect(),
        };
        let (row, created) = service::create(&state, &auth.0, input).await?;
        let tag = etag(row.version);
        let location = format!("/api/transcriptions/{id}/");
        let body = Json(view(row, None));
        Ok(if created {
            Created::Created(body, tag, location)
        } else {
            Created::Existing(body, tag, location)
        })
    }

    /// One transcription with its segments; the `ETag` is its version.
    #[oai(path = "/:id/", method = "get", operation_id = "transcriptions_get")]
    async fn get(&self, state: Data<&AppState>, auth: Auth, id: Path<String>) -> Result<One, ApiError> {
        let (row, segments) = service::get(&state, &auth.0, parse_id(&id.0)?).await?;
        Ok(one(row, Some(segments)))
    }

    /// Replace a draft's details (`text` required). Send `If-Match`; a stale version gets 412.
    #[oai(path = "/:id/", method = "put", operation_id = "transcriptions_replace")]
    async fn replace(
        &self,
        state: Data<&AppState>,
        auth: Auth,
        id: Path<String>,
        #[oai(name = "If-Match")] if_match: Header<Option<String>>,
        body: Json<TranscriptionEdit>,
    ) -> Result<One, ApiError> {
        let b = body.0;
        if b.text.is_none() {
            let mut issues = Issues::default();
            issues.add("text", "is required when replacing; use PATCH to change some fields");
            return Err(issues.into());
        }
        let reason = b.reason.clone().unwrap_or_else(|| "edited".into());
        let details = Details {
            title: Some(b.title.unwrap_or_default()),
            note_type: Some(b.note_type.unwrap_or_else(|| "progress_note".into())),
            language: Some(b.language.unwrap_or_else(|| "en".into())),
            note_text: b.text,
            encounter: Some(b.encounter),
        };
        let row =
            service::edit(&state, &auth.0, parse_id(&id.0)?, parse_if_match(if_match.0), details, &reason)
                .await?;
        Ok(one(row, None))
    }

    /// Change some of a draft's details. Send `If-Match`; a stale version gets 412.
    #[oai(path = "/:id/", method = "patch", operation_id = "transcriptions_update")]
    async fn update(
        &self,
        state: Data<&AppState>,
        auth: Auth,
        id: Path<String>,
        #[oai(name = "If-Match")] if_match: Header<Option<String>>,
        body: Json<TranscriptionEdit>,
    ) -> Result<One, ApiError> {
        let b = body.0;
        let reason = b.reason.clone().unwrap_or_else(|| "edited".into());
        let details = Details {
            title: b.title,
            note_type: b.note_type,
            language: b.language,
            note_text: b.text,
            encounter: b.encounter.map(Some),
        };
        let row =
            service::edit(&state, &auth.0, parse_id(&id.0)?, parse_if_match(if_match.0), details, &reason)
                .await?;
        Ok(one(row, None))
    }

    /// Add segments to a draft; a segment with an existing `seq` replaces it.
    #[oai(path = "/:id/segments/", method = "post", operation_id = "transcriptions_add_segments")]
    async fn add_segments(
        &self,
        state: Data<&AppState>,
        auth: Auth,
        id: Path<String>,
        #[oai(name = "If-Match")] if_match: Header<Option<String>>,
        body: Json<SegmentsInput>,
    ) -> Result<One, ApiError> {
        put_segments(&state, &auth, parse_id(&id.0)?, if_match, body.0, false).await
    }

    /// Replace all of a draft's segments.
    #[oai(path = "/:id/segments/", method = "put", operation_id = "transcriptions_replace_segments")]
    async fn replace_segments(
        &self,
        state: Data<&AppState>,
        auth: Auth,
        id: Path<String>,
        #[oai(name = "If-Match")] if_match: Header<Option<String>>,
        body: Json<SegmentsInput>,
    ) -> Result<One, ApiError> {
        put_segments(&state, &auth, parse_id(&id.0)?, if_match, body.0, true).await
    }

    /// Send a draft for review.
    #[oai(path = "/:id/submit/", method = "post", operation_id = "transcriptions_submit")]
    async fn submit(
        &self,
        state: Data<&AppState>,
        auth: Auth,
        id: Path<String>,
        #[oai(name = "If-Match")] if_match: Header<Option<String>>,
    ) -> Result<One, ApiError> {
        act(&state, &auth, parse_id(&id.0)?, Action::Submit, if_match, None).await
    }

    /// Approve a note pending review.
    ///
    /// Needs OpenEMR `encounters|notes` on one's own encounter, or `encounters|notes_a`.
    #[oai(path = "/:id/approve/", method = "post", operation_id = "transcriptions_approve")]
    async fn approve(
        &self,
        state: Data<&AppState>,
        auth: Auth,
        id: Path<String>,
        #[oai(name = "If-Match")] if_match: Header<Option<String>>,
    ) -> Result<One, ApiError> {
        act(&state, &auth, parse_id(&id.0)?, Action::Approve, if_match, None).await
    }

    /// Send a note pending review back to its author, with a reason.
    #[oai(path = "/:id/reject/", method = "post", operation_id = "transcriptions_reject")]
    async fn reject(
        &self,
        state: Data<&AppState>,
        auth: Auth,
        id: Path<String>,
        #[oai(name = "If-Match")] if_match: Header<Option<String>>,
        body: Json<RejectInput>,
    ) -> Result<One, ApiError> {
        let id = parse_id(&id.0)?;
        act(&state, &auth, id, Action::Reject, if_match, Some(body.0.reason)).await
    }

    /// Reopen a rejected transcription as a draft, to edit and submit again.
    #[oai(path = "/:id/reopen/", method = "post", operation_id = "transcriptions_reopen")]
    async fn reopen(
        &self,
        state: Data<&AppState>,
        auth: Auth,
        id: Path<String>,
        #[oai(name = "If-Match")] if_match: Header<Option<String>>,
    ) -> Result<One, ApiError> {
        act(&state, &auth, parse_id(&id.0)?, Action::Reopen, if_match, None).await
    }

    /// Cancel a draft or rejected transcription.
    #[oai(path = "/:id/cancel/", method = "post", operation_id = "transcriptions_cancel")]
    async fn cancel(
        &self,
        state: Data<&AppState>,
        auth: Auth,
        id: Path<String>,
        #[oai(name = "If-Match")] if_match: Header<Option<String>>,
    ) -> Result<One, ApiError> {
        act(&state, &auth, parse_id(&id.0)?, Action::Cancel, if_match, None).await
    }

    /// File the approved note into the OpenEMR chart.
    ///
    /// Writes it into the encounter's Clinical Notes form (`form_clinical_notes` and its `forms`
    /// row; progress note, LOINC 11506-3, by the note's author) and marks the transcription
    /// filed, in one transaction. Calling it again returns the filed transcription: exactly one
    /// note is filed. A missing encounter is a 409 and nothing is written.
    #[oai(path = "/:id/integrate_with_openemr/", method = "post", operation_id = "transcriptions_file")]
    async fn file(&self, state: Data<&AppState>, auth: Auth, id: Path<String>) -> Result<One, ApiError> {
        let row = service::file(&state, &auth.0, parse_id(&id.0)?).await?;
        Ok(one(row, None))
    }

    /// The filed note as an HL7 v2.5.1 `MDM^T02` (original document notification and content),
    /// for document systems that import MDM: the patient (chart number, name, birth date, sex),
    /// the visit number, the author (NPI when OpenEMR has one), `TXA` with the note type's LOINC
    /// code and the note's uuid as the unique document number, one `OBX|n|TX|` per line. Only a
    /// filed transcription (409 otherwise); audited as a read.
    #[oai(path = "/:id/hl7", method = "get", operation_id = "transcriptions_hl7")]
    async fn hl7(
        &self,
        state: Data<&AppState>,
        auth: Auth,
        id: Path<String>,
    ) -> Result<Hl7Message, ApiError> {
        let message = crate::service::hl7::transcription_mdm(&state, &auth.0, parse_id(&id.0)?).await?;
        Ok(Hl7Message::Ok(poem_openapi::payload::PlainText(message)))
    }

    /// The note text's history, oldest first.
    #[oai(path = "/:id/revisions/", method = "get", operation_id = "transcriptions_revisions")]
    async fn revisions(
        &self,
        state: Data<&AppState>,
        auth: Auth,
        id: Path<String>,
    ) -> Result<Revisions, ApiError> {
        let rows = service::revisions(&state, &auth.0, parse_id(&id.0)?).await?;
        Ok(Revisions::Ok(Json(rows.into_iter().map(Revision::from).collect())))
    }
}
