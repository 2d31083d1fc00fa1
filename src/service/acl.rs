//! Permission checks against OpenEMR's ACL, cached briefly per user: every request checks, and
//! an edit in OpenEMR's ACL admin must still take effect within seconds.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, MutexGuard},
    time::{Duration, Instant},
};

use sqlx::MySqlPool;

use crate::{
    domain::acl::{AclLevel, Aco, Permissions},
    storage::{StorageError, openemr},
};

const TTL: Duration = Duration::from_secs(30);

#[derive(Debug, thiserror::Error)]
pub enum AclError {
    #[error("requires OpenEMR permission {aco} ({level})")]
    Denied { aco: Aco, level: AclLevel },
    /// The ACL allows the operation but the assigned-patient policy keeps this patient out of reach.
    #[error("{}", crate::domain::patient_access::denial(*pid))]
    OutOfPanel { pid: i64 },
    #[error(transparent)]
    Storage(#[from] StorageError),
}

type Cache = HashMap<String, (Instant, Arc<Permissions>)>;

pub struct Acl {
    pool: MySqlPool,
    cache: Mutex<Cache>,
}

impl Acl {
    pub fn new(pool: MySqlPool) -> Self {
        Self { pool, cache: Mutex::new(HashMap::new()) }
    }

    pub async fn permissions(&self, username: &str) -> Result<Arc<Permissions>, StorageError> {
        if let Some((at, permissions)) = self.lock().get(username)
            && is_fresh(*at, Instant::now())
        {
            return Ok(permissions.clone());
        }
        let groups = openemr::acl::groups(&self.pool, username).await?;
        let grants = openemr::acl::grants(&self.pool, username).await?;
        let permissions = Arc::new(Permissions::new(groups, grants));
        let now = Instant::now();
        let mut cache = self.lock();
        // Pruning on insert keeps the map no larger than the users seen within one TTL.
        cache.retain(|_, (at, _)| is_fresh(*at, now));
        cache.insert(username.to_string(), (now, permissions.clone()));
        Ok(permissions)
    }

    /// Drops the user's cached permissions after this replica changed their roles.
    pub fn forget(&self, username: &str) {
        self.lock().remove(username);
    }

    pub async fn require(&self, username: &str, aco: Aco, level: AclLevel) -> Result<(), AclError> {
        if self.permissions(username).await?.allows(aco, level) {
            Ok(())
        } else {
            Err(AclError::Denied { aco, level })
        }
    }

    fn lock(&self) -> MutexGuard<'_, Cache> {
        // A panic while holding the lock cannot leave the map inconsistent, so poisoning is ignored.
        self.cache.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

fn is_fresh(fetched_at: Instant, now: Instant) -> bool {
    now.saturating_duration_since(fetched_at) < TTL
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cached_permissions_expire_after_thirty_seconds() {
        let at = Instant::now();
        assert!(is_fresh(at, at));
        assert!(is_fresh(at, at + Duration::from_secs(29)));
        assert!(!is_fresh(at, at + TTL));
        assert!(!is_fresh(at, at + Duration::from_secs(31)));
    }

    #[test]
    fn denial_names_the_permission() {
        let error = AclError::Denied { aco: Aco::PATIENTS_MED, level: AclLevel::View };
        assert_eq!(error.to_string(), "requires OpenEMR permission patients|med (view)");
    }
}
