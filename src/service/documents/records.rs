//! Patient documents in OpenEMR's own store, so a file uploaded here opens in OpenEMR's viewer
//! and the reverse. Access is checked as OpenEMR's UI checks it (`patients|docs`, and the
//! `aco_spec` of every category the document is filed in, which OpenEMR's REST API skips), plus
//! the sensitivity of an encounter the document is tagged to. Every read, download and delete is
//! audited; OpenEMR's SQL audit knows `documents` only as `other`, with no category.

use std::{
    path::{Path, PathBuf},
    sync::Arc,
};

use chrono::SubsecRound;

use crate::{
    app::AppState,
    domain::{
        acl::{AclLevel, Aco, Permissions},
        audit::AuditEntry,
        documents::{
            category::Tree,
            document::{self, Settings},
        },
        patient::Pid,
        user::Caller,
        validation::Issues,
    },
    php::crypto_gen,
    service::{acl::AclError, audit, documents::keys, permission, wall_clock_now},
    storage::{
        StorageError,
        mmt::documents as extracted,
        openemr::{
            documents::{
                files::{self, Staged, Staging},
                rows::{self, DocumentRow, NewDocument},
            },
            encounters, globals, patients, sequences, uuid_registry,
        },
    },
};

const AUDIT_CATEGORY: &str = "";

#[derive(Debug, thiserror::Error)]
pub enum DocumentError {
    #[error("no document {0}")]
    NotFound(i64),
    #[error("no patient {0}")]
    NoPatient(i64),
    #[error("this preview link has expired or does not exist")]
    LinkGone,
    #[error("invalid document")]
    Invalid(Issues),
    #[error("the file is larger than the {0}-byte limit (MMT_DOCUMENT_MAX_BYTES)")]
    TooLarge(u64),
    #[error("requires OpenEMR permission {0} for the document's category")]
    CategoryDenied(String),
    #[error("{0}")]
    Unavailable(String),
    #[error("the document store could not be written or read")]
    Disk(#[source] std::io::Error),
    #[error("document {0}'s file is missing, unreadable or fails its integrity check; it is not served")]
    Unreadable(i64),
    #[error(transparent)]
    Acl(#[from] AclError),
    #[error(transparent)]
    Storage(#[from] StorageError),
}

impl From<Issues> for DocumentError {
    fn from(issues: Issues) -> Self {
        Self::Invalid(issues)
    }
}

type Result<T> = std::result::Result<T, DocumentError>;

/// A document with the categories it is filed in (`id`, `Categories/…` path).
pub struct DocumentView {
    pub row: DocumentRow,
    pub categories: Vec<(i64, String)>,
}

/// A document's bytes, decrypted and verified.
pub struct Content {
    pub name: String,
    pub mimetype: String,
    pub bytes: Vec<u8>,
}

pub(crate) fn entry(caller: &Caller, event: &str, pid: i64, comments: String) -> AuditEntry {
    AuditEntry::phi(caller, event, AUDIT_CATEGORY, Some(pid), comments)
}

async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> std::io::Result<T> + Send + 'static,
) -> Result<T> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| DocumentError::Disk(std::io::Error::other(e)))?
        .map_err(DocumentError::Disk)
}

fn documents_dir(state: &AppState) -> Result<PathBuf> {
    let site = state.config.openemr_site_dir.as_ref().ok_or_else(|| {
        DocumentError::Unavailable("documents need OpenEMR's site folder: set OPENEMR_SITE_DIR".into())
    })?;
    Ok(site.join("documents"))
}

async fn settings(state: &AppState) -> Result<Settings> {
    let settings = Settings::from_globals(&globals::values(&state.pool, &document::GLOBALS).await?);
    if !settings.on_disk {
        return Err(DocumentError::Unavailable(
            "OpenEMR keeps documents in CouchDB (document_storage_method), which the sidecar cannot reach"
                .into(),
        ));
    }
    Ok(settings)
}

async fn permissions(state: &AppState, caller: &Caller) -> Result<Arc<Permissions>> {
    Ok(state.acl.permissions(&caller.username).await?)
}

