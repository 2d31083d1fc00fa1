//! Messages between clinicians in OpenEMR's `pnotes`, with read receipts OpenEMR lacks. A thread
//! is visible to its sender and its current recipient (OpenEMR's `checkPnotesNoteId`) and to
//! administrators (`admin|super`); anyone else is told it does not exist. Threads about a patient
//! also need `patients|notes`. Every read and write is audited under `Clinical Mail`.

use chrono::{NaiveDateTime, SubsecRound};
use serde_json::json;
use sqlx::MySqlConnection;

use crate::{
    app::AppState,
    domain::{
        acl::{AclLevel, Aco},
        audit::AuditEntry,
        event::{Event, Kind, NewEvent, Topic},
        messaging::{
            message::{self, Change, Lists, Mailbox, MessageInput, Reply},
            notification::{NotificationKind, Subject},
            thread,
        },
        patient::Pid,
        user::{Caller, UserId},
        validation::Issues,
        webhook::ChangeEvent,
    },
    service::{
        acl::AclError,
        audit, events,
        messaging::notifications,
        permission, wall_clock_now,
        webhooks::{self, Change as WebhookChange},
    },
    storage::{
        StorageError, advisory_lock,
        mmt::messaging::receipts::{self, Receipt},
        openemr::{
            audit_log,
            messaging::pnotes::{self, Filter, NewPnote, Pnote, Rewrite, Summary},
            patients,
        },
    },
};

const CATEGORY: &str = "Clinical Mail";

#[derive(Debug, thiserror::Error)]
pub enum MessageError {
    #[error("no message {0}")]
    NotFound(i64),
    #[error("no notification {0}")]
    NoNotification(u64),
    #[error("guests have no OpenEMR mailbox")]
    Guest,
    #[error("invalid message")]
    Invalid(Issues),
    #[error("{0}")]
    Conflict(String),
    #[error(transparent)]
    Acl(#[from] AclError),
    #[error(transparent)]
    Storage(#[from] StorageError),
}

impl From<Issues> for MessageError {
    fn from(issues: Issues) -> Self {
        Self::Invalid(issues)
    }
}

type Result<T> = std::result::Result<T, MessageError>;

/// A thread and its receipts.
pub struct Thread {
    pub pnote: Pnote,
    pub receipts: Vec<Receipt>,
}

pub struct Listing {
    pub rows: Vec<Summary>,
    pub receipts: Vec<Receipt>,
}

pub struct ListQuery {
    pub mailbox: Mailbox,
    /// Another user's mailbox (administrators only).
    pub user: Option<String>,
    pub status: Option<String>,
    pub pid: Option<i64>,
    pub before: Option<i64>,
    pub limit: u32,
}

fn entry(caller: &Caller, event: &str, pid: i64, comments: String) -> AuditEntry {
    AuditEntry::phi(caller, event, CATEGORY, (pid > 0).then_some(pid), comments)
}

/// PHP's `date()`: local wall-clock time to the second.
fn now() -> NaiveDateTime {
    wall_clock_now().trunc_subsecs(0)
}

fn signed_in(caller: &Caller) -> Result<()> {
    if caller.is_guest() { Err(MessageError::Guest) } else { Ok(()) }
}

async fn allows(state: &AppState, caller: &Caller, aco: Aco, level: AclLevel) -> Result<bool> {
    Ok(state.acl.permissions(&caller.username).await?.allows(aco, level))
}

async fn lists(state: &AppState) -> Result<(Vec<String>, Vec<String>)> {
    Ok((
        pnotes::list_options(&state.pool, "note_type").await?,
        pnotes::list_options(&state.pool, "message_status").await?,
    ))
}

/// Who may act on threads: OpenEMR's `checkPnotesNoteId`, and administrators.
struct Access<'a> {
    username: &'a str,
    admin: bool,
}

impl Access<'_> {
    fn sees(&self, thread: &Summary) -> bool {
        self.admin || thread.involves(self.username)
    }
}

