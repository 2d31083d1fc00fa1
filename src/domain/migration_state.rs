use serde::Serialize;

#[derive(Debug, Clone)]
pub struct AppliedMigration {
    pub version: i64,
    pub success: bool,
    pub checksum: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MigrationState {
    pub applied: Vec<i64>,
    pub pending: Vec<i64>,
    /// Started but never finished: MariaDB DDL is not transactional, so a human must look.
    pub dirty: Vec<i64>,
    /// Applied here but edited since: the embedded file's checksum differs.
    pub modified: Vec<i64>,
    /// Applied by a newer sidecar than this binary.
    pub unknown: Vec<i64>,
}

impl MigrationState {
    pub fn compare(known: impl IntoIterator<Item = (i64, Vec<u8>)>, applied: Vec<AppliedMigration>) -> Self {
        let known: Vec<(i64, Vec<u8>)> = known.into_iter().collect();
        let mut state =
            Self { applied: vec![], pending: vec![], dirty: vec![], modified: vec![], unknown: vec![] };
        for (version, checksum) in &known {
            match applied.iter().find(|a| a.version == *version) {
                None => state.pending.push(*version),
                Some(a) if !a.success => state.dirty.push(*version),
                Some(a) if a.checksum != *checksum => state.modified.push(*version),
                Some(_) => state.applied.push(*version),
            }
        }
        state.unknown = applied
            .iter()
            .filter(|a| !known.iter().any(|(v, _)| *v == a.version))
            .map(|a| a.version)
            .collect();
        state
    }

    pub fn problem(&self) -> Option<String> {
        let list = |v: &[i64]| v.iter().map(i64::to_string).collect::<Vec<_>>().join(", ");
        if !self.dirty.is_empty() {
            Some(format!(
                "migration(s) {} started but did not finish; inspect mmt_schema_migrations",
                list(&self.dirty)
            ))
        } else if !self.modified.is_empty() {
            Some(format!("applied migration(s) {} differ from this build", list(&self.modified)))
        } else if !self.pending.is_empty() {
            Some(format!("migration(s) {} are pending; run `mmt-sidecar migrate`", list(&self.pending)))
        } else {
            None
        }
    }

    pub fn summary(&self) -> String {
        self.problem().unwrap_or_else(|| match self.applied.last() {
            Some(last) => format!("up to date (version {last})"),
            None => "no migrations".into(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn applied(version: i64, success: bool, checksum: &[u8]) -> AppliedMigration {
        AppliedMigration { version, success, checksum: checksum.to_vec() }
    }

    #[test]
    fn classifies_pending_dirty_modified_and_unknown() {
        let known = vec![(1, b"a".to_vec()), (2, b"b".to_vec()), (3, b"c".to_vec()), (4, b"d".to_vec())];
        let state = MigrationState::compare(
            known,
            vec![
                applied(1, true, b"a"),
                applied(2, false, b"b"),
                applied(3, true, b"x"),
                applied(9, true, b"z"),
            ],
        );
        assert_eq!(state.applied, vec![1]);
        assert_eq!(state.dirty, vec![2]);
        assert_eq!(state.modified, vec![3]);
        assert_eq!(state.pending, vec![4]);
        assert_eq!(state.unknown, vec![9]);
        assert!(state.problem().unwrap().contains("did not finish"));
    }

    #[test]
    fn up_to_date_has_no_problem() {
        let state = MigrationState::compare(vec![(1, b"a".to_vec())], vec![applied(1, true, b"a")]);
        assert_eq!(state.problem(), None);
        assert_eq!(state.summary(), "up to date (version 1)");
    }
}
