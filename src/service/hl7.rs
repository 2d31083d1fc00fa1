//! HL7 v2 out of the chart: a filed transcription as the `MDM^T02` a document system imports
//! (OpenEMR exports none), read under the transcription's rights and audited as a read.

use crate::{
    app::AppState,
    domain::{
        hl7::{self, Document, Mdm, Patient, Person},
        patient::Pid,
        transcription::{TranscriptionId, TranscriptionStatus},
        user::{Caller, UserId},
    },
    service::{
        audit,
        transcriptions::{self, TranscriptionError, entry},
        wall_clock_now,
    },
    storage::openemr::{clinical_notes, encounters, patients, providers, users, uuid_registry},
};

type Result<T> = std::result::Result<T, TranscriptionError>;

fn gone(what: &str) -> TranscriptionError {
    TranscriptionError::Conflict(format!("the filed note's {what} is no longer in OpenEMR"))
}

/// The filed note of the transcription as an `MDM^T02` message (ER7, carriage returns between
/// segments). Only a filed transcription has a document to send.
pub async fn transcription_mdm(state: &AppState, caller: &Caller, id: TranscriptionId) -> Result<String> {
    let row = transcriptions::readable(state, caller, id).await?;
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
    let control_id = uuid::Uuid::new_v4().simple().to_string();
    let message = hl7::mdm_t02(&Mdm {
        control_id: &control_id[..20],
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
    let comments =
        format!("mmt-sidecar exported transcription {id} (clinical note {note_id}) as HL7 MDM^T02");
    audit::record(state, &entry(caller, "patient-record-select", row.pid, comments)).await?;
    Ok(message)
}
