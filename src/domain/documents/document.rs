//! Rules for patient documents as OpenEMR applies them: its globals, the MIME allow-list, where a
//! file lives under the site folder, and how a download is named.

use std::{
    collections::HashMap,
    path::{Component, Path, PathBuf},
};

use crate::domain::validation::Issues;

/// The globals the document store depends on, with OpenEMR's code defaults when a row is missing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settings {
    /// `drive_encryption`: files are CryptoGen-encrypted with the database keys.
    pub encrypt: bool,
    /// `secure_upload`: only types on the `files_white_list` list may be uploaded.
    pub secure_upload: bool,
    /// `document_storage_method`: 0 is the site's disk, 1 CouchDB (which the sidecar cannot reach).
    pub on_disk: bool,
}

pub const GLOBALS: [&str; 3] = ["drive_encryption", "secure_upload", "document_storage_method"];

impl Settings {
    pub fn from_globals(values: &HashMap<String, String>) -> Self {
        let flag = |name: &str, default: bool| {
            values.get(name).map(|v| v.trim()).map_or(default, |v| !v.is_empty() && v != "0")
        };
        Self {
            encrypt: flag("drive_encryption", true),
            secure_upload: flag("secure_upload", true),
            on_disk: !flag("document_storage_method", false),
        }
    }
}

/// The content type libmagic (PHP's `mime_content_type`) gives the types OpenEMR's allow-list
/// knows, from the first bytes of the file; None for anything else.
pub fn sniff(head: &[u8]) -> Option<&'static str> {
    const SIGNATURES: [(&[u8], &str); 6] = [
        (b"%PDF-", "application/pdf"),
        (b"\x89PNG\r\n\x1a\n", "image/png"),
        (b"\xff\xd8\xff", "image/jpeg"),
        (b"GIF87a", "image/gif"),
        (b"GIF89a", "image/gif"),
        (b"PK\x03\x04", "application/zip"),
    ];
    if let Some((_, mime)) = SIGNATURES.iter().find(|(magic, _)| head.starts_with(magic)) {
        return Some(mime);
    }
    if head.get(128..132) == Some(b"DICM") {
        return Some("application/dicom");
    }
    let text = !head.is_empty() && std::str::from_utf8(head).is_ok_and(|s| !s.contains('\0'));
    // A multi-byte character may be cut at the end of the sniffed head.
    let cut_text = !head.is_empty()
        && std::str::from_utf8(head).err().is_some_and(|e| e.error_len().is_none() && e.valid_up_to() > 0);
    (text || cut_text).then_some("text/plain")
}

/// The type an upload is stored under: what its bytes are; what the client said is believed only
/// when `secure_upload` is off, or a renamed program would pass the allow-list.
pub fn stored_type(settings: &Settings, sniffed: Option<&str>, declared: Option<&str>) -> String {
    let declared = declared.filter(|d| !settings.secure_upload && !d.trim().is_empty());
    sniffed.or(declared).unwrap_or("application/octet-stream").to_string()
}

/// `upload_action_process`'s refusals: an empty file, and a type off the allow-list.
pub fn check_upload(settings: &Settings, size: u64, mime: &str, allowed: &[String], issues: &mut Issues) {
    if size == 0 {
        issues.add("file", "the file is empty");
    }
    if settings.secure_upload && size > 0 && !allowed.iter().any(|a| a == mime) {
        issues.add("file", format!("files of type {mime} may not be uploaded (OpenEMR's files_white_list)"));
    }
}

/// `get_filesystem_filepath`: the file's place relative to `<site>/documents/`, from the last
/// `path_depth` folders of the stored URL and its file name, so a moved site still finds its
/// files. None for a URL that would leave the documents folder.
pub fn relative_path(url: &str, path_depth: i64) -> Option<PathBuf> {
    let path = url.split_once("://").map_or(url, |(_, rest)| rest);
    let parts: Vec<&str> = path.split('/').collect();
    let keep = usize::try_from(path_depth).ok()?.checked_add(1)?;
    let tail = &parts[parts.len().checked_sub(keep)?..];
    let relative: PathBuf = tail.iter().collect();
    let safe = relative.components().all(|c| matches!(c, Component::Normal(_)));
    (safe && tail.iter().all(|p| !p.is_empty())).then_some(relative)
}