/// `Document::can_access`: every category the document is in must pass its `aco_spec`.
async fn require_categories(
    state: &AppState,
    caller: &Caller,
    pid: i64,
    tree: &Tree,
    categories: &[i64],
) -> Result<()> {
    let perms = permissions(state, caller).await?;
    let denied = categories.iter().filter_map(|c| tree.get(*c)).find(|c| !perms.allows_spec(&c.aco_spec));
    if let Some(category) = denied {
        let spec = category.aco_spec.clone();
        audit::permission_denied(
            state,
            caller,
            Some(pid),
            &format!("denied: document category needs {spec}"),
        )
        .await;
        return Err(DocumentError::CategoryDenied(spec));
    }
    Ok(())
}

/// An encounter's sensitivity (`sensitivities|<value>`), when the document is tagged to one.
async fn require_encounter(state: &AppState, caller: &Caller, pid: i64, encounter: i64) -> Result<()> {
    if encounter == 0 {
        return Ok(());
    }
    let row = encounters::get(&state.pool, encounter).await?;
    if let Some(sensitivity) = row.and_then(|r| r.sensitivity).filter(|s| !s.is_empty()) {
        permission::require_on(state, caller, Aco::for_sensitivity(&sensitivity), AclLevel::View, pid)
            .await?;
    }
    Ok(())
}

/// The document, if it exists and the caller may open it.
pub(crate) async fn readable(state: &AppState, caller: &Caller, id: i64) -> Result<(DocumentView, Tree)> {
    let row = rows::get(&state.pool, id).await?.ok_or(DocumentError::NotFound(id))?;
    let pid = row.foreign_id.unwrap_or_default();
    permission::require_on(state, caller, Aco::PATIENTS_DOCS, AclLevel::View, pid).await?;
    let tree = Tree::new(rows::categories(&state.pool).await?);
    let filed: Vec<i64> =
        rows::categories_of(&state.pool, &[id]).await?.into_iter().map(|(_, c)| c).collect();
    require_categories(state, caller, pid, &tree, &filed).await?;
    require_encounter(state, caller, pid, row.encounter_id).await?;
    let categories = filed.iter().map(|c| (*c, tree.path(*c))).collect();
    Ok((DocumentView { row, categories }, tree))
}

pub async fn categories(state: &AppState, caller: &Caller) -> Result<Tree> {
    permission::require(state, caller, Aco::PATIENTS_DOCS, AclLevel::View).await?;
    Ok(Tree::new(rows::categories(&state.pool).await?))
}

/// Narrows a patient's document list.
#[derive(Default)]
pub struct ListFilter {
    pub category: Option<i64>,
    pub encounter: Option<i64>,
    /// Words the document's extracted text must contain.
    pub text: Option<String>,
}

/// The patient's documents the caller may open; those in categories or encounters they may not
/// see are left out, as OpenEMR's document tree leaves them out.
pub async fn list(
    state: &AppState,
    caller: &Caller,
    pid: i64,
    filter: ListFilter,
) -> Result<Vec<DocumentView>> {
    let ListFilter { category, encounter, text } = filter;
    let text = text.map(|t| t.trim().to_string());
    if text.as_ref().is_some_and(|t| t.is_empty() || t.chars().count() > 200) {
        let mut issues = Issues::default();
        issues.add("q", "search 1 to 200 characters of the documents' extracted text");
        return Err(issues.into());
    }
    permission::require_on(state, caller, Aco::PATIENTS_DOCS, AclLevel::View, pid).await?;
    let perms = permissions(state, caller).await?;
    let tree = Tree::new(rows::categories(&state.pool).await?);
    let found = rows::list(&state.pool, pid, category, encounter).await?;
    let ids: Vec<i64> = found.iter().map(|d| d.id).collect();
    let filed = rows::categories_of(&state.pool, &ids).await?;
    let mut out = Vec::new();
    for row in found {
        let cats: Vec<i64> = filed.iter().filter(|(d, _)| *d == row.id).map(|(_, c)| *c).collect();
        let allowed = cats.iter().filter_map(|c| tree.get(*c)).all(|c| perms.allows_spec(&c.aco_spec));
        if allowed && sensitivity_allows(state, &perms, row.encounter_id).await? {
            out.push(DocumentView { categories: cats.iter().map(|c| (*c, tree.path(*c))).collect(), row });
        }
    }
    if let Some(text) = text {
        let ids: Vec<i64> = out.iter().map(|d| d.row.id).collect();
        let matching = extracted::containing(&state.pool, &state.vault, &ids, &text).await?;
        out.retain(|d| matching.contains(&d.row.id));
    }
    let listed = out.iter().map(|d| d.row.id.to_string()).collect::<Vec<_>>().join(",");
    let comments = format!("mmt-sidecar listed documents of pid {pid}: [{listed}]");
    audit::record(state, &entry(caller, "other-select", pid, comments)).await?;
    Ok(out)
}

