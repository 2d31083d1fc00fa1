//! Text from documents, as a background job: a PDF page's own text layer when it has one, else
//! the page rasterised (poppler's `pdftoppm`) and read by Tesseract; images go to Tesseract
//! directly. Each tool runs with a time limit and one thread, killed if the job is dropped.
//! Progress is reported per page to the user who asked, live. The decrypted file exists only in a
//! private (0700) temporary folder for the job's duration.

use std::{
    os::unix::fs::DirBuilderExt,
    path::{Path, PathBuf},
    process::Stdio,
    time::Duration,
};

use serde_json::{Value, json};

use crate::{
    app::AppState,
    domain::messaging::notification::{NotificationKind, Subject},
    domain::{
        documents::ocr,
        job::{JobId, JobKind},
        user::Caller,
    },
    service::messaging::notifications,
    service::{
        audit,
        documents::records::{self, DocumentError},
        jobs::{self, JobContext, JobFailure, JobOutcome, NewJob},
    },
    storage::{
        mmt::documents::{self as store, PageText},
        openemr::documents::rows,
    },
};

/// No single tool run may take longer than this.
const STEP_LIMIT: Duration = Duration::from_secs(120);

pub async fn request(state: &AppState, caller: &Caller, id: i64) -> Result<JobId, DocumentError> {
    let (view, _) = records::readable(state, caller, id).await?;
    let pid = view.row.foreign_id.unwrap_or_default();
    let job =
        NewJob::new(JobKind::DocumentOcr, json!({ "document_id": id })).queued_by(caller).for_patient(pid);
    let job_id = jobs::submit(state, job).await?;
    let comments = format!("mmt-sidecar queued text extraction of document {id}");
    audit::record(state, &records::entry(caller, "other-select", pid, comments)).await?;
    Ok(job_id)
}

/// The extracted pages, once a job has run.
pub async fn text(state: &AppState, caller: &Caller, id: i64) -> Result<Vec<PageText>, DocumentError> {
    let (view, _) = records::readable(state, caller, id).await?;
    let pages = store::text(&state.pool, &state.vault, id).await?;
    let pid = view.row.foreign_id.unwrap_or_default();
    let comments = format!("mmt-sidecar read the extracted text of document {id}");
    audit::record(state, &records::entry(caller, "other-select", pid, comments)).await?;
    Ok(pages)
}

/// A private folder removed with everything in it when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new() -> std::io::Result<Self> {
        let dir = std::env::temp_dir().join(format!("mmt-ocr-{}", uuid::Uuid::new_v4().simple()));
        std::fs::DirBuilder::new().mode(0o700).create(&dir)?;
        Ok(Self(dir))
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn failed(what: &str) -> impl Fn(std::io::Error) -> JobFailure + '_ {
    move |e| JobFailure::Transient(format!("{what}: {}", e.kind()))
}

async fn run(program: &str, args: &[&str]) -> Result<Vec<u8>, JobFailure> {
    let child = tokio::process::Command::new(program)
        .args(args)
        .env("OMP_THREAD_LIMIT", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| {
            JobFailure::Permanent(format!("{program} could not be started ({}); install it", e.kind()))
        })?;
    match tokio::time::timeout(STEP_LIMIT, child.wait_with_output()).await {
        Err(_) => {
            Err(JobFailure::Transient(format!("{program} took longer than {} s", STEP_LIMIT.as_secs())))
        }
        Ok(Err(e)) => Err(failed(program)(e)),
        Ok(Ok(out)) if !out.status.success() => {
            Err(JobFailure::Permanent(format!("{program} failed ({})", out.status)))
        }
        Ok(Ok(out)) => Ok(out.stdout),
    }
}

fn arg(path: &Path) -> &str {
    path.to_str().expect("scratch paths are UTF-8")
}

async fn tesseract(image: &Path, page: i32) -> Result<PageText, JobFailure> {
    let tsv = run("tesseract", &[arg(image), "stdout", "tsv"]).await?;
    let (content, confidence) = ocr::from_tsv(&String::from_utf8_lossy(&tsv));
    Ok(PageText::new(page, "ocr", confidence, content))
}

async fn pdf_page(dir: &Path, file: &Path, page: u32) -> Result<PageText, JobFailure> {
    let n = page.to_string();
    let layer = run("pdftotext", &["-f", &n, "-l", &n, "-layout", "-enc", "UTF-8", arg(file), "-"]).await?;
    let layer = String::from_utf8_lossy(&layer).trim().to_string();
    if !layer.is_empty() {
        return Ok(PageText::new(page as i32, "text", None, layer));
    }
    let stem = dir.join(format!("page-{page}"));
    run(
        "pdftoppm",
        &["-f", &n, "-l", &n, "-r", "300", "-gray", "-png", "-singlefile", arg(file), arg(&stem)],
    )
    .await?;
    tesseract(&stem.with_extension("png"), page as i32).await
}

async fn report(ctx: &JobContext, done: u32, total: u32) -> Result<(), JobFailure> {
    let percent = (done * 99 / total.max(1)) as u8;
    ctx.progress(percent, &format!("page {done} of {total}")).await?;
    if ctx.cancelled().await? {
        return Err(JobFailure::Cancelled);
    }
    Ok(())
}

pub async fn job(ctx: JobContext) -> JobOutcome {
    let state = ctx.state();
    let id = ctx
        .payload()
        .get("document_id")
        .and_then(Value::as_i64)
        .ok_or_else(|| JobFailure::Permanent("payload names no document_id".into()))?;
    let row = rows::get(&state.pool, id)
        .await?
        .ok_or_else(|| JobFailure::Permanent(format!("no document {id}")))?;
    let bytes = records::load(state, &row).await.map_err(|why| JobFailure::Permanent(why.into()))?;
    let scratch = Scratch::new().map_err(failed("scratch folder"))?;
    let file = scratch.0.join("document");
    tokio::fs::write(&file, &bytes).await.map_err(failed("scratch file"))?;
    drop(bytes);
    let mime = row.mimetype.unwrap_or_default();
    let mut pages = Vec::new();
    if mime == "application/pdf" {
        let info = run("pdfinfo", &[arg(&file)]).await?;
        let total = ocr::page_count(&String::from_utf8_lossy(&info))
            .ok_or_else(|| JobFailure::Permanent("the PDF's page count could not be read".into()))?;
        for page in 1..=total {
            pages.push(pdf_page(&scratch.0, &file, page).await?);
            report(&ctx, page, total).await?;
        }
    } else if mime.starts_with("image/") {
        pages.push(tesseract(&file, 1).await?);
        report(&ctx, 1, 1).await?;
    } else if mime == "text/plain" {
        let content = tokio::fs::read_to_string(&file).await.map_err(failed("scratch file"))?;
        pages.push(PageText::new(1, "text", None, content));
    } else {
        return Err(JobFailure::Permanent(format!("text cannot be extracted from {mime}")));
    }
    store::replace_text(&state.pool, &state.vault, id, &pages).await?;
    if let Some(user) = ctx.queued_by() {
        let subject = Subject::Document(id);
        notifications::notify_now(state, user, NotificationKind::DocumentTextReady, &subject, "mmt-sidecar")
            .await;
    }
    Ok(Some(json!({ "document_id": id, "pages": pages.len() })))
}
