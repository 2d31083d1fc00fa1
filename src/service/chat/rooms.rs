//! Opening rooms, listing the caller's, and managing members: a member or an administrator may
//! add; a member may leave, and the room's creator or an administrator may remove anyone.

use sqlx::MySqlConnection;

use super::{
    ChatError, Result, Room, as_member, deliver, entry, is_admin, load, now, publish, require_patient,
    signed_in,
};
use crate::{
    app::AppState,
    domain::{
        acl::{AclLevel, Aco},
        audit::AuditEntry,
        chat::{self, RoomInput, Subject},
        event::{Event, TopicFilter},
        patient::Pid,
        user::Caller,
        validation::Issues,
    },
    service::{audit, permission},
    storage::{
        StorageError,
        mmt::chat::rooms::{self as store, MyRoomRow, NewRoomRow},
        openemr::{audit_log, messaging::pnotes, patients, scheduling::events as appointments},
    },
};

/// The patient and appointment a new room is about, after the caller's permission to see them.
async fn about(state: &AppState, caller: &Caller, subject: Subject) -> Result<(Option<i64>, Option<u32>)> {
    let mut issues = Issues::default();
    let (pid, eid) = match subject {
        Subject::Patient(pid) => {
            if patients::get(&state.pool, pid).await?.is_none() {
                issues.add("pid", format!("no patient with pid {pid}"));
            }
            (Some(pid.0), None)
        }
        Subject::Appointment(eid) => {
            permission::require(state, caller, Aco::PATIENTS_APPT, AclLevel::View).await?;
            let mut conn = state.pool.acquire().await.map_err(StorageError::from_sqlx)?;
            let found = appointments::get(&mut conn, eid).await?;
            if found.is_none() {
                issues.add("appointment_id", format!("no appointment {eid}"));
            }
            (found.and_then(|a| a.patient()).map(|Pid(pid)| pid), Some(eid))
        }
    };
    if let Some(pid) = pid {
        permission::require_on(state, caller, Aco::PATIENTS_NOTES, AclLevel::Addonly, pid).await?;
    }
    issues.into_result((pid, eid)).map_err(ChatError::from)
}

/// Resolves usernames to active users, naming under `field[i]` each unknown one and, for a
/// patient room, each who lacks `patients|notes`.
async fn users(
    state: &AppState,
    field: &str,
    names: &[String],
    pid: Option<i64>,
) -> Result<Vec<(i64, String)>> {
    let found = pnotes::active_users(&state.pool, names).await?;
    let mut issues = Issues::default();
    let mut out = Vec::new();
    for (i, name) in names.iter().enumerate() {
        let field = format!("{field}[{i}]");
        match found.iter().find(|(_, n)| n == name) {
            None => issues.add(&field, format!("{name} is not an active OpenEMR user")),
            Some(_)
                if pid.is_some()
                    && !state.acl.permissions(name).await?.allows(Aco::PATIENTS_NOTES, AclLevel::View) =>
            {
                issues.add(&field, format!("{name} may not see this patient's notes (patients|notes)"))
            }
            Some(user) => out.push(user.clone()),
        }
    }
    issues.into_result(out).map_err(ChatError::from)
}

/// Adds `users` and tells every member (the new ones too) about each.
async fn add(
    tx: &mut MySqlConnection,
    state: &AppState,
    caller: &Caller,
    room_id: u64,
    users: &[(i64, String)],
) -> Result<(Room, Vec<Event>)> {
    let at = now();
    let mut added = Vec::new();
    for (user_id, username) in users {
        if store::add_member(tx, room_id, (*user_id, username), caller.user_id.0, at).await? {
            added.push(username.clone());
        }
    }
    let room = load(tx, &state.vault, room_id).await?.ok_or(ChatError::NotFound(room_id))?;
    let mut written = Vec::new();
    for name in &added {
        written.extend(
            deliver(tx, state, &room, None, |to| chat::member_event(room.id(), name, true, to)).await?,
        );
    }
    if !added.is_empty() {
        let comments = format!("mmt-sidecar added {} members to chat room {room_id}", added.len());
        audit_log::record(tx, &entry(caller, &room.row, "patient-record-update", comments)).await?;
    }
    Ok((room, written))
}

/// Opens a room with the caller and `members` in it.
pub async fn create(state: &AppState, caller: &Caller, input: RoomInput) -> Result<Room> {
    signed_in(caller)?;
    let new = input.validate()?;
    let (pid, appointment_id) = about(state, caller, new.subject).await?;
    let others: Vec<String> = new.members.into_iter().filter(|n| *n != caller.username).collect();
    let mut members = vec![(caller.user_id.0, caller.username.clone())];
    members.extend(users(state, "members", &others, pid).await?);
    let mut tx = state.pool.begin().await.map_err(StorageError::from_sqlx)?;
    let row = NewRoomRow { pid, appointment_id, title: &new.title, created_by: caller.user_id.0, at: now() };
    let id = store::insert(&mut tx, &state.vault, &row).await?;
    let (room, written) = add(&mut tx, state, caller, id, &members).await?;
    let comments = format!("mmt-sidecar opened chat room {id}");
    audit_log::record(&mut tx, &entry(caller, &room.row, "patient-record-insert", comments)).await?;
    tx.commit().await.map_err(StorageError::from_sqlx)?;
    publish(state, written);
    Ok(room)
}

