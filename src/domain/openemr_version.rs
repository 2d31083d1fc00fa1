use std::fmt;

/// The oldest OpenEMR release whose schema the sidecar is written against.
pub const MIN_SUPPORTED_MAJOR: i64 = 7;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenEmrVersion {
    pub major: i64,
    pub minor: i64,
    pub patch: i64,
    pub realpatch: i64,
    pub tag: String,
    pub database: i64,
    pub acl: i64,
}

impl OpenEmrVersion {
    /// The installer overwrites the all-zero row that `sql/database.sql` ships, so zeros mean
    /// a schema that was loaded but never installed.
    pub fn problem(&self) -> Option<String> {
        if self.major == 0 && self.database == 0 {
            Some("the version table is all zeros: this OpenEMR database was never installed".into())
        } else if self.major < MIN_SUPPORTED_MAJOR {
            Some(format!(
                "OpenEMR {self} is older than {MIN_SUPPORTED_MAJOR}.0.0, the oldest supported release"
            ))
        } else {
            None
        }
    }
}

impl fmt::Display for OpenEmrVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}{}", self.major, self.minor, self.patch, self.tag)?;
        if self.realpatch > 0 {
            write!(f, " (patch {})", self.realpatch)?;
        }
        write!(f, " (database {}, acl {})", self.database, self.acl)
    }
}
