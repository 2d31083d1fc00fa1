//! DocumentReference and Binary: patient documents (their bytes as a Binary) and filed clinical
//! notes (their text inline), with the rights the rest of the API asks for them (documents:
//! `patients|docs` and their categories; notes: their encounter's) instead of OpenEMR's
//! `admin|super`, and the same audit rows.

use base64::{Engine, engine::general_purpose::STANDARD as BASE64};
use chrono::NaiveDateTime;
use poem::{Request, web::Data};
use poem_openapi::{
    ApiResponse, OpenApi,
    param::{Header, Path, Query},
    payload::{Binary, Json},
    types::ToJSON,
};

use super::{
    Created, FhirError, Found, Links, date_bounds, entry, instant,
    model::{
        Attachment, BinaryResource, Bundle, CodeableConcept, Coding, DocumentContent, DocumentContext,
        DocumentReference, DocumentReferenceCreate, Identifier, Meta, Period, Reference,
    },
    patient_reference, searched_patient, subject_patient, text, uuid_of,
};
use crate::{
    app::AppState,
    domain::{fhir::token_code, patient::Pid},
    fhir::observation::LOINC,
    http::{auth::Auth, problem::ApiError},
    service::{
        chart::{
            ChartError,
            clinical_notes::{self, NewNote},
        },
        documents::records::{self, DocumentError, DocumentView},
    },
    storage::openemr::{clinical_notes::NoteRow, encounters, facilities, providers, uuid_registry},
};

pub const US_CORE_DOCUMENT_REFERENCE: &str =
    "http://hl7.org/fhir/us/core/StructureDefinition/us-core-documentreference";
const CLINICAL_NOTE: &str = "clinical-note";
const CATEGORY_SYSTEM: &str = "http://hl7.org/fhir/us/core/CodeSystem/us-core-documentreference-category";

/// The search parameters served, as the CapabilityStatement lists them.
pub const SEARCH_PARAMS: &[(&str, &str, &str)] = &[
    ("patient", "reference", "the patient's id; required, and every match is on one page"),
    ("category", "token", "clinical-note for filed notes, else a document category's name"),
    ("type", "token", "a note type's LOINC code"),
    ("date", "date", "when the document or note was made (eq, ge, gt, le, lt; up to twice)"),
];

/// A document's bytes as they are, or as a Binary resource (`application/fhir+json`) when
/// `Accept` asks for FHIR JSON. One variant: the served spec lists both content types.
#[derive(ApiResponse)]
pub enum BinaryFound {
    #[oai(status = 200)]
    Ok(Binary<Vec<u8>>, #[oai(header = "Content-Type")] String),
}

#[derive(Default)]
pub struct DocumentReferenceApi;

#[OpenApi(prefix_path = "/DocumentReference")]
impl DocumentReferenceApi {
    /// Files a clinical note: its text (one `text/plain` attachment, base64) goes into the
    /// Clinical Notes form of the encounter in `context.encounter`, by the signed-in user, as a
    /// transcription is filed (so OpenEMR's screens and FHIR API show it). Needs the encounter's
    /// rights to add a form; audited.
    #[oai(path = "/", method = "post", operation_id = "fhir_document_reference_create")]
    async fn create(
        &self,
        state: Data<&AppState>,
        auth: Auth,
        req: &Request,
        body: Json<DocumentReferenceCreate>,
    ) -> Result<Created<DocumentReference>, FhirError> {
        let body = body.0;
        if body.resource_type != "DocumentReference" {
            return Err(FhirError::invalid("resourceType", "must be DocumentReference"));
        }
        if body.status != "current" {
            return Err(FhirError::invalid("status", "a note is filed as current"));
        }
        let (pid, _) = subject_patient(&state, Some(&body.subject)).await?;
        let encounter = body
            .context
            .as_ref()
            .and_then(|c| c.encounter.first())
            .and_then(|e| e.reference.as_deref())
            .and_then(|r| uuid_of(r.strip_prefix("Encounter/").unwrap_or(r)))
            .ok_or_else(|| FhirError::invalid("context.encounter", "is required: Encounter/{id}"))?;
        let note = NewNote { pid, encounter, code: note_code(body.kind.as_ref())?, text: note_text(&body)? };
        let row = clinical_notes::create(&state, &auth.0, note)
            .await
            .map_err(|e| FhirError::from(e).renamed(element))?;
        let links = Links::of(req, "DocumentReference");
        let organization = primary_organization(&state).await?;
        let created = note_reference(&row, &organization)
            .ok_or_else(|| ChartError::NotFound("the filed note has no uuid".into()))?;
        let location = links.url_of(&created.id);
        Ok(Created::Created(Json(created), location))
    }