async fn sensitivity_allows(state: &AppState, perms: &Permissions, encounter: i64) -> Result<bool> {
    if encounter == 0 {
        return Ok(true);
    }
    let sensitivity = encounters::get(&state.pool, encounter).await?.and_then(|r| r.sensitivity);
    Ok(sensitivity
        .filter(|s| !s.is_empty())
        .is_none_or(|s| perms.allows(Aco::for_sensitivity(&s), AclLevel::View)))
}

/// The document OpenEMR's FHIR API knows by `uuid`.
pub async fn id_of(state: &AppState, uuid: &[u8; 16]) -> Result<Option<i64>> {
    Ok(rows::id_by_uuid(&state.pool, uuid).await?)
}

pub async fn get(state: &AppState, caller: &Caller, id: i64) -> Result<DocumentView> {
    let (view, _) = readable(state, caller, id).await?;
    let pid = view.row.foreign_id.unwrap_or_default();
    audit::record(state, &entry(caller, "other-select", pid, format!("mmt-sidecar read document {id}")))
        .await?;
    Ok(view)
}

/// `get_data()`: the file decrypted (every CryptoGen version 004-007 with its database keys) and
/// checked against its MAC and its stored SHA3-512. A file that fails is never served: the
/// failure is audited and answered as a server fault.
pub async fn content(state: &AppState, caller: &Caller, id: i64) -> Result<Content> {
    let (view, _) = readable(state, caller, id).await?;
    let row = view.row;
    let pid = row.foreign_id.unwrap_or_default();
    if row.date_expires.is_some_and(|at| at <= wall_clock_now()) {
        return Err(DocumentError::NotFound(id));
    }
    if row.storagemethod != 0 {
        return Err(DocumentError::Unavailable(format!(
            "document {id} is in CouchDB, which the sidecar cannot reach"
        )));
    }
    let bytes = match load(state, &row).await {
        Ok(bytes) => bytes,
        Err(why) => {
            tracing::error!(document = id, why, "a document file was refused");
            let mut failed =
                entry(caller, "other-select", pid, format!("mmt-sidecar refused document {id}: {why}"));
            failed.success = false;
            audit::record(state, &failed).await?;
            return Err(DocumentError::Unreadable(id));
        }
    };
    let comments = format!("mmt-sidecar downloaded document {id}");
    audit::record(state, &entry(caller, "other-select", pid, comments)).await?;
    Ok(Content {
        name: row.name.unwrap_or_else(|| format!("document-{id}")),
        mimetype: row.mimetype.filter(|m| !m.is_empty()).unwrap_or_else(|| "application/octet-stream".into()),
        bytes,
    })
}

/// The verified plaintext, or why it cannot be trusted (no PHI in the reason).
pub(super) async fn load(state: &AppState, row: &DocumentRow) -> std::result::Result<Vec<u8>, &'static str> {
    let dir = documents_dir(state).map_err(|_| "OPENEMR_SITE_DIR is not set")?;
    let relative =
        document::relative_path(row.url.as_deref().unwrap_or_default(), row.path_depth.unwrap_or(1).into())
            .ok_or("the stored url does not name a file under the documents folder")?;
    let path = dir.join(relative);
    let raw = blocking(move || files::read(&path)).await.map_err(|_| "the file is missing or unreadable")?;
    let plain = if row.encrypted == 1 {
        let version = crypto_gen::version_of(&raw).ok_or("the file lacks a CryptoGen version prefix")?;
        let keys = keys::existing(&state.pool, version)
            .await
            .map_err(|_| "the database keys could not be read")?
            .ok_or("the database keys for the file's version are missing")?;
        crypto_gen::decrypt(&raw, &keys).map_err(|e| match e {
            crypto_gen::CryptoError::BadMac => "the file's authentication code does not verify",
            crypto_gen::CryptoError::UnsupportedVersion(_) => "the file is in a CryptoGen version before 004",
            crypto_gen::CryptoError::Malformed => "the file is not valid CryptoGen output",
        })?
    } else {
        raw
    };
    let stored = row.hash.as_deref().unwrap_or_default();
    // Older OpenEMR releases stored SHA-1 (40 hex digits); only SHA3-512 is checked here.
    if stored.len() == 128 && !stored.eq_ignore_ascii_case(&sha3_hex(&plain)) {
        return Err("the content does not match its stored SHA3-512 hash");
    }
    Ok(plain)
}

