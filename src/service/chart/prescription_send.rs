//! E-mailing a prescription as OpenEMR's `email_prescription()` does (its subject, body and PDF
//! attachment), but as a job with retries, and recorded: OpenEMR keeps no trace of a send, the
//! sidecar keeps a row per request and writes the disclosure to OpenEMR's audit log.

use lettre::message::Mailbox;
use serde_json::json;

use crate::{
    app::AppState,
    domain::{
        acl::AclLevel,
        audit::AuditEntry,
        chart::prescription_send::{self as rules, Attempt, Recipient, SendState},
        job::{JobId, JobKind},
        patient::Pid,
        user::Caller,
        validation::Issues,
    },
    service::{
        audit,
        jobs::{self, JobContext, JobFailure, JobOutcome, NewJob},
        mail::Letter,
        wall_clock_now,
    },
    storage::{
        StorageError, advisory_lock,
        mmt::prescription_sends::{self as store, NewSend, Outcome, SendRow},
        openemr::{audit_log, chart::prescriptions as rx_store, globals, patients},
    },
};

use super::{
    ChartError, prescription_pdf,
    prescriptions::{self, AUDIT_CATEGORY, Prescription},
};

type Result<T, E = ChartError> = std::result::Result<T, E>;

const GLOBALS: [&str; 3] = ["rx_send_email", "openemr_name", "practice_return_email_path"];

/// The send as stored, and whether this request queued it (false: one already waiting was found).
pub struct Requested {
    pub send: SendRow,
    pub queued: bool,
}

/// Queues an e-mail of the prescription's PDF to `to`, or to the pharmacy it (or the patient)
/// names. A send of the same prescription to the same address that is still queued is answered
/// instead of queueing a second.
pub async fn request(state: &AppState, caller: &Caller, id: i64, to: Option<&str>) -> Result<Requested> {
    let rx = prescriptions::permitted(state, caller, id, AclLevel::View).await?;
    let settings = globals::values(&state.pool, &GLOBALS).await?;
    if !rules::sending_enabled(settings.get("rx_send_email").map(String::as_str)) {
        return Err(ChartError::Disabled(
            "e-mailing prescriptions is turned off in OpenEMR (rx_send_email)".into(),
        ));
    }
    let Some(mailer) = &state.mail else {
        return Err(ChartError::Unavailable("e-mail is not configured on this server (SMTP_URL)".into()));
    };
    if mailer.from().is_none() && sender(settings.get("practice_return_email_path")).is_none() {
        return Err(ChartError::Unavailable(
            "no sender address: set MMT_MAIL_FROM or OpenEMR's practice_return_email_path".into(),
        ));
    }
    let recipient = recipient(state, id, to).await?;
    // Requests for one prescription take turns, so racing duplicates find the first one's send.
    let turn = advisory_lock::Held::take(&state.pool, format!("mmt-rx-send-{id}"), 10).await?;
    let requested = queue(state, caller, &rx, &recipient).await;
    turn.release().await?;
    requested
}

async fn queue(
    state: &AppState,
    caller: &Caller,
    rx: &Prescription,
    recipient: &Recipient,
) -> Result<Requested> {
    let (id, pid) = (rx.row.id, rx.row.patient_id.unwrap_or_default());
    let mut tx = state.pool.begin().await?;
    if let Some(send) = store::queued_to(&mut tx, id, recipient.as_str()).await? {
        return Ok(Requested { send, queued: false });
    }
    let job = NewJob::new(JobKind::PrescriptionSend, json!({ "prescription_id": id }))
        .queued_by(caller)
        .for_patient(pid);
    let job_id = jobs::enqueue(&mut tx, job).await?;
    let new = NewSend {
        prescription_id: id,
        pid,
        recipient: recipient.as_str(),
        requested_by: caller.user_id.0,
        requested_name: &caller.username,
        requested_group: &caller.auth_group,
        job_id: job_id.0,
        requested_at: wall_clock_now(),
    };
    let send_id = store::insert(&mut tx, &new).await?;
    let comments =
        format!("mmt-sidecar queued e-mail {send_id} of prescription {id} to {}", recipient.as_str());
    audit_log::record(&mut tx, &AuditEntry::phi(caller, "order-select", AUDIT_CATEGORY, Some(pid), comments))
        .await?;
    tx.commit().await?;
    jobs::wake(state);
    let send = store::get(&state.pool, send_id)
        .await?
        .ok_or_else(|| ChartError::NotFound(format!("no send {send_id}")))?;
    Ok(Requested { send, queued: true })
}

/// Every e-mail of the prescription, newest first.
pub async fn list(state: &AppState, caller: &Caller, id: i64) -> Result<Vec<SendRow>> {
    let rx = prescriptions::permitted(state, caller, id, AclLevel::View).await?;
    let sends = store::for_prescription(&state.pool, id).await?;
    let comments = format!("mmt-sidecar read the e-mails of prescription {id}");
    audit::record(
        state,
        &AuditEntry::phi(caller, "order-select", AUDIT_CATEGORY, rx.row.patient_id, comments),
    )
    .await?;
    Ok(sends)
}

