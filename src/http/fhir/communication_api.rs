//! Communication: OpenEMR's messages (`pnotes`), which OpenEMR's FHIR API does not serve, read
//! and sent through the messaging API's rules (sender and recipient only, `patients|notes` for a
//! thread about a patient, the signed-in user always the sender, `Clinical Mail` audit rows).

use std::collections::HashMap;

use poem::{Request, web::Data};
use poem_openapi::{
    OpenApi,
    param::{Path, Query},
    payload::Json,
};

use super::{
    Created, FhirError, Found, Links, entry, instant,
    model::{
        Bundle, CodeableConcept, Communication, CommunicationCreate, CommunicationPayload, Meta, Reference,
    },
    searched_patient, subject_of, subject_patient, text, uuid_of,
};
use crate::{
    app::AppState,
    domain::{
        messaging::{
            message::{DONE, Mailbox, MessageInput},
            thread,
        },
        patient::Pid,
    },
    http::{auth::Auth, problem::ApiError},
    service::messaging::messages::{self, ListQuery, Thread},
    storage::openemr::uuid_registry,
};

/// The search parameters served, as the CapabilityStatement lists them.
pub const SEARCH_PARAMS: &[(&str, &str, &str)] = &[
    ("patient", "reference", "threads about this patient"),
    ("_count", "number", "threads per page, 1 to 100 (20)"),
];

#[derive(Default)]
pub struct CommunicationApi;

#[OpenApi(prefix_path = "/Communication")]
impl CommunicationApi {
    /// Sends a message from the signed-in user to one OpenEMR user, about a patient or none,
    /// written as OpenEMR's Messages screen writes it (so it shows in the recipient's inbox).
    /// A message about a patient needs `patients|notes`; audited.
    #[oai(path = "/", method = "post", operation_id = "fhir_communication_create")]
    async fn create(
        &self,
        state: Data<&AppState>,
        auth: Auth,
        req: &Request,
        body: Json<CommunicationCreate>,
    ) -> Result<Created<Communication>, FhirError> {
        let body = body.0;
        if body.resource_type != "Communication" {
            return Err(FhirError::invalid("resourceType", "must be Communication"));
        }
        if !["in-progress", "completed"].contains(&body.status.as_str()) {
            return Err(FhirError::invalid("status", "a message is sent as in-progress or completed"));
        }
        let [recipient] = body.recipient.as_slice() else {
            return Err(FhirError::invalid(
                "recipient",
                "exactly one: OpenEMR keeps one thread per recipient",
            ));
        };
        let to = match recipient
            .reference
            .as_deref()
            .and_then(|r| r.strip_prefix("Practitioner/"))
            .and_then(uuid_of)
        {
            Some(uuid) => messages::username_of(&state, &uuid).await?,
            None => None,
        };
        let to = to.ok_or_else(|| {
            FhirError::invalid("recipient", "must be Practitioner/{id} of an active OpenEMR user")
        })?;
        let pid = match &body.subject {
            Some(subject) => Some(subject_patient(&state, Some(subject)).await?.0.0),
            None => None,
        };
        let title = body.category.first().and_then(|c| c.text.clone());
        let text = body.payload.iter().map(|p| p.content_string.as_str()).collect::<Vec<_>>().join("\n");
        let input = MessageInput { to: vec![to], pid, title, text: Some(text), status: None };
        let thread = messages::create(&state, &auth.0, input)
            .await
            .map_err(|e| FhirError::from(e).renamed(element))?
            .remove(0);
        let created = communications(&state, vec![thread]).await?.remove(0);
        let location = Links::of(req, "Communication").url_of(&created.id);
        Ok(Created::Created(Json(created), location))
    }

    /// One thread, if the caller sent it or it waits on them (administrators see every thread).
    /// The recipient's first read is their read receipt, as in the messaging API; audited.
    #[oai(path = "/:id", method = "get", operation_id = "fhir_communication_read")]
    async fn read(
        &self,
        state: Data<&AppState>,
        auth: Auth,
        id: Path<String>,
    ) -> Result<Found<Communication>, FhirError> {
        let id: i64 = id.0.parse().map_err(|_| not_found())?;
        let thread = messages::read(&state, &auth.0, id).await?;
        Ok(Found::Ok(Json(communications(&state, vec![thread]).await?.remove(0))))
    }