/// The thread, if the caller may know it exists, with `patients|notes` at `level` checked for a
/// thread about a patient.
async fn visible<'a>(
    state: &AppState,
    caller: &'a Caller,
    id: i64,
    level: AclLevel,
) -> Result<(Pnote, Access<'a>)> {
    signed_in(caller)?;
    let pnote = pnotes::get(&state.pool, id).await?.ok_or(MessageError::NotFound(id))?;
    let access = Access {
        username: &caller.username,
        admin: allows(state, caller, Aco::ADMIN_SUPER, AclLevel::Write).await?,
    };
    if !access.sees(&pnote.summary) {
        return Err(MessageError::NotFound(id));
    }
    let pid = pnote.summary.pid();
    if pid > 0 {
        permission::require_on(state, caller, Aco::PATIENTS_NOTES, level, pid).await?;
    }
    Ok((pnote, access))
}

/// Locks the thread for a change, if the caller still sees it (a concurrent reply may have
/// reassigned it away from them).
async fn locked(tx: &mut MySqlConnection, access: &Access<'_>, id: i64) -> Result<Pnote> {
    pnotes::lock(tx, id).await?.filter(|p| access.sees(&p.summary)).ok_or(MessageError::NotFound(id))
}

/// Resolves recipients to active users, naming each unknown one under `field` (`to[i]` for lists).
async fn recipients(
    state: &AppState,
    names: &[String],
    field: impl Fn(usize) -> String,
) -> Result<Vec<(i64, String)>> {
    let found = pnotes::active_users(&state.pool, names).await?;
    let mut issues = Issues::default();
    let mut out = Vec::new();
    for (i, name) in names.iter().enumerate() {
        match found.iter().find(|(_, n)| n == name) {
            Some(user) => out.push(user.clone()),
            None => issues.add(&field(i), format!("{name} is not an active OpenEMR user")),
        }
    }
    Ok(issues.into_result(out)?)
}

/// Tells a sender that `actor` opened their message.
fn read_event(id: i64, actor: &str, to: i64) -> NewEvent {
    NewEvent {
        topic: Topic::parse("message").expect("a valid topic"),
        kind: Kind::parse("message.read").expect("a valid kind"),
        recipient: Some(UserId(to)),
        data: json!({ "id": id, "by": actor }),
    }
}

fn publish(state: &AppState, live: Vec<Event>, changes: Vec<Event>) {
    for event in live {
        events::publish_committed(state, event);
    }
    for change in changes {
        webhooks::committed(state, change);
    }
}

/// `addPnote` once per recipient, in one transaction.
pub async fn create(state: &AppState, caller: &Caller, input: MessageInput) -> Result<Vec<Thread>> {
    signed_in(caller)?;
    let (note_types, statuses) = lists(state).await?;
    let msg = input.validate(&Lists { note_types: &note_types, statuses: &statuses })?;
    if msg.pid > 0 {
        permission::require_on(state, caller, Aco::PATIENTS_NOTES, AclLevel::Addonly, msg.pid).await?;
        if patients::get(&state.pool, Pid(msg.pid)).await?.is_none() {
            let mut issues = Issues::default();
            issues.add("pid", format!("no patient with pid {}", msg.pid));
            return Err(issues.into());
        }
    }
    let to = recipients(state, &msg.to, |i| format!("to[{i}]")).await?;
    let authorized = pnotes::authorized(&state.pool, caller.user_id.0).await?;
    let at = now();
    let mut tx = state.pool.begin().await.map_err(StorageError::from_sqlx)?;
    let (mut ids, mut live, mut changes) = (Vec::new(), Vec::new(), Vec::new());
    for (user_id, username) in &to {
        let body = thread::entry_text(at, &caller.username, username, &msg.text);
        let row = NewPnote {
            date: at,
            body: &body,
            pid: msg.pid,
            user: &caller.username,
            groupname: &caller.auth_group,
            authorized,
            activity: message::activity(&msg.status),
            title: &msg.title,
            assigned_to: username,
            message_status: &msg.status,
            update_by: caller.user_id.0,
        };
        let id = pnotes::insert(&mut tx, &row).await?;
        let comments = format!("mmt-sidecar sent message {id} to {username}");
        audit_log::record(&mut tx, &entry(caller, "patient-record-insert", msg.pid, comments)).await?;
        live.push(
            notifications::notify(
                &mut tx,
                *user_id,
                NotificationKind::MessageReceived,
                &Subject::Message(id),
                &caller.username,
            )
            .await?,
        );
        let change = WebhookChange {
            event: ChangeEvent::MessageCreated,
            pid: (msg.pid > 0).then_some(msg.pid),
            data: json!({ "id": id }),
        };
        changes.push(webhooks::record(&mut tx, change).await?);
        ids.push(id);
    }
    tx.commit().await.map_err(StorageError::from_sqlx)?;
    publish(state, live, changes);
    let mut threads = Vec::new();
    for id in ids {
        threads.push(load(state, id).await?);
    }
    Ok(threads)
}

