//! HL7 v2 out of the chart: a filed transcription as the `MDM^T02` a document system imports
//! (OpenEMR exports none), read under the transcription's rights and audited as a read.

use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::{
    app::AppState,
    domain::{
        audit::AuditEntry,
        hl7::{self, Ack, Document, Mdm, Patient, Person},
        job::JobKind,
        patient::Pid,
        transcription::{TranscriptionId, TranscriptionStatus},
        user::{Caller, UserId},
    },
    service::{
        audit,
        jobs::{self, JobContext, JobFailure, JobOutcome, NewJob},
        transcriptions::{self, TranscriptionError, entry},
        wall_clock_now,
    },
    storage::{
        StorageError,
        mmt::transcriptions::{self as store, TranscriptionRow},
        openemr::{clinical_notes, encounters, patients, providers, users, uuid_registry},
    },
};

type Result<T> = std::result::Result<T, TranscriptionError>;

fn gone(what: &str) -> TranscriptionError {
    TranscriptionError::Conflict(format!("the filed note's {what} is no longer in OpenEMR"))
}

/// The filed note of the transcription as an `MDM^T02` message (ER7, carriage returns between
/// segments). Only a filed transcription has a document to send.
pub async fn transcription_mdm(state: &AppState, caller: &Caller, id: TranscriptionId) -> Result<String> {
    let row = transcriptions::readable(state, caller, id).await?;
    let mdm = mdm_of(state, &row, id, control_id(uuid::Uuid::new_v4().as_bytes())).await?;
    let comments =
        format!("mmt-sidecar exported transcription {id} (clinical note {}) as HL7 MDM^T02", mdm.note_id);
    audit::record(state, &entry(caller, "patient-record-select", row.pid, comments)).await?;
    Ok(mdm.message)
}

/// A message built for one filed note.
struct Built {
    control_id: String,
    message: String,
    note_id: i64,
}

/// MSH-10: 20 hex digits (the field's limit in 2.5.1), from the random end of a uuid.
fn control_id(unique: &[u8; 16]) -> String {
    hex::encode(&unique[6..])
}

async fn mdm_of(
    state: &AppState,
    row: &TranscriptionRow,
    id: TranscriptionId,
    control_id: String,
) -> Result<Built> {
    let (Some(note_id), TranscriptionStatus::Filed) = (row.filed_note_id, row.status()) else {
        return Err(TranscriptionError::Conflict(format!(
            "transcription {id} is {}; only a filed note is sent as a document",
            row.status()
        )));
    };
    let note = clinical_notes::by_id(&state.pool, note_id).await?.ok_or_else(|| gone("note"))?;
    let patient = patients::get(&state.pool, Pid(row.pid)).await?.ok_or_else(|| gone("patient"))?;
    let encounter = encounters::get(&state.pool, note.encounter).await?.ok_or_else(|| gone("encounter"))?;
    let author = users::by_id(&state.pool, UserId(row.author_id)).await?.ok_or_else(|| gone("author"))?;
    let npi = providers::get(&state.pool, row.author_id)
        .await?
        .and_then(|p| p.npi)
        .filter(|n| !n.trim().is_empty());
    let code = note.code.as_deref().unwrap_or_default();
    let number = uuid_registry::to_string(note.uuid.as_deref()).ok_or_else(|| gone("uuid"))?;
    let now = wall_clock_now();
    let message = hl7::mdm_t02(&Mdm {
        control_id: &control_id,
        sent_at: now,
        sending_facility: encounter.facility.as_deref().unwrap_or_default(),
        patient: Patient {
            chart: &patient.pubpid,
            family: &patient.lname,
            given: &patient.fname,
            middle: &patient.mname,
            birth_date: patient.dob,
            sex: &patient.sex,
        },
        visit: encounter.encounter,
        author: Person {
            id: npi.as_deref().unwrap_or(&author.username),
            family: author.lname.as_deref().unwrap_or_default(),
            given: author.fname.as_deref().unwrap_or_default(),
        },
        document: Document {
            type_code: code.strip_prefix("LOINC:").unwrap_or(code),
            type_text: note.codetext.as_deref().unwrap_or_default(),
            number: &number,
            filed_at: row.filed_at.unwrap_or(now),
            text: note.description.as_deref().unwrap_or_default(),
        },
    });
    Ok(Built { control_id, message, note_id })
}