    /// The threads the caller sent or received, newest first; follow `next` for older ones.
    /// Threads about patients need `patients|notes`; nothing is marked read; audited.
    #[oai(path = "/", method = "get", operation_id = "fhir_communication_search")]
    async fn search(
        &self,
        state: Data<&AppState>,
        auth: Auth,
        req: &Request,
        /// `Patient/{id}` or `{id}`.
        patient: Query<Option<String>>,
        #[oai(name = "_count")] count: Query<Option<u32>>,
        /// The `next` link's position; not set by hand.
        #[oai(name = "_cursor")]
        cursor: Query<Option<i64>>,
    ) -> Result<Found<Bundle<Communication>>, FhirError> {
        let links = Links::of(req, "Communication");
        let limit = super::offset_count(count.0)?;
        let pid = match patient.0 {
            Some(p) => match searched_patient(&state, Some(p)).await? {
                Some((pid, _)) => Some(pid.0),
                None => return Ok(Found::Ok(Json(links.whole(Vec::new())))),
            },
            None => None,
        };
        let query =
            ListQuery { mailbox: Mailbox::All, user: None, status: None, pid, before: cursor.0, limit };
        let threads = messages::list_threads(&state, &auth.0, query).await?;
        let next = (threads.len() == limit as usize)
            .then(|| threads.last().map(|t| links.next("_cursor", &t.pnote.summary.id.to_string())))
            .flatten();
        let entries = communications(&state, threads)
            .await?
            .into_iter()
            .map(|c| entry(&links, c.id.clone(), c))
            .collect();
        let mut bundle = links.whole(entries);
        bundle.total = None;
        bundle.link.extend(next);
        Ok(Found::Ok(Json(bundle)))
    }
}

fn not_found() -> FhirError {
    ApiError::new(poem::http::StatusCode::NOT_FOUND, "no message with this id").into()
}

/// An entry as OpenEMR's Messages screen shows it: when, who to whom, then the text.
fn shown(e: thread::Entry) -> Option<CommunicationPayload> {
    let text = text(&e.text)?;
    let content_string = match (e.at, e.author) {
        (Some(at), Some(author)) => {
            thread::entry_text(at, &author, e.recipient.as_deref().unwrap_or(""), &text)
        }
        _ => text,
    };
    Some(CommunicationPayload { content_string })
}

/// The messaging service's field names as the elements of the Communication a client sent.
fn element(field: &str) -> &str {
    match field {
        f if f.starts_with("to") => "recipient",
        "pid" => "subject",
        "title" => "category",
        "text" => "payload",
        other => other,
    }
}

/// Each thread as a Communication, its people referred to by their OpenEMR uuids.
async fn communications(state: &AppState, threads: Vec<Thread>) -> Result<Vec<Communication>, FhirError> {
    let mut names: Vec<String> = threads
        .iter()
        .flat_map(|t| [t.pnote.summary.sender().to_string(), t.pnote.summary.recipient().to_string()])
        .collect();
    names.sort();
    names.dedup();
    let uuids: HashMap<String, Option<Vec<u8>>> =
        messages::user_uuids(state, &names).await?.into_iter().collect();
    let person = |name: &str| Reference {
        reference: uuids
            .get(name)
            .and_then(|u| uuid_registry::to_string(u.as_deref()))
            .map(|id| format!("Practitioner/{id}")),
        display: text(name),
    };
    let mut out = Vec::new();
    for thread in threads {
        let s = &thread.pnote.summary;
        let subject = match s.pid() {
            0 => None,
            pid => Some(subject_of(state, Pid(pid)).await?),
        };
        let received =
            thread.receipts.iter().find(|r| r.username == s.recipient()).and_then(|r| instant(r.read_at));
        let payload =
            thread::parse(thread.pnote.body.as_deref().unwrap_or("")).into_iter().filter_map(shown).collect();
        out.push(Communication {
            resource_type: "Communication".into(),
            id: s.id.to_string(),
            meta: Meta {
                version_id: None,
                last_updated: s.update_date.and_then(instant),
                profile: Vec::new(),
            },
            status: if s.message_status == DONE { "completed" } else { "in-progress" }.into(),
            category: s
                .title
                .as_deref()
                .and_then(text)
                .map(|t| CodeableConcept { coding: Vec::new(), text: Some(t) })
                .into_iter()
                .collect(),
            subject,
            sent: s.date.and_then(instant),
            received,
            recipient: vec![person(s.recipient())],
            sender: Some(person(s.sender())),
            payload,
        });
    }
    Ok(out)
}