async fn load(state: &AppState, id: i64) -> Result<Thread> {
    let pnote = pnotes::get(&state.pool, id).await?.ok_or(MessageError::NotFound(id))?;
    let receipts = receipts::for_threads(&state.pool, &[id]).await?;
    Ok(Thread { pnote, receipts })
}

/// A mailbox, newest first. Threads about a patient are listed only with `patients|notes`.
pub async fn list(state: &AppState, caller: &Caller, q: ListQuery) -> Result<Listing> {
    signed_in(caller)?;
    let username = match q.user {
        Some(user) if user != caller.username => {
            permission::require(state, caller, Aco::ADMIN_SUPER, AclLevel::Write).await?;
            user
        }
        _ => caller.username.clone(),
    };
    if let Some(status) = &q.status {
        let (_, statuses) = lists(state).await?;
        let mut issues = Issues::default();
        Lists { note_types: &[], statuses: &statuses }.status(&mut issues, status);
        issues.into_result(())?;
    }
    if let Some(pid) = q.pid {
        permission::require_on(state, caller, Aco::PATIENTS_NOTES, AclLevel::View, pid).await?;
    }
    let filter = Filter {
        mailbox: q.mailbox,
        username: &username,
        status: q.status.as_deref(),
        pid: q.pid,
        patient_threads: allows(state, caller, Aco::PATIENTS_NOTES, AclLevel::View).await?,
        before: q.before,
        limit: q.limit,
    };
    let mut rows = pnotes::list(&state.pool, &filter).await?;
    let about = |r: &pnotes::Summary| r.pid.filter(|pid| *pid > 0);
    crate::service::patient_access::retain_reachable(state, caller, &mut rows, about).await?;
    let ids: Vec<i64> = rows.iter().map(|r| r.id).collect();
    let receipts = receipts::for_threads(&state.pool, &ids).await?;
    let listed = ids.iter().map(i64::to_string).collect::<Vec<_>>().join(",");
    let comments = format!("mmt-sidecar listed {} messages of {username}: ids [{listed}]", ids.len());
    audit::record(state, &entry(caller, "patient-record-select", q.pid.unwrap_or(0), comments)).await?;
    Ok(Listing { rows, receipts })
}

/// A mailbox page as whole threads (bodies and receipts), listed and audited as [`list`] does;
/// nothing is marked read.
pub async fn list_threads(state: &AppState, caller: &Caller, q: ListQuery) -> Result<Vec<Thread>> {
    let listing = list(state, caller, q).await?;
    let ids: Vec<i64> = listing.rows.iter().map(|r| r.id).collect();
    let mut bodies: std::collections::HashMap<i64, Option<String>> =
        pnotes::bodies(&state.pool, &ids).await?.into_iter().collect();
    Ok(listing
        .rows
        .into_iter()
        .map(|summary| {
            let receipts = listing.receipts.iter().filter(|r| r.pnote_id == summary.id).cloned().collect();
            let body = bodies.remove(&summary.id).flatten();
            Thread { pnote: Pnote { summary, body }, receipts }
        })
        .collect())
}