fn sha3_hex(bytes: &[u8]) -> String {
    use sha3::Digest;
    hex::encode(sha3::Sha3_512::digest(bytes))
}

/// An upload being received into the patient's folder.
pub struct Upload {
    staging: Option<Staging>,
    documents: PathBuf,
    pid: i64,
    settings: Settings,
    max: u64,
}

/// What came with the file in the form.
#[derive(Default)]
pub struct UploadForm {
    pub category: Option<i64>,
    pub encounter: Option<i64>,
    pub file_name: Option<String>,
    pub content_type: Option<String>,
    pub has_file: bool,
}

/// Checks what can be checked before the body is read, and opens the temporary file.
pub async fn start_upload(state: &AppState, caller: &Caller, pid: i64) -> Result<Upload> {
    permission::require_on(state, caller, Aco::PATIENTS_DOCS, AclLevel::Addonly, pid).await?;
    if patients::get(&state.pool, Pid(pid)).await?.is_none() {
        return Err(DocumentError::NoPatient(pid));
    }
    let site_documents = documents_dir(state)?;
    let settings = settings(state).await?;
    let keys = match settings.encrypt {
        true => Some(keys::current(&state.pool).await?.ok_or_else(|| {
            DocumentError::Unavailable(
                "OpenEMR's `keys` table holds a document key that is not 32 bytes".into(),
            )
        })?),
        false => None,
    };
    let (documents, staging) = blocking(move || {
        let documents = std::fs::canonicalize(&site_documents).or_else(|_| {
            std::fs::create_dir_all(&site_documents)?;
            std::fs::canonicalize(&site_documents)
        })?;
        let staging = Staging::new(files::patient_dir(&documents, pid)?, keys.as_ref())?;
        Ok((documents, staging))
    })
    .await?;
    Ok(Upload { staging: Some(staging), documents, pid, settings, max: state.config.documents.max_bytes })
}

impl Upload {
    pub async fn write(&mut self, piece: Vec<u8>) -> Result<()> {
        let mut staging = self.staging.take().expect("an upload in progress has its file");
        if staging.size() + piece.len() as u64 > self.max {
            return Err(DocumentError::TooLarge(self.max));
        }
        let staging = blocking(move || {
            staging.write(&piece)?;
            Ok(staging)
        })
        .await?;
        self.staging = Some(staging);
        Ok(())
    }
}

/// Validates the form, then files the document as `createDocument` does: the file under its
/// drive uuid, the row, its category, the audit row.
pub async fn finish_upload(
    state: &AppState,
    caller: &Caller,
    upload: Upload,
    form: UploadForm,
) -> Result<DocumentView> {
    let Upload { staging, documents, pid, settings, .. } = upload;
    let staging = staging.expect("an upload in progress has its file");
    let staged = blocking(move || staging.finish()).await?;
    let tree = Tree::new(rows::categories(&state.pool).await?);
    let (category, encounter, name, mimetype) = validate(state, pid, &tree, &settings, &staged, form).await?;
    require_categories(state, caller, pid, &tree, &[category]).await?;
    require_encounter(state, caller, pid, encounter).await?;

    let id = sequences::next_id(&mut *state.pool.acquire().await.map_err(StorageError::from_sqlx)?).await?;
    let mut tx = state.pool.begin().await.map_err(StorageError::from_sqlx)?;
    let drive_uuid = uuid_registry::create_for_drive(&mut tx).await?;
    let uuid = uuid_registry::create(&mut tx, "documents", "id").await?;
    let drive_name = uuid::Uuid::from_bytes(drive_uuid).to_string();
    let hash = staged.hash.clone();
    let url = document::file_url(&documents, pid, &drive_name);
    let row = NewDocument {
        id,
        uuid,
        drive_uuid,
        size: staged.size as i64,
        date: wall_clock_now().trunc_subsecs(0),
        url: &url,
        mimetype: &mimetype,
        owner: caller.user_id.0,
        pid,
        hash: &hash,
        name: &name,
        encounter_id: encounter,
        encrypted: settings.encrypt,
    };
    rows::insert(&mut tx, &row).await?;
    rows::file_in(&mut tx, category, id).await?;
    let path = documents.join(pid.to_string()).join(&drive_name);
    publish(staged, &path).await?;
    if let Err(e) = tx.commit().await {
        let _ = tokio::fs::remove_file(&path).await;
        return Err(StorageError::from_sqlx(e).into());
    }
    let comments = format!("mmt-sidecar uploaded document {id} ({} bytes) to category {category}", row.size);
    audit::record(state, &entry(caller, "other-insert", pid, comments)).await?;
    let stored = rows::get(&state.pool, id).await?.ok_or(DocumentError::NotFound(id))?;
    Ok(DocumentView { row: stored, categories: vec![(category, tree.path(category))] })
}

