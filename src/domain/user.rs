//! Who is calling: an OpenEMR user, identified the way OpenEMR identifies them.

use std::fmt;

/// OpenEMR's `users.id`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct UserId(pub i64);

impl fmt::Display for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// How the caller proved who they are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignInMethod {
    Password,
    OpenEmrSession,
    Guest,
}

impl SignInMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Password => "password",
            Self::OpenEmrSession => "bridge",
            Self::Guest => "guest",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [Self::Password, Self::OpenEmrSession, Self::Guest].into_iter().find(|m| m.as_str() == s)
    }
}

/// An authenticated caller. Guests have no OpenEMR account and may read nothing that holds PHI.
#[derive(Debug, Clone)]
pub struct Caller {
    pub user_id: UserId,
    pub username: String,
    pub first_name: String,
    pub last_name: String,
    /// OpenEMR's auth group (`groups.name`), written as `groupname` in audit rows.
    pub auth_group: String,
    pub facility_id: i64,
    pub facility: Option<String>,
    /// OpenEMR lists the user as a provider (`authorized`, active, with a username).
    pub provider: bool,
    pub method: SignInMethod,
    /// The token family this request's access token belongs to; `None` for session-cookie requests.
    pub token_family: Option<[u8; 16]>,
    /// SHA-256 of the OpenEMR password hash this sign-in was made with; `None` for guests. A token
    /// whose digest no longer matches `users_secure.password` is dead.
    pub credential: Option<[u8; 32]>,
}

impl Caller {
    pub fn is_guest(&self) -> bool {
        self.method == SignInMethod::Guest
    }

    pub fn display_name(&self) -> String {
        format!("{} {}", self.first_name, self.last_name).trim().to_string()
    }
}
