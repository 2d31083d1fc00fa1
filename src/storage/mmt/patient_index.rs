use chrono::{NaiveDate, NaiveDateTime};
use sqlx::{MySql, MySqlConnection, MySqlPool, QueryBuilder};

use crate::{
    domain::patient_search::{FieldMatch, Needle, PatientTerms, UNKNOWN_DOB_SORTS_AS, WORST_RANK},
    storage::StorageError,
};

pub struct IndexEntry {
    pub pid: i64,
    pub terms: PatientTerms,
    pub dob: Option<NaiveDate>,
    pub sex: String,
    pub provider_id: Option<i64>,
    pub source_updated: Option<NaiveDateTime>,
}

impl IndexEntry {
    /// Everything indexed about the patient, so a sweep can tell an unchanged row from a changed one
    /// even when both changes fell in the same second of `last_updated`.
    pub fn digest(&self) -> [u8; 32] {
        use sha2::{Digest, Sha256};
        let text = format!("{:?}|{:?}|{}|{:?}", self.terms, self.dob, self.sex, self.provider_id);
        Sha256::digest(text.as_bytes()).into()
    }
}

/// Replaces the index rows of these patients, in the caller's transaction.
pub async fn upsert(conn: &mut MySqlConnection, entries: &[IndexEntry]) -> Result<(), StorageError> {
    if entries.is_empty() {
        return Ok(());
    }
    let mut del = QueryBuilder::<MySql>::new("DELETE FROM mmt_patient_terms WHERE pid IN (");
    let mut list = del.separated(", ");
    for e in entries {
        list.push_bind(e.pid);
    }
    del.push(")");
    del.build().execute(&mut *conn).await.map_err(StorageError::from_sqlx)?;

    let terms: Vec<(&str, i64)> =
        entries.iter().flat_map(|e| e.terms.terms.iter().map(move |t| (t.as_str(), e.pid))).collect();
    for chunk in terms.chunks(2000) {
        let mut q = QueryBuilder::<MySql>::new("INSERT IGNORE INTO mmt_patient_terms (term, pid) ");
        q.push_values(chunk, |mut row, (term, pid)| {
            row.push_bind(*term).push_bind(*pid);
        });
        q.build().execute(&mut *conn).await.map_err(StorageError::from_sqlx)?;
    }
    let mut q = QueryBuilder::<MySql>::new(
        "INSERT INTO mmt_patient_index (pid, sort_last, sort_first, dob, dob_sort, sex, provider_id, source_updated, \
         content_digest) ",
    );
    q.push_values(entries, |mut row, e| {
        row.push_bind(e.pid)
            .push_bind(&e.terms.sort_last)
            .push_bind(&e.terms.sort_first)
            .push_bind(e.dob)
            .push_bind(e.dob.unwrap_or(UNKNOWN_DOB_SORTS_AS))
            .push_bind(&e.sex)
            .push_bind(e.provider_id)
            .push_bind(e.source_updated)
            .push_bind(e.digest().to_vec());
    });
    q.push(
        " ON DUPLICATE KEY UPDATE sort_last = VALUES(sort_last), sort_first = VALUES(sort_first), dob = VALUES(dob), \
         dob_sort = VALUES(dob_sort), sex = VALUES(sex), provider_id = VALUES(provider_id), \
         source_updated = VALUES(source_updated), content_digest = VALUES(content_digest)",
    );
    q.build().execute(&mut *conn).await.map_err(StorageError::from_sqlx)?;
    Ok(())
}

pub async fn remove(conn: &mut MySqlConnection, pid: i64) -> Result<(), StorageError> {
    for sql in ["DELETE FROM mmt_patient_terms WHERE pid = ?", "DELETE FROM mmt_patient_index WHERE pid = ?"]
    {
        sqlx::query(sql).bind(pid).execute(&mut *conn).await.map_err(StorageError::from_sqlx)?;
    }
    Ok(())
}