/// The `url` OpenEMR stores: the absolute path it wrote to, behind `file://`.
pub fn file_url(documents_dir: &Path, pid: i64, drive_uuid: &str) -> String {
    format!("file://{}/{pid}/{drive_uuid}", documents_dir.display())
}

/// `Content-Disposition` for a download under its original name, safe for any characters.
pub fn content_disposition(name: &str, inline: bool) -> String {
    let kind = if inline { "inline" } else { "attachment" };
    let ascii: String = name
        .chars()
        .map(|c| if c.is_ascii_graphic() && c != '"' && c != '\\' || c == ' ' { c } else { '_' })
        .collect();
    let encoded: String = name
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"!#$&+-.^_`|~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect();
    format!("{kind}; filename=\"{ascii}\"; filename*=UTF-8''{encoded}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globals_default_as_openemrs_code_does() {
        let none = Settings::from_globals(&HashMap::new());
        assert_eq!(none, Settings { encrypt: true, secure_upload: true, on_disk: true });
        let off: HashMap<_, _> =
            [("drive_encryption", "0"), ("secure_upload", "0"), ("document_storage_method", "1")]
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .into();
        assert_eq!(
            Settings::from_globals(&off),
            Settings { encrypt: false, secure_upload: false, on_disk: false }
        );
    }

    #[test]
    fn sniffs_the_allow_listed_types() {
        assert_eq!(sniff(b"%PDF-1.7\n"), Some("application/pdf"));
        assert_eq!(sniff(b"\x89PNG\r\n\x1a\n...."), Some("image/png"));
        assert_eq!(sniff(b"\xff\xd8\xff\xe0"), Some("image/jpeg"));
        assert_eq!(sniff(b"hello, caf\xc3"), Some("text/plain"));
        assert_eq!(sniff(b"MZ\x90\x00\x03"), None);
        let mut dicom = vec![0u8; 128];
        dicom.extend_from_slice(b"DICM");
        assert_eq!(sniff(&dicom), Some("application/dicom"));
    }

    #[test]
    fn a_declared_type_counts_only_without_secure_upload() {
        let secure = Settings { encrypt: true, secure_upload: true, on_disk: true };
        assert_eq!(stored_type(&secure, None, Some("application/pdf")), "application/octet-stream");
        assert_eq!(stored_type(&secure, Some("image/png"), Some("application/pdf")), "image/png");
        let open = Settings { secure_upload: false, ..secure };
        assert_eq!(stored_type(&open, None, Some("application/x-thing")), "application/x-thing");
    }

    #[test]
    fn uploads_are_refused_empty_or_off_the_list() {
        let settings = Settings { encrypt: true, secure_upload: true, on_disk: true };
        let allowed = vec!["application/pdf".to_string()];
        let mut issues = Issues::default();
        check_upload(&settings, 10, "application/pdf", &allowed, &mut issues);
        assert!(issues.0.is_empty());
        check_upload(&settings, 0, "application/pdf", &allowed, &mut issues);
        check_upload(&settings, 10, "application/x-msdownload", &allowed, &mut issues);
        assert_eq!(issues.0.len(), 2);
        let mut issues = Issues::default();
        check_upload(&Settings { secure_upload: false, ..settings }, 10, "x/y", &allowed, &mut issues);
        assert!(issues.0.is_empty());
    }

    #[test]
    fn paths_are_rebuilt_from_the_urls_tail() {
        assert_eq!(
            relative_path("file:///var/www/old/sites/default/documents/7/abc", 1),
            Some(PathBuf::from("7/abc"))
        );
        assert_eq!(relative_path("file:///x/documents/00/12/abc", 2), Some(PathBuf::from("00/12/abc")));
        assert_eq!(relative_path("file:///x/documents/../abc", 1), None);
        assert_eq!(relative_path("abc", 1), None);
    }

    #[test]
    fn downloads_keep_any_name_safely() {
        assert_eq!(
            content_disposition("Résumé \"x\".pdf", false),
            "attachment; filename=\"R_sum_ _x_.pdf\"; filename*=UTF-8''R%C3%A9sum%C3%A9%20%22x%22.pdf"
        );
    }
}
