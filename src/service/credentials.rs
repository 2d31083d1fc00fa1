//! Password verification, off the async threads and bounded: hashing is deliberately slow, so a
//! flood of sign-ins must queue here instead of starving every other request of CPU.

use std::{sync::Arc, time::Duration};

use tokio::sync::Semaphore;

use crate::php::password::{self, HashScheme};

#[derive(Debug, thiserror::Error)]
#[error("too many sign-ins are being verified right now")]
pub struct VerifierBusy;

#[derive(Clone)]
pub struct PasswordVerifier {
    permits: Arc<Semaphore>,
    max_wait: Duration,
}

impl PasswordVerifier {
    /// `concurrency` verifications run at once; others wait up to `max_wait`, then give up.
    pub fn new(concurrency: usize, max_wait: Duration) -> Self {
        Self { permits: Arc::new(Semaphore::new(concurrency.max(1))), max_wait }
    }

    /// Half the cores, so sign-ins can never take the whole machine.
    pub fn for_this_machine() -> Self {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        Self::new(cores.div_ceil(2), Duration::from_secs(5))
    }

    /// A new hash of `password` in OpenEMR's configured scheme, on the same bounded workers.
    pub async fn hash(&self, password: String, scheme: HashScheme) -> Result<Option<String>, VerifierBusy> {
        let permit = self.permit().await?;
        let result = tokio::task::spawn_blocking(move || {
            let _permit = permit;
            password::hash(&password, scheme)
        })
        .await;
        Ok(result.unwrap_or(None))
    }

    async fn permit(&self) -> Result<tokio::sync::OwnedSemaphorePermit, VerifierBusy> {
        tokio::time::timeout(self.max_wait, self.permits.clone().acquire_owned())
            .await
            .map_err(|_| VerifierBusy)?
            .map_err(|_| VerifierBusy)
    }

    /// Checks `password` against `hash`. Without a hash (unknown or inactive user) a dummy hash
    /// of OpenEMR's default cost is verified instead, so every failure takes about as long.
    pub async fn verify(&self, password: String, hash: Option<String>) -> Result<bool, VerifierBusy> {
        let permit = self.permit().await?;
        let result = tokio::task::spawn_blocking(move || {
            let _permit = permit;
            match hash {
                Some(hash) => password::verify(&password, &hash),
                None => {
                    let _ = password::verify(&password, password::dummy_hash());
                    false
                }
            }
        })
        .await;
        Ok(result.unwrap_or(false))
    }
}