/// Drops index rows whose patient no longer exists in patient_data.
pub async fn remove_orphans(pool: &MySqlPool) -> Result<u64, StorageError> {
    let mut removed = 0;
    for sql in [
        "DELETE i FROM mmt_patient_index i LEFT JOIN patient_data p ON p.pid = i.pid WHERE p.pid IS NULL",
        "DELETE t FROM mmt_patient_terms t LEFT JOIN patient_data p ON p.pid = t.pid WHERE p.pid IS NULL",
    ] {
        removed += sqlx::query(sql).execute(pool).await.map_err(StorageError::from_sqlx)?.rows_affected();
    }
    Ok(removed)
}

/// The digest of what is indexed for each of these patients.
pub async fn indexed_digests(
    pool: &MySqlPool,
    pids: &[i64],
) -> Result<std::collections::HashMap<i64, Vec<u8>>, StorageError> {
    if pids.is_empty() {
        return Ok(Default::default());
    }
    let mut q =
        QueryBuilder::<MySql>::new("SELECT pid, content_digest FROM mmt_patient_index WHERE pid IN (");
    let mut list = q.separated(", ");
    for pid in pids {
        list.push_bind(*pid);
    }
    q.push(")");
    let rows: Vec<(i64, Vec<u8>)> =
        q.build_query_as().fetch_all(pool).await.map_err(StorageError::from_sqlx)?;
    Ok(rows.into_iter().collect())
}

pub async fn count(pool: &MySqlPool) -> Result<i64, StorageError> {
    sqlx::query_scalar("SELECT COUNT(*) FROM mmt_patient_index")
        .fetch_one(pool)
        .await
        .map_err(StorageError::from_sqlx)
}

pub async fn state(pool: &MySqlPool) -> Result<Option<(Option<NaiveDateTime>, NaiveDateTime)>, StorageError> {
    sqlx::query_as("SELECT watermark, synced_at FROM mmt_patient_index_state WHERE id = 1")
        .fetch_optional(pool)
        .await
        .map_err(StorageError::from_sqlx)
}

pub async fn save_state(
    pool: &MySqlPool,
    watermark: Option<NaiveDateTime>,
    synced_at: NaiveDateTime,
) -> Result<(), StorageError> {
    sqlx::query(
        "INSERT INTO mmt_patient_index_state (id, watermark, synced_at) VALUES (1, ?, ?) \
         ON DUPLICATE KEY UPDATE watermark = VALUES(watermark), synced_at = VALUES(synced_at)",
    )
    .bind(watermark)
    .bind(synced_at)
    .execute(pool)
    .await
    .map_err(StorageError::from_sqlx)?;
    Ok(())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortKey {
    Name,
    Dob,
    Pid,
    /// By `patient_search::rank` of the search words, then by name.
    Relevance,
}

/// A position in a sorted listing: the sort key values of the last row returned.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum After {
    Name(String, String, i64),
    Dob(NaiveDate, i64),
    Pid(i64),
    Rank(u8, String, String, i64),
}

#[derive(Debug, Clone, Default)]
pub struct Filters {
    pub needles: Vec<Needle>,
    pub fields: Vec<FieldMatch>,
    pub sex: Option<String>,
    pub dob_from: Option<NaiveDate>,
    pub dob_to: Option<NaiveDate>,
    pub provider_id: Option<i64>,
    pub facility_id: Option<i64>,
    /// Each must hold the patient: the caller's panel under the assigned-patient policy, and
    /// `?assigned=me`.
    pub panels: Vec<Panel>,
}

/// A user's patients as the search index sees them: those whose provider they are, and `others`
/// (care teams, grants, recent visits), found beforehand. The deprecated `care_team_provider`
/// lists, which the index does not hold, are honoured by single-patient checks only.
#[derive(Debug, Clone, Default)]
pub struct Panel {
    pub provider_id: i64,
    pub others: Vec<i64>,
}

pub(crate) fn escape_like(term: &str) -> String {
    term.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_")
}