/// The caller's rooms with their unread counts, newest first; rooms about a patient only with
/// `patients|notes` and only while the caller reaches the patient.
/// A page of the caller's rooms, and the id to continue below when more may follow (rooms the
/// caller may no longer see are left out of a page, so its length does not tell).
pub struct RoomPage {
    pub rows: Vec<MyRoomRow>,
    pub more_before: Option<u64>,
}

pub async fn mine(state: &AppState, caller: &Caller, before: Option<u64>, limit: u32) -> Result<RoomPage> {
    signed_in(caller)?;
    let mut rows = store::of_member(&state.pool, &state.vault, caller.user_id.0, before, limit).await?;
    let more_before = rows.last().map(|r| r.room.id).filter(|_| rows.len() == limit as usize);
    let notes = state.acl.permissions(&caller.username).await?.allows(Aco::PATIENTS_NOTES, AclLevel::View);
    rows.retain(|r| notes || r.room.patient().is_none());
    let about = |r: &MyRoomRow| r.room.patient();
    crate::service::patient_access::retain_reachable(state, caller, &mut rows, about).await?;
    let ids: Vec<String> = rows.iter().map(|r| r.room.id.to_string()).collect();
    let comments = format!("mmt-sidecar listed {} chat rooms: ids [{}]", ids.len(), ids.join(","));
    let audit = AuditEntry::phi(caller, "patient-record-select", super::CATEGORY, None, comments);
    audit::record(state, &audit).await?;
    Ok(RoomPage { rows, more_before })
}

/// Subscribing to a room by name (`chat:<id>`) is joining it: only its members may, with
/// `patients|notes` for a patient room. Family-wide `chat` subscriptions need no check: events
/// are addressed to members only.
pub async fn join(state: &AppState, caller: &Caller, topics: &TopicFilter) -> Result<()> {
    // Room ids are numbers; another name can match no room's events.
    for id in topics.instances("chat").filter_map(|i| i.parse().ok()) {
        as_member(state, caller, id, AclLevel::View).await?;
    }
    Ok(())
}

/// A room and its members, for a member or an administrator.
pub async fn get(state: &AppState, caller: &Caller, id: u64) -> Result<Room> {
    let room = match as_member(state, caller, id, AclLevel::View).await {
        Err(ChatError::NotMember(_)) if is_admin(state, caller).await? => {
            let mut conn = state.pool.acquire().await.map_err(StorageError::from_sqlx)?;
            load(&mut conn, &state.vault, id).await?.ok_or(ChatError::NotFound(id))?
        }
        other => other?,
    };
    let comments = format!("mmt-sidecar read chat room {id}");
    audit::record(state, &entry(caller, &room.row, "patient-record-select", comments)).await?;
    Ok(room)
}

/// The locked room, for a member with `patients|notes` (addonly) or an administrator.
async fn managed(tx: &mut MySqlConnection, state: &AppState, caller: &Caller, id: u64) -> Result<Room> {
    signed_in(caller)?;
    let room = match store::lock(tx, id).await? {
        true => load(tx, &state.vault, id).await?,
        false => None,
    };
    let Some(room) = room else { return Err(ChatError::NotMember(id)) };
    if room.member(caller.user_id).is_some() {
        require_patient(state, caller, &room.row, AclLevel::Addonly).await?;
    } else if !is_admin(state, caller).await? {
        return Err(ChatError::NotMember(id));
    }
    Ok(room)
}

pub async fn add_members(state: &AppState, caller: &Caller, id: u64, names: &[String]) -> Result<Room> {
    let mut issues = Issues::default();
    let names = chat::usernames(&mut issues, "users", names);
    if names.is_empty() {
        issues.add("users", "name at least one user to add");
    }
    issues.into_result(())?;
    let mut tx = state.pool.begin().await.map_err(StorageError::from_sqlx)?;
    let room = managed(&mut tx, state, caller, id).await?;
    if room.members.len() + names.len() > chat::MAX_MEMBERS {
        let mut issues = Issues::default();
        issues.add("users", format!("a room holds at most {} members", chat::MAX_MEMBERS));
        return Err(issues.into());
    }
    let users = users(state, "users", &names, room.row.patient()).await?;
    let (room, written) = add(&mut tx, state, caller, id, &users).await?;
    tx.commit().await.map_err(StorageError::from_sqlx)?;
    publish(state, written);
    Ok(room)
}

/// Removes a member; every member, the removed one too, is told.
pub async fn remove_member(state: &AppState, caller: &Caller, id: u64, username: &str) -> Result<()> {
    let mut tx = state.pool.begin().await.map_err(StorageError::from_sqlx)?;
    let room = managed(&mut tx, state, caller, id).await?;
    let leaving = username == caller.username;
    if !leaving && room.row.created_by != caller.user_id.0 && !is_admin(state, caller).await? {
        return Err(ChatError::Forbidden(format!(
            "only the room's creator or an administrator may remove others from chat room {id}"
        )));
    }
    let member = room.members.iter().find(|m| m.username == username);
    let member = member.ok_or_else(|| ChatError::NoMember(username.into(), id))?;
    let written =
        deliver(&mut tx, state, &room, None, |to| chat::member_event(room.id(), username, false, to)).await?;
    store::remove_member(&mut tx, id, member.user_id).await?;
    let comments = format!("mmt-sidecar removed user {} from chat room {id}", member.user_id);
    audit_log::record(&mut tx, &entry(caller, &room.row, "patient-record-update", comments)).await?;
    tx.commit().await.map_err(StorageError::from_sqlx)?;
    publish(state, written);
    Ok(())
}
