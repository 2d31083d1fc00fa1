//! Live chat between clinicians in rooms about a patient or an appointment. A room exists, for
//! anyone but its members (and administrators managing it), only as a refusal that does not say
//! whether it exists. Rooms about a patient also need `patients|notes`, checked at every read and
//! post, and for every member a room's events are delivered to. Everything about a patient room
//! is audited in OpenEMR's `log` under `Clinical Mail`.

pub mod conversation;
pub mod rooms;

use chrono::{NaiveDateTime, SubsecRound, Utc};
use sqlx::MySqlConnection;

use crate::{
    app::AppState,
    domain::{
        acl::{AclLevel, Aco},
        audit::AuditEntry,
        chat::{RoomId, TextError},
        event::{Event, NewEvent},
        user::{Caller, UserId},
        validation::Issues,
    },
    service::{acl::AclError, events, messaging::messages::MessageError, permission},
    storage::{
        StorageError,
        mmt::chat::rooms::{self as store, MemberRow, RoomRow},
    },
};

const CATEGORY: &str = "Clinical Mail";

#[derive(Debug, thiserror::Error)]
pub enum ChatError {
    #[error("chat room {0} does not exist or you are not a member of it")]
    NotMember(u64),
    #[error("no chat room {0}")]
    NotFound(u64),
    #[error("{0} is not a member of chat room {1}")]
    NoMember(String, u64),
    #[error("{0}")]
    Forbidden(String),
    #[error("guests cannot chat")]
    Guest,
    #[error("invalid chat request")]
    Invalid(Issues),
    #[error("a chat message holds at most {} characters", crate::domain::chat::TEXT_CHARS)]
    TooLarge,
    #[error("too many chat messages; wait {0} s")]
    RateLimited(u64),
    #[error("{0}")]
    Conflict(String),
    #[error(transparent)]
    Acl(#[from] AclError),
    #[error(transparent)]
    Message(#[from] MessageError),
    #[error(transparent)]
    Storage(#[from] StorageError),
}

impl From<Issues> for ChatError {
    fn from(issues: Issues) -> Self {
        Self::Invalid(issues)
    }
}

impl From<TextError> for ChatError {
    fn from(err: TextError) -> Self {
        match err {
            TextError::TooLarge => Self::TooLarge,
            TextError::Invalid(issues) => Self::Invalid(issues),
        }
    }
}

type Result<T> = std::result::Result<T, ChatError>;

/// Chat times are UTC, to the millisecond `DATETIME(3)` keeps.
fn now() -> NaiveDateTime {
    Utc::now().trunc_subsecs(3).naive_utc()
}

fn signed_in(caller: &Caller) -> Result<()> {
    if caller.is_guest() { Err(ChatError::Guest) } else { Ok(()) }
}

fn entry(caller: &Caller, room: &RoomRow, event: &str, comments: String) -> AuditEntry {
    AuditEntry::phi(caller, event, CATEGORY, room.patient(), comments)
}

async fn is_admin(state: &AppState, caller: &Caller) -> Result<bool> {
    Ok(state.acl.permissions(&caller.username).await?.allows(Aco::ADMIN_SUPER, AclLevel::Write))
}

/// `patients|notes` at `level` for a room about a patient.
async fn require_patient(state: &AppState, caller: &Caller, room: &RoomRow, level: AclLevel) -> Result<()> {
    if let Some(pid) = room.patient() {
        permission::require_on(state, caller, Aco::PATIENTS_NOTES, level, pid).await?;
    }
    Ok(())
}

/// A room and its members, as one of them (or an administrator) sees it.
pub struct Room {
    pub row: RoomRow,
    pub members: Vec<MemberRow>,
}

impl Room {
    pub fn id(&self) -> RoomId {
        RoomId(self.row.id)
    }

    pub fn member(&self, user: UserId) -> Option<&MemberRow> {
        self.members.iter().find(|m| m.user_id == user.0)
    }
}

async fn load(
    conn: &mut MySqlConnection,
    vault: &crate::storage::vault::Vault,
    id: u64,
) -> Result<Option<Room>> {
    let Some(row) = store::get(conn, vault, id).await? else { return Ok(None) };
    let members = store::members(conn, id).await?;
    Ok(Some(Room { row, members }))
}

/// The room, if the caller is a member, with `patients|notes` at `level` for a patient room.
/// Anyone else is refused alike whether the room exists or not.
async fn as_member(state: &AppState, caller: &Caller, id: u64, level: AclLevel) -> Result<Room> {
    signed_in(caller)?;
    let mut conn = state.pool.acquire().await.map_err(StorageError::from_sqlx)?;
    let room = load(&mut conn, &state.vault, id).await?.filter(|r| r.member(caller.user_id).is_some());
    let room = room.ok_or(ChatError::NotMember(id))?;
    require_patient(state, caller, &room.row, level).await?;
    Ok(room)
}

/// As [`as_member`], inside a transaction holding the room's lock.
async fn locked(
    tx: &mut MySqlConnection,
    state: &AppState,
    caller: &Caller,
    id: u64,
    level: AclLevel,
) -> Result<Room> {
    signed_in(caller)?;
    if !store::lock(tx, id).await? {
        return Err(ChatError::NotMember(id));
    }
    let room = load(tx, &state.vault, id).await?.filter(|r| r.member(caller.user_id).is_some());
    let room = room.ok_or(ChatError::NotMember(id))?;
    require_patient(state, caller, &room.row, level).await?;
    Ok(room)
}

/// Writes one copy of an event for each member who may receive it: `patients|notes` for a
/// patient room, checked now, so a member who lost it stops receiving the room's events. Publish
/// the returned events once the transaction commits.
async fn deliver(
    tx: &mut MySqlConnection,
    state: &AppState,
    room: &Room,
    except: Option<UserId>,
    event: impl Fn(UserId) -> NewEvent,
) -> Result<Vec<Event>> {
    let mut written = Vec::new();
    for member in &room.members {
        let user = UserId(member.user_id);
        if Some(user) == except || !may_see(state, room, member).await? {
            continue;
        }
        written.push(events::write(tx, event(user)).await?);
    }
    Ok(written)
}

async fn may_see(state: &AppState, room: &Room, member: &MemberRow) -> Result<bool> {
    Ok(room.row.patient().is_none()
        || state.acl.permissions(&member.username).await?.allows(Aco::PATIENTS_NOTES, AclLevel::View))
}

fn publish(state: &AppState, written: Vec<Event>) {
    for event in written {
        events::publish_committed(state, event);
    }
}