fn push_filters(q: &mut QueryBuilder<MySql>, f: &Filters) {
    q.push(" WHERE 1 = 1");
    if let Some(sex) = &f.sex {
        q.push(" AND i.sex = ").push_bind(sex);
    }
    if let Some(from) = f.dob_from {
        q.push(" AND i.dob >= ").push_bind(from);
    }
    if let Some(to) = f.dob_to {
        q.push(" AND i.dob <= ").push_bind(to);
    }
    if let Some(provider) = f.provider_id {
        q.push(" AND i.provider_id = ").push_bind(provider);
    }
    if let Some(facility) = f.facility_id {
        q.push(" AND EXISTS (SELECT 1 FROM form_encounter fe WHERE fe.pid = i.pid AND fe.facility_id = ")
            .push_bind(facility)
            .push(")");
    }
    for panel in &f.panels {
        q.push(" AND (i.provider_id = ").push_bind(panel.provider_id);
        if !panel.others.is_empty() {
            q.push(" OR i.pid IN (");
            let mut listed = q.separated(", ");
            for pid in &panel.others {
                listed.push_bind(*pid);
            }
            q.push(")");
        }
        q.push(")");
    }
    for field in &f.fields {
        push_field(q, field);
    }
    for needle in &f.needles {
        match needle {
            Needle::Dob(date) => {
                q.push(" AND i.dob = ").push_bind(*date);
            }
            Needle::Prefix(term) => {
                q.push(" AND i.pid IN (SELECT t.pid FROM mmt_patient_terms t WHERE t.term LIKE ")
                    .push_bind(format!("{}%", escape_like(term)))
                    .push(")");
            }
        }
    }
}

fn push_field(q: &mut QueryBuilder<MySql>, field: &FieldMatch) {
    let prefix = |word: &str| format!("{}%", escape_like(word));
    match field {
        FieldMatch::Family(name) => {
            q.push(" AND i.sort_last LIKE ").push_bind(prefix(name));
        }
        FieldMatch::Given(name) => {
            q.push(" AND i.sort_first LIKE ").push_bind(prefix(name));
        }
        FieldMatch::NameWord(word) => {
            let inner = format!("% {}%", escape_like(word));
            q.push(" AND (i.sort_last LIKE ").push_bind(prefix(word));
            q.push(" OR i.sort_first LIKE ").push_bind(prefix(word));
            q.push(" OR i.sort_last LIKE ").push_bind(inner.clone());
            q.push(" OR i.sort_first LIKE ").push_bind(inner).push(")");
        }
        FieldMatch::ChartNumber(pubpid) => {
            q.push(" AND i.pid IN (SELECT p.pid FROM patient_data p WHERE p.pubpid = ")
                .push_bind(pubpid.clone())
                .push(")");
        }
        FieldMatch::Term(term) => {
            q.push(" AND i.pid IN (SELECT t.pid FROM mmt_patient_terms t WHERE t.term = ")
                .push_bind(term.clone())
                .push(")");
        }
        FieldMatch::Pid(pid) => {
            q.push(" AND i.pid = ").push_bind(*pid);
        }
    }
}

/// `patient_search::rank` in SQL, over the search words in `needles`.
fn push_rank(q: &mut QueryBuilder<MySql>, needles: &[Needle]) {
    let words: Vec<&String> = needles
        .iter()
        .filter_map(|n| match n {
            Needle::Prefix(word) => Some(word),
            Needle::Dob(_) => None,
        })
        .collect();
    if words.is_empty() {
        q.push(format!("{WORST_RANK}"));
        return;
    }
    q.push("CAST(LEAST(").push(format!("{WORST_RANK}"));
    for raw in words {
        let word = escape_like(raw);
        q.push(", CASE WHEN REPLACE(i.sort_last, ' ', '') = ").push_bind(raw.clone());
        q.push(" OR CONCAT(' ', i.sort_last, ' ') LIKE ").push_bind(format!("% {word} %"));
        q.push(" THEN 0 WHEN REPLACE(i.sort_last, ' ', '') LIKE ").push_bind(format!("{word}%"));
        q.push(" OR CONCAT(' ', i.sort_last) LIKE ").push_bind(format!("% {word}%"));
        q.push(" THEN 1 WHEN CONCAT(' ', i.sort_first) LIKE ").push_bind(format!("% {word}%"));
        q.push(format!(" THEN 2 ELSE {WORST_RANK} END"));
    }
    q.push(") AS SIGNED)");
}

