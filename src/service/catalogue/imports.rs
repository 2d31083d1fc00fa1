//! Importing a supplier's product list: read the workbook, match the supplier's layout, and apply
//! the changes in one transaction with the import's report, so a broken sheet changes nothing and
//! the same sheet twice changes nothing the second time. Uploads run as jobs; the command line
//! imports at once.

use chrono::{NaiveDateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;
use sha2::{Digest, Sha256};

use super::{CatalogueError, Result, workbook};
use crate::{
    app::AppState,
    domain::{
        catalogue::{
            import::{self, Change},
            layouts::{self, Rejection},
            product::Supplier,
        },
        job::JobKind,
        user::Caller,
    },
    service::{
        admin,
        jobs::{self, JobContext, JobFailure, JobOutcome, NewJob},
    },
    storage::{
        StorageError,
        advisory_lock::{self, Held},
        mmt::products::{self as store, NewImport},
    },
};

/// What an import did, kept on the import and returned to whoever asked for it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Report {
    pub supplier: String,
    pub sheet: String,
    pub created: usize,
    pub updated: usize,
    pub unchanged: usize,
    pub discontinued: usize,
    /// Every product created, updated or discontinued, with the row it came from.
    pub changes: Vec<ChangeLine>,
    pub rejected: Vec<RejectedRow>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ChangeLine {
    pub action: String,
    pub row: Option<u32>,
    pub key: String,
    pub brand: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RejectedRow {
    pub row: u32,
    pub reason: String,
}

/// An upload waiting for its job.
pub struct Queued {
    pub import_id: i64,
    pub job_id: String,
}

/// `.xlsx` workbooks only, as the suppliers send them.
pub fn check_upload(supplier: &str, file_name: &str, bytes: &[u8]) -> Result<Supplier> {
    let mut issues = crate::domain::validation::Issues::default();
    let parsed = Supplier::parse(supplier);
    if parsed.is_none() {
        issues.add("supplier", format!("must be one of {}", Supplier::names()));
    }
    if bytes.is_empty() {
        issues.add("file", "is empty");
    } else if !file_name.to_lowercase().ends_with(".xlsx") && !bytes.starts_with(b"PK") {
        issues.add("file", "must be an .xlsx workbook");
    }
    match parsed {
        Some(supplier) if issues.0.is_empty() => Ok(supplier),
        _ => Err(issues.into()),
    }
}

/// Keeps the workbook and queues its import; `admin|super` or `admin|practice`, as for the
/// practice's other settings.
pub async fn queue(
    state: &AppState,
    caller: &Caller,
    supplier: Supplier,
    file_name: &str,
    bytes: &[u8],
) -> Result<Queued> {
    admin::practice_admin(state, caller).await?;
    let new = NewImport {
        supplier,
        file_name: &truncated(file_name),
        sha256: Sha256::digest(bytes).into(),
        workbook: Some(bytes),
        imported_by: Some(caller.user_id.0),
        now: now(),
    };
    let mut tx = state.pool.begin().await.map_err(StorageError::from_sqlx)?;
    let import_id = store::insert_import(&mut tx, &new).await?;
    let job = NewJob::new(JobKind::ProductImport, json!({ "import_id": import_id })).queued_by(caller);
    let job_id = jobs::enqueue(&mut tx, job).await?;
    tx.commit().await.map_err(StorageError::from_sqlx)?;
    jobs::wake(state);
    Ok(Queued { import_id, job_id: job_id.to_string() })
}

/// An import and, once finished, its report: for the practice's administrators.
pub async fn get(state: &AppState, caller: &Caller, id: i64) -> Result<store::ImportRow> {
    admin::practice_admin(state, caller).await?;
    store::get_import(&state.pool, id)
        .await?
        .ok_or_else(|| CatalogueError::NotFound(format!("no product import {id}")))
}

/// The command line's import: at once, no job.
pub async fn import_file(
    state: &AppState,
    supplier: Supplier,
    file_name: &str,
    bytes: &[u8],
) -> Result<Report> {
    let new = NewImport {
        supplier,
        file_name: &truncated(file_name),
        sha256: Sha256::digest(bytes).into(),
        workbook: None,
        imported_by: None,
        now: now(),
    };
    let mut conn = state.pool.acquire().await.map_err(StorageError::from_sqlx)?;
    let import_id = store::insert_import(&mut conn, &new).await?;
    drop(conn);
    let result = apply(state, supplier, bytes.to_vec(), import_id, |_, _| async { Ok(()) }).await;
    if let Err(err) = &result
        && !err.is_transient()
    {
        fail(state, import_id, err).await?;
    }
    result
}

/// The job: reads the queued workbook and applies it. A workbook that does not fit the supplier
/// fails the job at once; a database hiccup is retried.
pub async fn job(ctx: JobContext) -> JobOutcome {
    let import_id = ctx
        .payload()
        .get("import_id")
        .and_then(serde_json::Value::as_i64)
        .ok_or_else(|| JobFailure::Permanent("the job names no import".into()))?;
    let state = ctx.state().clone();
    let Some((supplier, bytes)) = store::queued_workbook(&state.pool, import_id).await? else {
        return Err(JobFailure::Permanent(format!("import {import_id} is not waiting to run")));
    };
    let supplier = Supplier::parse(&supplier)
        .ok_or_else(|| JobFailure::Permanent(format!("import {import_id} names an unknown supplier")))?;
    let progress = |percent, message: String| {
        let ctx = &ctx;
        async move { ctx.progress(percent, &message).await }
    };
    match apply(&state, supplier, bytes, import_id, progress).await {
        Ok(report) => Ok(Some(json!({ "import_id": import_id, "report": report }))),
        Err(err) if err.is_transient() => Err(JobFailure::Transient(err.to_string())),
        Err(err) => {
            fail(&state, import_id, &err).await?;
            Err(JobFailure::Permanent(err.to_string()))
        }
    }
}

async fn fail(
    state: &AppState,
    import_id: i64,
    err: &CatalogueError,
) -> std::result::Result<(), StorageError> {
    let report = json!({ "error": err.to_string(), "missing_columns": err.missing_columns() }).to_string();
    let mut conn = state.pool.acquire().await.map_err(StorageError::from_sqlx)?;
    store::finish_import(&mut conn, import_id, "failed", &report, now()).await
}

async fn apply<F, Fut>(
    state: &AppState,
    supplier: Supplier,
    bytes: Vec<u8>,
    import_id: i64,
    progress: F,
) -> Result<Report>
where
    F: Fn(u8, String) -> Fut,
    Fut: Future<Output = std::result::Result<(), StorageError>>,
{
    progress(10, "reading the workbook".into()).await?;
    let sheets = tokio::task::spawn_blocking(move || workbook::sheets(&bytes))
        .await
        .map_err(|_| CatalogueError::Unreadable("the workbook reader stopped".into()))?
        .map_err(CatalogueError::Unreadable)?;
    let read = layouts::read(supplier, &sheets)
        .map_err(|mismatch| CatalogueError::Layout { supplier, missing: mismatch.missing })?;
    progress(40, format!("checked {} rows", read.products.len() + read.rejected.len())).await?;

    // Imports of one supplier take turns; the row locks alone would let two plan from one state.
    let mut held =
        Held::take(&state.pool, format!("mmt-products-{supplier}"), advisory_lock::WRITE_WAIT_SECS).await?;
    let result = write(held.conn(), supplier, read, import_id).await;
    held.release().await?;
    let report = result?;
    progress(100, format!("{} created, {} updated", report.created, report.updated)).await?;
    Ok(report)
}

async fn write(
    conn: &mut sqlx::MySqlConnection,
    supplier: Supplier,
    read: layouts::ReadSheet,
    import_id: i64,
) -> Result<Report> {
    let now = now();
    let mut tx = sqlx::Connection::begin(conn).await.map_err(StorageError::from_sqlx)?;
    let stored = store::lock_supplier(&mut tx, supplier).await?;
    let changes = import::plan(stored, read.products, &read.held_keys);
    let created: Vec<_> = changes
        .iter()
        .filter_map(|c| match c {
            Change::Create { product, .. } => Some(product),
            _ => None,
        })
        .collect();
    store::insert_products(&mut tx, supplier, &created, import_id, now).await?;
    for change in &changes {
        if let Change::Update { id, product, .. } = change {
            store::update_product(&mut tx, *id, product, import_id, now).await?;
        }
    }
    let gone: Vec<i64> = changes
        .iter()
        .filter_map(|c| match c {
            Change::Discontinue { id, .. } => Some(*id),
            _ => None,
        })
        .collect();
    store::discontinue(&mut tx, &gone, import_id, now).await?;
    let report = report(supplier, read.sheet, &changes, read.rejected);
    let text = serde_json::to_string(&report).unwrap_or_default();
    store::finish_import(&mut tx, import_id, "done", &text, now).await?;
    tx.commit().await.map_err(StorageError::from_sqlx)?;
    Ok(report)
}

fn report(supplier: Supplier, sheet: String, changes: &[Change], rejected: Vec<Rejection>) -> Report {
    let counts = import::count(changes);
    let line = |action: &str, row: Option<u32>, product: &crate::domain::catalogue::product::Product| {
        ChangeLine { action: action.into(), row, key: product.key(), brand: product.brand.clone() }
    };
    let lines = changes
        .iter()
        .filter_map(|c| match c {
            Change::Create { row, product } => Some(line("created", Some(*row), product)),
            Change::Update { row, product, .. } => Some(line("updated", Some(*row), product)),
            Change::Discontinue { product, .. } => Some(line("discontinued", None, product)),
            Change::Unchanged { .. } => None,
        })
        .collect();
    Report {
        supplier: supplier.as_str().into(),
        sheet,
        created: counts.created,
        updated: counts.updated,
        unchanged: counts.unchanged,
        discontinued: counts.discontinued,
        changes: lines,
        rejected: rejected.into_iter().map(|r| RejectedRow { row: r.row, reason: r.reason }).collect(),
    }
}

/// `mmt_product_imports.file_name` holds 255 characters.
fn truncated(file_name: &str) -> String {
    file_name.chars().take(255).collect()
}

fn now() -> NaiveDateTime {
    Utc::now().naive_utc()
}
