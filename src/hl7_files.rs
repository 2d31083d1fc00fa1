//! HL7 v2 from files, the way labs drop them (OpenEMR's `FS` mode): each file holds one message or
//! a batch, received by `service::hl7_import` as the user named, as `POST /api/hl7/` receives it.
//! A watched folder moves each file it has answered to `done/` (every message `AA`) or `failed/`,
//! its ACKs beside it in `<name>.ack`; a file that could not be received now stays for the next round.

use std::{
    path::{Path, PathBuf},
    time::Duration,
};

use crate::{
    app::AppState,
    service::hl7_import::{self, Hl7Error},
};

/// One file's answer.
pub struct Answered {
    pub file: PathBuf,
    pub acks: String,
    /// Every message `AA`.
    pub taken: bool,
}

/// The regular files of a folder in name order, or the one file.
pub fn files_of(path: &Path) -> std::io::Result<Vec<PathBuf>> {
    if !path.is_dir() {
        return Ok(vec![path.to_path_buf()]);
    }
    let mut files: Vec<PathBuf> = std::fs::read_dir(path)?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|p| p.is_file() && !p.extension().is_some_and(|e| e == "ack" || e == "part"))
        .collect();
    files.sort();
    Ok(files)
}

/// Receives one file. A file that is not UTF-8 is answered `AR`; a failure worth retrying is an error.
pub async fn receive_file(state: &AppState, user: &str, file: &Path) -> Result<Answered, Hl7Error> {
    let bytes = tokio::fs::read(file)
        .await
        .map_err(|e| Hl7Error::Unavailable(format!("cannot read the file: {e}")))?;
    let acks = hl7_import::receive_bytes(state, user, &bytes).await?;
    let taken = acks.split('\r').filter(|s| s.starts_with("MSA|")).all(|s| s.starts_with("MSA|AA|"));
    Ok(Answered { file: file.to_path_buf(), acks, taken })
}

/// Polls `dir` every `every`, moving each answered file out of it, until the process is stopped.
pub async fn watch(state: &AppState, user: &str, dir: &Path, every: Duration) -> std::io::Result<()> {
    for sub in ["done", "failed"] {
        std::fs::create_dir_all(dir.join(sub))?;
    }
    loop {
        for file in files_of(dir)? {
            match receive_file(state, user, &file).await {
                Ok(answered) => file_away(dir, &answered)?,
                Err(err) => {
                    tracing::warn!(error = %err, "an HL7 file could not be received now; trying again")
                }
            }
        }
        tokio::time::sleep(every).await;
    }
}

fn file_away(dir: &Path, answered: &Answered) -> std::io::Result<()> {
    let to = dir.join(if answered.taken { "done" } else { "failed" });
    let name = answered.file.file_name().unwrap_or_default();
    let mut ack = name.to_os_string();
    ack.push(".ack");
    std::fs::write(to.join(ack), &answered.acks)?;
    std::fs::rename(&answered.file, to.join(name))
}