async fn publish(staged: Staged, path: &Path) -> Result<()> {
    let path = path.to_path_buf();
    blocking(move || staged.publish(&path)).await
}

/// Every problem with the form at once: `(category, encounter, name, mimetype)` when it is good.
async fn validate(
    state: &AppState,
    pid: i64,
    tree: &Tree,
    settings: &Settings,
    staged: &Staged,
    form: UploadForm,
) -> Result<(i64, i64, String, String)> {
    let mut issues = Issues::default();
    if !form.has_file {
        issues.add("file", "send the document as the multipart field `file`");
    }
    let name = form.file_name.as_deref().map(base_name).unwrap_or_default();
    if form.has_file && (name.is_empty() || name.chars().count() > 255) {
        issues.add("file", "the file needs a name of 1 to 255 characters");
    }
    match form.category {
        None => issues.add("category", "required: the id of a document category"),
        Some(c) if tree.get(c).is_none() => issues.add("category", format!("no document category {c}")),
        Some(_) => {}
    }
    if let Some(e) = form.encounter {
        let belongs = encounters::get(&state.pool, e).await?.is_some_and(|row| row.pid == pid);
        if !belongs {
            issues.add("encounter", format!("patient {pid} has no encounter {e}"));
        }
    }
    let mimetype =
        document::stored_type(settings, document::sniff(&staged.head), form.content_type.as_deref());
    if form.has_file {
        let allowed = rows::allowed_types(&state.pool).await?;
        document::check_upload(settings, staged.size, &mimetype, &allowed, &mut issues);
    }
    let category = form.category.unwrap_or_default();
    Ok(issues.into_result((category, form.encounter.unwrap_or(0), name, mimetype))?)
}

/// The name without any folder a browser put in front of it.
fn base_name(raw: &str) -> String {
    raw.rsplit(['/', '\\']).next().unwrap_or_default().trim().to_string()
}

/// `deleter.php`: needs `patients|docs_rm`; the row is marked deleted, the file stays.
pub async fn delete(state: &AppState, caller: &Caller, id: i64) -> Result<()> {
    let row = rows::get(&state.pool, id).await?.ok_or(DocumentError::NotFound(id))?;
    let pid = row.foreign_id.unwrap_or_default();
    permission::require_on(state, caller, Aco::PATIENTS_DOCS_RM, AclLevel::View, pid).await?;
    readable(state, caller, id).await?;
    let mut tx = state.pool.begin().await.map_err(StorageError::from_sqlx)?;
    if !rows::soft_delete(&mut tx, id).await? {
        return Err(DocumentError::NotFound(id));
    }
    tx.commit().await.map_err(StorageError::from_sqlx)?;
    audit::record(state, &entry(caller, "other-update", pid, format!("mmt-sidecar deleted document {id}")))
        .await?;
    Ok(())
}

/// For `mmt-sidecar check`: a summary line, and a problem when the store cannot be used.
pub async fn check_store(state: &AppState) -> Result<(String, Option<String>)> {
    let Ok(dir) = documents_dir(state) else {
        return Ok(("documents: off (OPENEMR_SITE_DIR is not set)".into(), None));
    };
    let shown = dir.display().to_string();
    let writable = blocking(move || {
        let probe = dir.join(format!(".mmt-check-{}", uuid::Uuid::new_v4().simple()));
        let ok = std::fs::write(&probe, b"").is_ok();
        let _ = std::fs::remove_file(&probe);
        Ok(ok)
    })
    .await?;
    let keys = match keys::existing(&state.pool, crypto_gen::CURRENT_VERSION).await? {
        Some(_) => "present",
        None => "absent (created as OpenEMR creates them at the first encrypted upload)",
    };
    let line = format!(
        "documents: {shown} {}; encryption keys: {keys}",
        if writable { "reachable and writable" } else { "NOT writable" }
    );
    let problem =
        (!writable).then(|| format!("{shown} cannot be written: documents need read/write access there"));
    Ok((line, problem))
}