    /// One document or clinical note. Documents need `patients|docs` and the rights of every
    /// category they are filed in; notes, their encounter's rights. Audited.
    #[oai(path = "/:id", method = "get", operation_id = "fhir_document_reference_read")]
    async fn read(
        &self,
        state: Data<&AppState>,
        auth: Auth,
        req: &Request,
        id: Path<String>,
    ) -> Result<Found<DocumentReference>, FhirError> {
        let missing = || ChartError::NotFound("no document or clinical note with this id".into());
        let uuid = uuid_of(&id.0).ok_or_else(missing)?;
        let organization = primary_organization(&state).await?;
        let found = match records::id_of(&state, &uuid).await? {
            Some(document) => {
                let view = records::get(&state, &auth.0, document).await?;
                document_reference(&state, &Links::of(req, "Binary"), &view, &organization).await?
            }
            None => {
                note_reference(&clinical_notes::get_by_uuid(&state, &auth.0, &uuid).await?, &organization)
            }
        };
        Ok(Found::Ok(Json(found.ok_or_else(missing)?)))
    }

    /// A patient's documents and clinical notes the caller may see, newest first, on one page.
    /// Documents in categories or encounters the caller may not open are left out, as are notes
    /// of encounters they may not see; audited.
    #[oai(path = "/", method = "get", operation_id = "fhir_document_reference_search")]
    #[allow(clippy::too_many_arguments)]
    async fn search(
        &self,
        state: Data<&AppState>,
        auth: Auth,
        req: &Request,
        /// The patient's id (`Patient/{id}` or `{id}`); required.
        patient: Query<Option<String>>,
        category: Query<Option<String>>,
        #[oai(name = "type")] kind: Query<Option<String>>,
        /// `ge2026-01-01`, `lt2026-02-01`, `2026-01-15`; given twice for a range.
        date: Query<Vec<String>>,
    ) -> Result<Found<Bundle<DocumentReference>>, FhirError> {
        let links = Links::of(req, "DocumentReference");
        let (from, to) = date_bounds("date", &date.0)?;
        let Some((pid, _)) = searched_patient(&state, patient.0).await? else {
            return Ok(Found::Ok(Json(links.whole(Vec::new()))));
        };
        let category = category.0.map(|c| token_code(&c).to_string());
        let kind = kind.0.map(|t| token_code(&t).to_string());
        let organization = primary_organization(&state).await?;
        let mut found = Vec::new();
        let notes_wanted = category.as_deref().is_none_or(|c| c == CLINICAL_NOTE);
        let documents_wanted = kind.is_none() && category.as_deref() != Some(CLINICAL_NOTE);
        let notes =
            if notes_wanted { readable(clinical_notes::list(&state, &auth.0, pid).await)? } else { None };
        for row in notes.into_iter().flatten() {
            let wanted_type = kind.as_deref().is_none_or(|k| note_loinc(&row) == Some(k));
            found.extend(note_reference(&row, &organization).filter(|_| wanted_type));
        }
        let documents =
            if documents_wanted { readable(documents_of(&state, &auth, pid).await)? } else { None };
        let binary = Links::of(req, "Binary");
        for view in documents.into_iter().flatten() {
            let in_category = category.as_deref().is_none_or(|c| {
                view.categories.iter().any(|(_, path)| last_name(path).eq_ignore_ascii_case(c))
            });
            if in_category {
                found.extend(document_reference(&state, &binary, &view, &organization).await?);
            }
        }
        found.retain(|d| within(d.date.as_deref(), from, to));
        found.sort_by(|a, b| b.date.cmp(&a.date).then_with(|| a.id.cmp(&b.id)));
        let entries = found.into_iter().map(|d| entry(&links, d.id.clone(), d)).collect();
        Ok(Found::Ok(Json(links.whole(entries))))
    }
}

#[derive(Default)]
pub struct BinaryApi;

#[OpenApi(prefix_path = "/Binary")]
impl BinaryApi {
    /// A patient document's bytes (the `url` of its DocumentReference), decrypted and checked
    /// against its stored hash; a Binary resource with `Accept: application/fhir+json`. Needs
    /// `patients|docs` and the rights of the document's categories; audited.
    #[oai(path = "/:id", method = "get", operation_id = "fhir_binary_read")]
    async fn read(
        &self,
        state: Data<&AppState>,
        auth: Auth,
        id: Path<String>,
        #[oai(name = "Accept")] accept: Header<Option<String>>,
    ) -> Result<BinaryFound, FhirError> {
        let missing = || ApiError::new(poem::http::StatusCode::NOT_FOUND, "no document with this id");
        let uuid = uuid_of(&id.0).ok_or_else(missing)?;
        let document = records::id_of(&state, &uuid).await?.ok_or_else(missing)?;
        let content = records::content(&state, &auth.0, document).await?;
        let wants_resource =
            accept.0.as_deref().is_some_and(|a| a.contains("fhir+json") || a.contains("/json"));
        Ok(if wants_resource {
            let resource = BinaryResource {
                resource_type: "Binary".into(),
                id: id.0,
                content_type: content.mimetype,
                data: BASE64.encode(&content.bytes),
            };
            BinaryFound::Ok(Binary(resource.to_json_string().into_bytes()), super::FHIR_JSON.into())
        } else {
            BinaryFound::Ok(Binary(content.bytes), content.mimetype)
        })
    }
}

/// The note type's code as `Clinical_Note_Type` stores it (`LOINC:…`), from a LOINC coding.
fn note_code(kind: Option<&CodeableConcept>) -> Result<Option<String>, FhirError> {
    let Some(kind) = kind else { return Ok(None) };
    let loinc =
        kind.coding.iter().find(|c| c.system.as_deref() == Some(LOINC)).and_then(|c| c.code.as_deref());
    match loinc.and_then(text) {
        Some(code) => Ok(Some(format!("LOINC:{code}"))),
        None => Err(FhirError::invalid("type", "needs a LOINC coding (system http://loinc.org)")),
    }
}

/// The note's text: one `text/plain` attachment of base64 UTF-8.
fn note_text(body: &DocumentReferenceCreate) -> Result<String, FhirError> {
    let [content] = body.content.as_slice() else {
        return Err(FhirError::invalid("content", "must hold exactly one attachment: the note's text"));
    };
    let attachment = &content.attachment;
    let plain = attachment
        .content_type
        .as_deref()
        .is_none_or(|t| t.split(';').next().is_some_and(|t| t.trim().eq_ignore_ascii_case("text/plain")));
    if !plain {
        return Err(FhirError::invalid("content[0].attachment.contentType", "a note is text/plain"));
    }
    let bytes = BASE64
        .decode(attachment.data.trim())
        .map_err(|_| FhirError::invalid("content[0].attachment.data", "must be base64"))?;
    String::from_utf8(bytes)
        .map_err(|_| FhirError::invalid("content[0].attachment.data", "must be UTF-8 text"))
}

/// The service's field names as the elements of the resource a client sent.
fn element(field: &str) -> &str {
    match field {
        "text" => "content[0].attachment.data",
        "encounter" => "context.encounter",
        other => other,
    }
}

/// A part of the search the caller has no right to is left out, not an error.
fn readable<T, E: Into<ApiError>>(result: Result<T, E>) -> Result<Option<T>, FhirError> {
    match result.map_err(Into::into) {
        Ok(found) => Ok(Some(found)),
        Err(ApiError::Forbidden(_)) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

async fn documents_of(state: &AppState, auth: &Auth, pid: Pid) -> Result<Vec<DocumentView>, DocumentError> {
    records::list(state, &auth.0, pid.0, records::ListFilter::default()).await
}

fn within(date: Option<&str>, from: Option<chrono::NaiveDate>, to: Option<chrono::NaiveDate>) -> bool {
    let day = date.and_then(|d| chrono::NaiveDate::parse_from_str(d.get(..10)?, "%Y-%m-%d").ok());
    match day {
        Some(day) => from.is_none_or(|f| day >= f) && to.is_none_or(|t| day <= t),
        None => from.is_none() && to.is_none(),
    }
}

fn last_name(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

/// The primary business entity, OpenEMR's custodian of every document.
async fn primary_organization(state: &AppState) -> Result<Option<Reference>, FhirError> {
    let primary = facilities::list(&state.pool).await?.into_iter().find(|f| f.primary_business_entity);
    Ok(primary.and_then(|f| {
        Some(Reference {
            reference: Some(format!("Organization/{}", uuid_registry::to_string(f.uuid.as_deref())?)),
            display: f.name.as_deref().and_then(text),
        })
    }))
}

/// The author as OpenEMR names it: the Practitioner when they have an NPI, else the organization.
fn author(uuid: Option<&[u8]>, npi: Option<&str>, organization: &Option<Reference>) -> Vec<Reference> {
    let practitioner = npi.and_then(text).and_then(|_| uuid_registry::to_string(uuid));
    match practitioner {
        Some(id) => vec![Reference { reference: Some(format!("Practitioner/{id}")), display: None }],
        None => organization.iter().cloned().collect(),
    }
}

fn identifier(id: &str) -> Vec<Identifier> {
    vec![Identifier {
        use_: None,
        kind: None,
        system: Some("urn:ietf:rfc:3986".into()),
        value: Some(format!("urn:uuid:{id}")),
    }]
}

fn mime_type_sufficient() -> Coding {
    Coding {
        system: Some("http://ihe.net/fhir/ValueSet/IHE.FormatCode.codesystem".into()),
        code: Some("urn:ihe:iti:xds:2017:mimeTypeSufficient".into()),
        display: Some("mimeType Sufficient".into()),
    }
}

/// The encounter a document or note belongs to, and when it began.
fn context(encounter: Option<&[u8]>, start: Option<NaiveDateTime>) -> Option<DocumentContext> {
    let id = uuid_registry::to_string(encounter)?;
    Some(DocumentContext {
        encounter: vec![Reference { reference: Some(format!("Encounter/{id}")), display: None }],
        period: start.and_then(instant).map(|start| Period { start: Some(start), end: None }),
    })
}

fn meta(last_updated: Option<String>) -> Meta {
    Meta { version_id: None, last_updated, profile: vec![US_CORE_DOCUMENT_REFERENCE.into()] }
}

fn null_flavor(system: &str, code: &str, display: &str) -> CodeableConcept {
    CodeableConcept {
        coding: vec![Coding {
            system: Some(system.into()),
            code: Some(code.into()),
            display: Some(display.into()),
        }],
        text: None,
    }
}

/// OpenEMR's type for what has no LOINC code.
fn unknown_type() -> CodeableConcept {
    null_flavor("http://terminology.hl7.org/CodeSystem/v3-NullFlavor", "UNK", "unknown")
}

/// OpenEMR's category for a document filed in no category.
fn absent() -> CodeableConcept {
    null_flavor("http://terminology.hl7.org/CodeSystem/data-absent-reason", "unknown", "Unknown")
}

/// The note's LOINC code, without the `LOINC:` OpenEMR stores before it.
fn note_loinc(row: &NoteRow) -> Option<&str> {
    let code = row.code.as_deref()?.trim();
    Some(code.strip_prefix("LOINC:").unwrap_or(code)).filter(|c| !c.is_empty())
}

fn note_reference(row: &NoteRow, organization: &Option<Reference>) -> Option<DocumentReference> {
    let id = uuid_registry::to_string(row.uuid.as_deref())?;
    let kind = match note_loinc(row) {
        Some(code) => CodeableConcept {
            coding: vec![Coding {
                system: Some(LOINC.into()),
                code: Some(code.into()),
                display: row.codetext.as_deref().and_then(text),
            }],
            text: row.codetext.as_deref().and_then(text),
        },
        None => unknown_type(),
    };
    Some(DocumentReference {
        resource_type: "DocumentReference".into(),
        identifier: identifier(&id),
        id,
        meta: meta(instant(row.last_updated)),
        status: if row.active { "current" } else { "entered-in-error" }.into(),
        kind,
        category: vec![CodeableConcept {
            coding: vec![Coding {
                system: Some(CATEGORY_SYSTEM.into()),
                code: Some(CLINICAL_NOTE.into()),
                display: Some("Clinical Note".into()),
            }],
            text: None,
        }],
        subject: patient_reference(row.patient_uuid.as_deref()),
        date: row.date.and_then(|d| instant(d.and_time(chrono::NaiveTime::MIN))),
        author: author(row.author_uuid.as_deref(), row.author_npi.as_deref(), organization),
        custodian: organization.clone(),
        content: vec![DocumentContent {
            attachment: Attachment {
                content_type: Some("text/plain".into()),
                data: Some(BASE64.encode(row.description.as_deref().unwrap_or_default())),
                url: None,
                title: None,
            },
            format: Some(mime_type_sufficient()),
        }],
        context: context(row.encounter_uuid.as_deref(), row.encounter_date),
    })
}

async fn document_reference(
    state: &AppState,
    binary: &Links,
    view: &DocumentView,
    organization: &Option<Reference>,
) -> Result<Option<DocumentReference>, FhirError> {
    let row = &view.row;
    let Some(id) = uuid_registry::to_string(row.uuid.as_deref()) else { return Ok(None) };
    let subject = super::subject_of(state, Pid(row.foreign_id.unwrap_or_default())).await?;
    let owner = match row.owner {
        Some(owner) => providers::get(&state.pool, owner).await?,
        None => None,
    };
    // The document's own rights (its encounter's sensitivity among them) were checked on reading it.
    let encounter = match row.encounter_id {
        0 => None,
        number => encounters::get(&state.pool, number).await?,
    };
    let category: Vec<CodeableConcept> = view
        .categories
        .iter()
        .map(|(_, path)| CodeableConcept { coding: Vec::new(), text: text(last_name(path)) })
        .collect();
    let mimetype = row.mimetype.as_deref().and_then(text);
    Ok(Some(DocumentReference {
        resource_type: "DocumentReference".into(),
        identifier: identifier(&id),
        meta: meta(row.date.and_then(instant)),
        status: "current".into(),
        kind: unknown_type(),
        category: if category.is_empty() { vec![absent()] } else { category },
        subject,
        date: row.date.and_then(instant),
        author: owner.map(|o| author(o.uuid.as_deref(), o.npi.as_deref(), organization)).unwrap_or_default(),
        custodian: organization.clone(),
        content: vec![DocumentContent {
            attachment: Attachment {
                content_type: mimetype.clone(),
                data: None,
                url: Some(binary.url_of(&id)),
                title: row.name.as_deref().and_then(text),
            },
            format: mimetype.map(|_| mime_type_sufficient()),
        }],
        context: encounter.and_then(|e| context(e.uuid.as_deref(), e.date)),
        id,
    }))
}