/// The OpenEMR users with these usernames, and their uuids.
pub async fn user_uuids(state: &AppState, usernames: &[String]) -> Result<Vec<(String, Option<Vec<u8>>)>> {
    Ok(pnotes::user_uuids(&state.pool, usernames).await?)
}

/// The active user with this uuid.
pub async fn username_of(state: &AppState, uuid: &[u8; 16]) -> Result<Option<String>> {
    Ok(pnotes::username_of_uuid(&state.pool, uuid).await?)
}

/// Reads a thread. The recipient's first open stores a receipt and turns `New` into `Read`.
pub async fn read(state: &AppState, caller: &Caller, id: i64) -> Result<Thread> {
    let (pnote, _) = visible(state, caller, id, AclLevel::View).await?;
    let pid = pnote.summary.pid();
    let mut tx = state.pool.begin().await.map_err(StorageError::from_sqlx)?;
    let mut live = Vec::new();
    if pnote.summary.recipient() == caller.username {
        live = receipt(&mut tx, state, caller, id).await?;
    }
    let comments = format!("mmt-sidecar read message {id}");
    audit_log::record(&mut tx, &entry(caller, "patient-record-select", pid, comments)).await?;
    tx.commit().await.map_err(StorageError::from_sqlx)?;
    publish(state, live, Vec::new());
    load(state, id).await
}

async fn receipt(tx: &mut MySqlConnection, state: &AppState, caller: &Caller, id: i64) -> Result<Vec<Event>> {
    let Some(locked) = pnotes::lock(tx, id).await?.filter(|p| p.summary.recipient() == caller.username)
    else {
        return Ok(Vec::new());
    };
    if !receipts::record(tx, id, caller.user_id.0, &caller.username, wall_clock_now()).await? {
        return Ok(Vec::new());
    }
    if locked.summary.message_status == message::NEW {
        pnotes::set_status(tx, id, message::READ, message::activity(message::READ), caller.user_id.0).await?;
        let comments = format!("mmt-sidecar marked message {id} Read on first open");
        audit_log::record(tx, &entry(caller, "patient-record-update", locked.summary.pid(), comments))
            .await?;
    }
    let sender = pnotes::active_users(&state.pool, &[locked.summary.sender().to_string()]).await?;
    let mut live = Vec::new();
    for (sender_id, _) in sender {
        live.push(events::write(tx, read_event(id, &caller.username, sender_id)).await?);
    }
    Ok(live)
}

/// Who a reply goes to by default: the latest other author, else the other party.
fn default_recipient(pnote: &Pnote, me: &str) -> String {
    let entries = thread::parse(pnote.body.as_deref().unwrap_or(""));
    entries
        .iter()
        .rev()
        .filter_map(|e| e.author.as_deref())
        // Usernames hold no spaces; "patient set by admin" is a note, not an author.
        .find(|a| *a != me && !a.contains(' '))
        .map(str::to_string)
        .unwrap_or_else(|| {
            let s = &pnote.summary;
            if s.recipient() == me { s.sender() } else { s.recipient() }.to_string()
        })
}

/// Appends an entry as `updatePnote` does and assigns the thread to its recipient, under a row
/// lock so concurrent replies are all kept.
async fn append(
    state: &AppState,
    caller: &Caller,
    access: &Access<'_>,
    id: i64,
    to: (i64, String),
    text: &str,
    status: Option<&str>,
) -> Result<Thread> {
    let (to_id, to_name) = to;
    let _turn =
        advisory_lock::turn(&state.pool, &format!("mmt-pnote-{id}"), advisory_lock::WRITE_WAIT_SECS).await?;
    let mut tx = state.pool.begin().await.map_err(StorageError::from_sqlx)?;
    let locked = locked(&mut tx, access, id).await?;
    let s = &locked.summary;
    let body =
        thread::appended(locked.body.as_deref().unwrap_or(""), now(), &caller.username, &to_name, text);
    let status = status.unwrap_or(&s.message_status);
    let rewrite = Rewrite {
        body: &body,
        activity: message::activity(status),
        title: s.title.as_deref().unwrap_or(""),
        assigned_to: &to_name,
        update_by: caller.user_id.0,
        message_status: status,
    };
    pnotes::rewrite(&mut tx, id, &rewrite).await?;
    receipts::clear(&mut tx, id, &to_name).await?;
    let comments = format!("mmt-sidecar appended to message {id}, now assigned to {to_name}");
    audit_log::record(&mut tx, &entry(caller, "patient-record-update", s.pid(), comments)).await?;
    let live = notifications::notify(
        &mut tx,
        to_id,
        NotificationKind::MessageReceived,
        &Subject::Message(id),
        &caller.username,
    )
    .await?;
    tx.commit().await.map_err(StorageError::from_sqlx)?;
    publish(state, vec![live], Vec::new());
    load(state, id).await
}

