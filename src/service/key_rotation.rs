//! Key rotation (`mmt-sidecar rotate-key`): a new data key seals everything written from then on,
//! and the `key.rotate` job seals again under it every value and audio file that older keys sealed
//! (and any text stored before sealing), and gives text extracted before the blind index existed
//! its search terms. Older keys stay, so nothing is ever unreadable meanwhile.

use serde_json::{Map, Value, json};

use crate::{
    app::AppState,
    domain::job::{JobId, JobKind},
    service::jobs::{self, JobContext, JobFailure, JobOutcome, NewJob},
    storage::{
        StorageError,
        audio::AudioFiles,
        mmt::{
            documents,
            sealed::{self, Stale},
        },
        vault::{Field, Keyring},
    },
};

const BATCH: u32 = 500;

/// Adds a data key and queues the job that seals older values again; returns both ids.
pub async fn rotate(state: &AppState) -> Result<(u32, JobId), StorageError> {
    let key = state.vault.add_data_key().await?;
    let mut conn = state.pool.acquire().await.map_err(StorageError::from_sqlx)?;
    let job = jobs::enqueue(&mut conn, NewJob::new(JobKind::KeyRotation, json!({ "key": key }))).await?;
    jobs::wake(state);
    Ok((key, job))
}

pub async fn job(ctx: JobContext) -> JobOutcome {
    let state = ctx.state();
    let keys = state.vault.reload().await?;
    let mut resealed = Map::new();
    for (done, field) in Field::ALL.into_iter().enumerate() {
        let count = reseal_column(state, &keys, field).await?;
        resealed.insert(format!("{}.{}", field.table(), field.column()), count.into());
        let percent = (done * 90 / Field::ALL.len()) as u8;
        ctx.progress(percent, &format!("resealed {}.{}", field.table(), field.column())).await?;
    }
    let files = AudioFiles::new(&state.config.audio.dir, &state.vault);
    let mut audio = 0u64;
    for id in files.completed().await.map_err(audio_failure)? {
        audio += u64::from(files.reseal(&id).await.map_err(audio_failure)?);
    }
    resealed.insert("audio_files".into(), audio.into());
    let unindexed = documents::unindexed(&state.pool).await?;
    for id in &unindexed {
        documents::index(&state.pool, &state.vault, *id).await?;
    }
    resealed.insert("documents_indexed".into(), unindexed.len().into());
    Ok(Some(json!({ "key": keys.current(), "resealed": Value::Object(resealed) })))
}

fn audio_failure(e: std::io::Error) -> JobFailure {
    JobFailure::Transient(format!("audio files could not be resealed: {e}"))
}

/// Seals the column's stale values again, a batch at a time in key order. A value edited
/// meanwhile is left as its writer sealed it (a replica that has not yet seen the new key may have
/// used an older one; the next rotation takes it).
async fn reseal_column(state: &AppState, keys: &Keyring, field: Field) -> Result<u64, JobFailure> {
    let (mut count, mut after) = (0, None::<Vec<Vec<u8>>>);
    loop {
        let batch = sealed::stale(&state.pool, field, keys.current(), after.as_deref(), BATCH).await?;
        let Some(last) = batch.last() else { return Ok(count) };
        for stale in &batch {
            count += u64::from(
                sealed::replace(&state.pool, field, stale, &sealed_again(keys, field, stale)?).await?,
            );
        }
        after = Some(last.key.clone());
    }
}

fn sealed_again(keys: &Keyring, field: Field, stale: &Stale) -> Result<Vec<u8>, JobFailure> {
    let plain = keys.open(field, &stale.value).map_err(|e| {
        JobFailure::Permanent(format!(
            "a value of {}.{} cannot be opened: {e}",
            field.table(),
            field.column()
        ))
    })?;
    Ok(keys.seal(field, &plain))
}