fn sender(global: Option<&String>) -> Option<Mailbox> {
    global.and_then(|v| v.trim().parse().ok())
}

async fn recipient(state: &AppState, id: i64, to: Option<&str>) -> Result<Recipient> {
    let given = match to {
        Some(to) => Some(to.to_string()),
        None => rx_store::pharmacy_email(&state.pool, id).await?,
    };
    let mut issues = Issues::default();
    match given.as_deref().map(Recipient::parse) {
        Some(Ok(recipient)) => return Ok(recipient),
        Some(Err(why)) if to.is_some() => issues.add("to", why),
        Some(Err(_)) => issues.add("to", "the pharmacy's e-mail address on file is not usable; give `to`"),
        None => issues
            .add("to", "the prescription and the patient name no pharmacy with an e-mail address; give `to`"),
    }
    Err(issues.into())
}

/// The `prescription.send` job: renders the PDF and hands the e-mail to the SMTP server.
pub async fn job(ctx: JobContext) -> JobOutcome {
    let state = ctx.state();
    let job_id = ctx.id();
    let send = store::by_job(&state.pool, &job_id.0)
        .await?
        .ok_or_else(|| JobFailure::Permanent(format!("no prescription e-mail for job {job_id}")))?;
    if SendState::parse(&send.state) != Some(SendState::Queued) {
        return Ok(Some(json!({ "send_id": send.id, "state": send.state })));
    }
    let last =
        !crate::domain::job::has_attempts_left(ctx.attempt(), JobKind::PrescriptionSend.max_attempts());
    match deliver(state, &send).await {
        Ok(message_id) => {
            settle(state, &send, Attempt::Delivered, Some(&message_id), None).await?;
            Ok(Some(json!({ "send_id": send.id, "state": SendState::Sent.as_str() })))
        }
        Err(failure) => {
            let permanent = matches!(failure, JobFailure::Permanent(_));
            let error = failure.to_string();
            settle(state, &send, Attempt::Refused { last: last || permanent }, None, Some(&error)).await?;
            Err(failure)
        }
    }
}

async fn deliver(state: &AppState, send: &SendRow) -> Result<String, JobFailure> {
    let mailer = state
        .mail
        .as_ref()
        .ok_or_else(|| JobFailure::Transient("e-mail is not configured on this replica (SMTP_URL)".into()))?;
    let settings = globals::values(&state.pool, &GLOBALS).await?;
    let from = mailer
        .from()
        .cloned()
        .or_else(|| sender(settings.get("practice_return_email_path")))
        .ok_or_else(|| JobFailure::Permanent("no sender address".into()))?;
    let rx = prescriptions::load(state, send.prescription_id.into()).await.map_err(job_failure)?;
    let pdf = prescription_pdf::document(state, std::slice::from_ref(&rx)).await.map_err(job_failure)?;
    let patient = patients::get(&state.pool, Pid(send.pid)).await?;
    let patient_name = patient.map(|p| format!("{} {}", p.fname, p.lname)).unwrap_or_default();
    let practice = rules::practice_name(settings.get("openemr_name").map(String::as_str));
    let letter = Letter {
        from,
        to: &send.recipient,
        subject: rules::subject(practice),
        body: rules::body(practice, patient_name.trim()),
        file_name: rules::attachment_name(wall_clock_now()),
        content_type: "application/pdf",
        file: pdf,
    };
    mailer.send(letter).await.map_err(|e| {
        let text = format!("prescription e-mail {}: {e}", send.id);
        if e.is_permanent() { JobFailure::Permanent(text) } else { JobFailure::Transient(text) }
    })
}

fn job_failure(e: ChartError) -> JobFailure {
    match e {
        ChartError::Storage(s) => JobFailure::Transient(s.to_string()),
        other => JobFailure::Permanent(other.to_string()),
    }
}

/// Records the attempt and, once the send is settled, the disclosure (or its failure) in
/// OpenEMR's log under the user who asked for it.
async fn settle(
    state: &AppState,
    send: &SendRow,
    attempt: Attempt,
    message_id: Option<&str>,
    error: Option<&str>,
) -> Result<(), StorageError> {
    let after = SendState::Queued.after(attempt);
    let outcome = Outcome {
        state: after.as_str(),
        message_id,
        error,
        sent_at: (after == SendState::Sent).then(wall_clock_now),
    };
    if !store::record_attempt(&state.pool, send.id, &outcome).await? || after == SendState::Queued {
        return Ok(());
    }
    let verb = if after == SendState::Sent { "e-mailed" } else { "could not e-mail" };
    let comments = format!(
        "mmt-sidecar {verb} prescription {} as PDF to {} (send {})",
        send.prescription_id, send.recipient, send.id
    );
    let entry = AuditEntry {
        user: send.requested_name.clone(),
        groupname: send.requested_group.clone(),
        success: after == SendState::Sent,
        ..AuditEntry::system("order-select", AUDIT_CATEGORY, send.pid, comments)
    };
    audit::record(state, &entry).await
}

/// The job that carries the send, for clients that follow it on the event channel.
pub fn job_id(send: &SendRow) -> Option<JobId> {
    JobId::from_bytes(&send.job_id)
}