pub async fn reply(
    state: &AppState,
    caller: &Caller,
    id: i64,
    to: Option<String>,
    text: Option<String>,
    status: Option<String>,
) -> Result<Thread> {
    let (_, statuses) = lists(state).await?;
    let reply = Reply::validate(to, text, status, &Lists { note_types: &[], statuses: &statuses })?;
    let (pnote, access) = visible(state, caller, id, AclLevel::Addonly).await?;
    let to = reply.to.unwrap_or_else(|| default_recipient(&pnote, &caller.username));
    let to = recipients(state, std::slice::from_ref(&to), |_| "to".into()).await?.remove(0);
    append(state, caller, &access, id, to, &reply.text, Some(&reply.status)).await
}

/// A new status (`updatePnoteMessageStatus`) and/or a new recipient (`updatePnote` with no text).
pub async fn update(
    state: &AppState,
    caller: &Caller,
    id: i64,
    status: Option<String>,
    assigned_to: Option<String>,
) -> Result<Thread> {
    let (_, statuses) = lists(state).await?;
    let change = Change::validate(status, assigned_to, &Lists { note_types: &[], statuses: &statuses })?;
    let (pnote, access) = visible(state, caller, id, AclLevel::Addonly).await?;
    if let Some(name) = change.assigned_to {
        let to = recipients(state, &[name], |_| "assigned_to".into()).await?.remove(0);
        return append(state, caller, &access, id, to, "", change.status.as_deref()).await;
    }
    let pid = pnote.summary.pid();
    let status = change.status.unwrap_or(pnote.summary.message_status);
    let mut tx = state.pool.begin().await.map_err(StorageError::from_sqlx)?;
    locked(&mut tx, &access, id).await?;
    pnotes::set_status(&mut tx, id, &status, message::activity(&status), caller.user_id.0).await?;
    let comments = format!("mmt-sidecar set message {id} to {status}");
    audit_log::record(&mut tx, &entry(caller, "patient-record-update", pid, comments)).await?;
    tx.commit().await.map_err(StorageError::from_sqlx)?;
    load(state, id).await
}

/// `deletePnote`: only the recipient, or anyone once the thread is `Done`, and only `deleted=1`.
pub async fn delete(state: &AppState, caller: &Caller, id: i64) -> Result<()> {
    let (_, access) = visible(state, caller, id, AclLevel::Addonly).await?;
    let mut tx = state.pool.begin().await.map_err(StorageError::from_sqlx)?;
    let thread = locked(&mut tx, &access, id).await?;
    let s = &thread.summary;
    if !message::may_delete(&caller.username, s.recipient(), &s.message_status) {
        return Err(MessageError::Conflict(format!(
            "message {id} is assigned to someone else and not Done; OpenEMR lets only its recipient delete it until then"
        )));
    }
    pnotes::delete(&mut tx, id, caller.user_id.0).await?;
    let comments = format!("mmt-sidecar deleted message {id}");
    audit_log::record(&mut tx, &entry(caller, "patient-record-update", s.pid(), comments)).await?;
    tx.commit().await.map_err(StorageError::from_sqlx)?;
    Ok(())
}