/// Queues the filed note for the configured receiver, in the filing's transaction.
pub(crate) async fn queue_send(
    tx: &mut sqlx::MySqlConnection,
    state: &AppState,
    caller: &Caller,
    id: TranscriptionId,
    pid: i64,
) -> std::result::Result<(), StorageError> {
    if state.config.hl7.sends() {
        let job = NewJob::new(JobKind::Hl7Send, json!({ "transcription": id.to_string() }));
        jobs::enqueue(tx, job.for_patient(pid).queued_by(caller)).await?;
    }
    Ok(())
}

/// Job `hl7.send`: the note to the drop folder and/or over MLLP, done when the receiver accepts.
pub async fn send(ctx: JobContext) -> JobOutcome {
    let state = ctx.state();
    let id = ctx.payload()["transcription"]
        .as_str()
        .and_then(TranscriptionId::parse)
        .ok_or_else(|| JobFailure::Permanent("the payload names no transcription".into()))?;
    let row = store::get(&state.pool, &state.vault, &id.0)
        .await?
        .ok_or_else(|| JobFailure::Permanent(format!("transcription {id} no longer exists")))?;
    // The job's id names the message, so every attempt resends the same one and a receiver can
    // tell a retry from a new document.
    let mdm = mdm_of(state, &row, id, control_id(&ctx.id().0))
        .await
        .map_err(|e| JobFailure::Permanent(e.to_string()))?;
    let config = &state.config.hl7;
    if let Some(dir) = &config.drop_dir {
        drop_file(dir, &mdm).await.map_err(|e| JobFailure::Transient(format!("the drop folder: {e}")))?;
    }
    let ack = match &config.mllp_addr {
        Some(addr) => deliver(addr, &mdm).await?,
        None => "none",
    };
    let comments = format!(
        "mmt-sidecar sent transcription {id} (clinical note {}) as HL7 MDM^T02 {}",
        mdm.note_id, mdm.control_id
    );
    audit::record(state, &AuditEntry::system("patient-record-select", "Clinical Note", row.pid, comments))
        .await?;
    Ok(Some(json!({ "control_id": mdm.control_id, "ack": ack })))
}

/// Written under a temporary name and renamed, so a watcher never reads half a message.
async fn drop_file(dir: &std::path::Path, mdm: &Built) -> std::io::Result<()> {
    let part = dir.join(format!(".{}.part", mdm.control_id));
    tokio::fs::write(&part, &mdm.message).await?;
    tokio::fs::rename(&part, dir.join(format!("{}.hl7", mdm.control_id))).await
}

const MLLP_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);
/// An ACK is a few hundred bytes; a peer sending more is not answering.
const MAX_ACK_BYTES: usize = 64 * 1024;

/// One MLLP exchange: the message out, its ACK back.
async fn deliver(addr: &str, mdm: &Built) -> std::result::Result<&'static str, JobFailure> {
    let transient = |why: String| JobFailure::Transient(format!("MLLP receiver {addr}: {why}"));
    let exchange = async {
        let mut stream = tokio::net::TcpStream::connect(addr).await.map_err(|e| transient(e.to_string()))?;
        stream.write_all(&hl7::framed(&mdm.message)).await.map_err(|e| transient(e.to_string()))?;
        let mut block = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            let n = stream.read(&mut buf).await.map_err(|e| transient(e.to_string()))?;
            if n == 0 || block.len() > MAX_ACK_BYTES {
                return Err(transient("closed without an acknowledgement".into()));
            }
            block.extend_from_slice(&buf[..n]);
            if let Some(ack) = hl7::unframed(&block) {
                return Ok(String::from_utf8_lossy(ack).into_owned());
            }
        }
    };
    let raw = tokio::time::timeout(MLLP_TIMEOUT, exchange)
        .await
        .map_err(|_| transient("no ACK in 30 s".into()))??;
    match hl7::acknowledgement(&raw, &mdm.control_id).map_err(transient)? {
        Ack::Accepted => Ok("AA"),
        Ack::Error(why) => Err(transient(format!("AE {why}"))),
        Ack::Rejected(why) => {
            Err(JobFailure::Permanent(format!("MLLP receiver {addr} rejected it: AR {why}")))
        }
    }
}