pub async fn total(pool: &MySqlPool, f: &Filters) -> Result<i64, StorageError> {
    let mut q = QueryBuilder::new("SELECT COUNT(*) FROM mmt_patient_index i");
    push_filters(&mut q, f);
    q.build_query_scalar().fetch_one(pool).await.map_err(StorageError::from_sqlx)
}

pub struct Page {
    pub sort: SortKey,
    pub descending: bool,
    pub after: Option<After>,
    pub offset: Option<u64>,
    pub limit: u64,
}

/// One page of matching pids, each with the key to continue after it.
pub async fn search(pool: &MySqlPool, f: &Filters, page: &Page) -> Result<Vec<(i64, After)>, StorageError> {
    let mut q = QueryBuilder::new("SELECT i.pid, i.sort_last, i.sort_first, i.dob_sort, ");
    push_rank(&mut q, &f.needles);
    q.push(" AS search_rank FROM mmt_patient_index i");
    push_filters(&mut q, f);
    let op = if page.descending { " < " } else { " > " };
    match &page.after {
        Some(After::Name(last, first, pid)) => {
            q.push(" AND (i.sort_last, i.sort_first, i.pid)").push(op).push("(");
            q.push_bind(last.clone())
                .push(", ")
                .push_bind(first.clone())
                .push(", ")
                .push_bind(*pid)
                .push(")");
        }
        Some(After::Dob(dob, pid)) => {
            q.push(" AND (i.dob_sort, i.pid)")
                .push(op)
                .push("(")
                .push_bind(*dob)
                .push(", ")
                .push_bind(*pid)
                .push(")");
        }
        Some(After::Pid(pid)) => {
            q.push(" AND i.pid").push(op).push_bind(*pid);
        }
        Some(After::Rank(rank, last, first, pid)) => {
            q.push(" AND (");
            push_rank(&mut q, &f.needles);
            q.push(", i.sort_last, i.sort_first, i.pid)").push(op).push("(");
            q.push_bind(i64::from(*rank))
                .push(", ")
                .push_bind(last.clone())
                .push(", ")
                .push_bind(first.clone())
                .push(", ")
                .push_bind(*pid)
                .push(")");
        }
        None => {}
    }
    let dir = if page.descending { " DESC" } else { "" };
    let order = match page.sort {
        SortKey::Name => format!(" ORDER BY i.sort_last{dir}, i.sort_first{dir}, i.pid{dir}"),
        SortKey::Dob => format!(" ORDER BY i.dob_sort{dir}, i.pid{dir}"),
        SortKey::Pid => format!(" ORDER BY i.pid{dir}"),
        SortKey::Relevance => {
            format!(" ORDER BY search_rank{dir}, i.sort_last{dir}, i.sort_first{dir}, i.pid{dir}")
        }
    };
    q.push(order).push(" LIMIT ").push_bind(page.limit as i64);
    if let Some(offset) = page.offset {
        q.push(" OFFSET ").push_bind(offset as i64);
    }
    let rows: Vec<(i64, String, String, NaiveDate, i64)> =
        q.build_query_as().fetch_all(pool).await.map_err(StorageError::from_sqlx)?;
    Ok(rows
        .into_iter()
        .map(|(pid, last, first, dob, rank)| {
            let after = match page.sort {
                SortKey::Name => After::Name(last, first, pid),
                SortKey::Dob => After::Dob(dob, pid),
                SortKey::Pid => After::Pid(pid),
                SortKey::Relevance => After::Rank(u8::try_from(rank).unwrap_or(WORST_RANK), last, first, pid),
            };
            (pid, after)
        })
        .collect())
}
