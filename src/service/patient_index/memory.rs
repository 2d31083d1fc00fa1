//! The patient search index in this replica's memory: the terms `mmt_patient_index` holds, in an
//! `fst` map from term to patients (roaring bitmaps), so a search is a few set operations instead
//! of a query. Patients are numbered in name order at every merge, so a name-sorted page is the
//! first matching numbers after the cursor, however many patients match. Changes since the last
//! merge wait in a small overlay.

use std::{
    cmp::Ordering,
    collections::{BTreeMap, HashMap, HashSet},
    ops::Bound,
    sync::Arc,
};

use chrono::NaiveDate;
use fst::{Automaton, IntoStreamer, Map, MapBuilder, Streamer, automaton::Str};
use roaring::{MultiOps, RoaringBitmap};

use crate::{
    domain::patient_search::{FieldMatch, Needle, UNKNOWN_DOB_SORTS_AS, rank},
    storage::mmt::patient_index::{After, Filters, IndexEntry, Page, SortKey},
};

/// A term naming one patient keeps that patient's number in its value, marked by this bit.
const SINGLE: u64 = 1 << 63;
/// The overlay is merged once it holds this many patients, or an eighth of the base if more.
const MIN_OVERLAY: usize = 16_384;

#[derive(Clone)]
struct Doc {
    pid: i64,
    last: Box<str>,
    first: Box<str>,
    dob: Option<NaiveDate>,
    sex: u16,
    provider_id: Option<i64>,
    digest: u64,
}

impl Doc {
    fn name_key(&self) -> (&str, &str, i64) {
        (&self.last, &self.first, self.pid)
    }

    fn dob_key(&self) -> (NaiveDate, i64) {
        (self.dob.unwrap_or(UNKNOWN_DOB_SORTS_AS), self.pid)
    }

    fn after(&self, sort: SortKey, rank: impl FnOnce() -> u8) -> After {
        match sort {
            SortKey::Name => After::Name(self.last.to_string(), self.first.to_string(), self.pid),
            SortKey::Dob => After::Dob(self.dob_key().0, self.pid),
            SortKey::Pid => After::Pid(self.pid),
            SortKey::Relevance => {
                After::Rank(rank(), self.last.to_string(), self.first.to_string(), self.pid)
            }
        }
    }

    /// How this patient sorts against a cursor in the cursor's own key (`rank` is the patient's
    /// rank for this search, asked only for a relevance cursor).
    fn cmp_after(&self, after: &After, rank: impl FnOnce() -> u8) -> Ordering {
        match after {
            After::Name(last, first, pid) => self.name_key().cmp(&(last.as_str(), first.as_str(), *pid)),
            After::Dob(dob, pid) => self.dob_key().cmp(&(*dob, *pid)),
            After::Pid(pid) => self.pid.cmp(pid),
            After::Rank(at, last, first, pid) => {
                (rank(), self.name_key()).cmp(&(*at, (last.as_str(), first.as_str(), *pid)))
            }
        }
    }
}

/// What the last merge built; shared with the merge that replaces it.
#[derive(Default)]
struct Base {
    /// In name order: a patient's number is its place here.
    docs: Vec<Doc>,
    terms: Map<Vec<u8>>,
    postings: Vec<RoaringBitmap>,
    /// The patients with a term starting with each prefix up to [`SHORT_PREFIX`] characters: such
    /// prefixes span too many terms to gather at search time.
    short: HashMap<Box<[u8]>, RoaringBitmap>,
}

impl Base {
    fn posting(&self, value: u64) -> RoaringBitmap {
        match value & SINGLE {
            0 => self.postings[value as usize].clone(),
            _ => RoaringBitmap::from_iter([(value & !SINGLE) as u32]),
        }
    }
}

#[derive(Default)]
pub struct MemoryIndex {
    base: Arc<Base>,
    /// Patients indexed since the merge, numbered on from the base.
    overlay_docs: Vec<Doc>,
    overlay_terms: BTreeMap<Box<str>, RoaringBitmap>,
    /// Numbers that still stand for a patient: a change numbers the patient anew.
    live: RoaringBitmap,
    by_pid: HashMap<i64, u32>,
    sexes: Vec<Box<str>>,
}

/// The searches this index cannot answer (they need `patient_data` or `form_encounter`).
pub fn answers(f: &Filters) -> bool {
    f.facility_id.is_none() && !f.fields.iter().any(|m| matches!(m, FieldMatch::ChartNumber(_)))
}

impl MemoryIndex {
    pub fn patients(&self) -> u64 {
        self.live.len()
    }

    /// Roughly what the index holds on the heap (allocator overhead aside), for the log.
    pub fn heap_bytes(&self) -> usize {
        let docs = |docs: &[Doc]| {
            docs.iter().map(|d| size_of::<Doc>() + d.last.len() + d.first.len()).sum::<usize>()
        };
        let bitmaps = |set: &mut dyn Iterator<Item = &RoaringBitmap>| {
            set.map(RoaringBitmap::serialized_size).sum::<usize>()
        };
        docs(&self.base.docs)
            + docs(&self.overlay_docs)
            + self.base.terms.as_fst().as_bytes().len()
            + bitmaps(&mut self.base.postings.iter())
            + bitmaps(&mut self.base.short.values())
            + bitmaps(&mut self.overlay_terms.values())
            + self.overlay_terms.keys().map(|k| k.len()).sum::<usize>()
            + self.by_pid.capacity() * size_of::<(i64, u32)>()
            + self.live.serialized_size()
    }

    pub fn pids(&self) -> impl Iterator<Item = i64> + '_ {
        self.by_pid.keys().copied()
    }

    fn doc(&self, id: u32) -> &Doc {
        let id = id as usize;
        match self.base.docs.get(id) {
            Some(doc) => doc,
            None => &self.overlay_docs[id - self.base.docs.len()],
        }
    }

    fn sex_id(&mut self, sex: &str) -> u16 {
        if let Some(at) = self.sexes.iter().position(|s| &**s == sex) {
            return at as u16;
        }
        self.sexes.push(sex.into());
        (self.sexes.len() - 1) as u16
    }

    /// Indexes the patient anew unless the index already holds exactly this; says whether it did.
    pub fn upsert(&mut self, entry: &IndexEntry) -> bool {
        let digest = u64::from_le_bytes(entry.digest()[..8].try_into().expect("eight bytes"));
        if let Some(&id) = self.by_pid.get(&entry.pid) {
            if self.doc(id).digest == digest {
                return false;
            }
            self.live.remove(id);
        }
        let id = u32::try_from(self.base.docs.len() + self.overlay_docs.len()).expect("under 2^32 entries");
        let sex = self.sex_id(&entry.sex);
        self.overlay_docs.push(Doc {
            pid: entry.pid,
            last: entry.terms.sort_last.as_str().into(),
            first: entry.terms.sort_first.as_str().into(),
            dob: entry.dob,
            sex,
            provider_id: entry.provider_id,
            digest,
        });
        for term in &entry.terms.terms {
            self.overlay_terms.entry(term.as_str().into()).or_default().insert(id);
        }
        self.live.insert(id);
        self.by_pid.insert(entry.pid, id);
        true
    }

    pub fn remove(&mut self, pid: i64) -> bool {
        self.by_pid.remove(&pid).is_some_and(|id| self.live.remove(id))
    }

    pub fn needs_merge(&self) -> bool {
        self.overlay_docs.len() > MIN_OVERLAY.max(self.base.docs.len() / 8)
    }

    /// The same patients, numbered afresh in name order, with an empty overlay.
    pub fn merged(&self) -> MemoryIndex {
        let mut order: Vec<u32> = self.live.iter().collect();
        // The base's numbers are already in name order: the sort merges the overlay into them.
        order.sort_by(|a, b| self.doc(*a).name_key().cmp(&self.doc(*b).name_key()));
        let mut renumbered = vec![u32::MAX; self.base.docs.len() + self.overlay_docs.len()];
        for (new, old) in order.iter().enumerate() {
            renumbered[*old as usize] = new as u32;
        }
        let docs: Vec<Doc> = order.iter().map(|id| self.doc(*id).clone()).collect();
        let by_pid = docs.iter().enumerate().map(|(id, d)| (d.pid, id as u32)).collect();
        let live = RoaringBitmap::from_sorted_iter(0..docs.len() as u32).expect("sorted");
        MemoryIndex {
            base: Arc::new(Base { docs, ..self.merged_terms(&renumbered) }),
            overlay_docs: Vec::new(),
            overlay_terms: BTreeMap::new(),
            live,
            by_pid,
            sexes: self.sexes.clone(),
        }
    }

    /// The terms, renumbered, in a base that has no documents yet.
    fn merged_terms(&self, renumbered: &[u32]) -> Base {
        let mut builder = MapBuilder::memory();
        let mut postings = Vec::new();
        let mut short = ShortPrefixes::default();
        let mut stream = self.base.terms.stream();
        let mut from_base = stream.next().map(|(k, v)| (k.to_vec(), v));
        let mut overlay = self.overlay_terms.iter().peekable();
        let mut ids: Vec<u32> = Vec::new();
        loop {
            let over_key = overlay.peek().map(|(k, _)| k.as_bytes());
            let order = match (&from_base, over_key) {
                (None, None) => break,
                (Some(_), None) => Ordering::Less,
                (None, Some(_)) => Ordering::Greater,
                (Some((b, _)), Some(o)) => b.as_slice().cmp(o),
            };
            ids.clear();
            let mut key = Vec::new();
            if order != Ordering::Greater {
                let (k, value) = from_base.take().expect("a base term");
                ids.extend(self.base.posting(value).iter().map(|id| renumbered[id as usize]));
                key = k;
                from_base = stream.next().map(|(k, v)| (k.to_vec(), v));
            }
            if order != Ordering::Less {
                let (k, docs) = overlay.next().expect("an overlay term");
                ids.extend(docs.iter().map(|id| renumbered[id as usize]));
                key = k.as_bytes().to_vec();
            }
            ids.retain(|id| *id != u32::MAX);
            if ids.is_empty() {
                continue;
            }
            ids.sort_unstable();
            ids.dedup();
            let value = match ids.as_slice() {
                [one] => SINGLE | u64::from(*one),
                many => {
                    postings.push(RoaringBitmap::from_sorted_iter(many.iter().copied()).expect("sorted"));
                    (postings.len() - 1) as u64
                }
            };
            builder.insert(&key, value).expect("terms arrive in order");
            short.add(&key, &ids);
        }
        Base { docs: Vec::new(), terms: builder.into_map(), postings, short: short.finish() }
    }

    /// The patients with a term starting with `prefix`.
    fn prefixed(&self, prefix: &str) -> RoaringBitmap {
        let mut found = match prefix.len() {
            1..=SHORT_PREFIX => self.base.short.get(prefix.as_bytes()).cloned().unwrap_or_default(),
            _ => {
                let (mut singles, mut postings) = (Vec::new(), Vec::new());
                let mut stream = self.base.terms.search(Str::new(prefix).starts_with()).into_stream();
                while let Some((_, value)) = stream.next() {
                    match value & SINGLE {
                        0 => postings.push(&self.base.postings[value as usize]),
                        _ => singles.push((value & !SINGLE) as u32),
                    }
                }
                singles.sort_unstable();
                singles.dedup();
                let singles = RoaringBitmap::from_sorted_iter(singles).expect("sorted");
                // One union of them all: folding them in one at a time copies the growing result
                // each time, which made a common three-letter prefix cost milliseconds at 1M patients.
                postings.into_iter().chain([&singles]).union()
            }
        };
        let from = (Bound::Included(prefix), Bound::Unbounded);
        for (_, docs) in self.overlay_terms.range::<str, _>(from).take_while(|(k, _)| k.starts_with(prefix)) {
            found |= docs;
        }
        found
    }

    fn exact(&self, term: &str) -> RoaringBitmap {
        let mut found = self.base.terms.get(term).map(|v| self.base.posting(v)).unwrap_or_default();
        if let Some(docs) = self.overlay_terms.get(term) {
            found |= docs;
        }
        found
    }

    /// The patients every needle and indexed field could match; what the terms cannot tell apart
    /// is left to [`Query::keeps`].
    fn candidates(&self, f: &Filters) -> RoaringBitmap {
        let mut sets = Vec::new();
        for needle in &f.needles {
            if let Needle::Prefix(term) = needle {
                sets.push(self.prefixed(term));
            }
        }
        for field in &f.fields {
            match field {
                FieldMatch::Family(name) | FieldMatch::Given(name) | FieldMatch::NameWord(name) => {
                    if let Some(word) = name.split(' ').next().filter(|w| !w.is_empty()) {
                        sets.push(self.prefixed(word));
                    }
                }
                FieldMatch::Term(term) => sets.push(self.exact(term)),
                FieldMatch::Pid(pid) => sets
                    .push(self.by_pid.get(pid).map(|id| RoaringBitmap::from_iter([*id])).unwrap_or_default()),
                FieldMatch::ChartNumber(_) => {}
            }
        }
        sets.sort_by_key(RoaringBitmap::len);
        let mut sets = sets.into_iter();
        let Some(mut found) = sets.next() else { return self.live.clone() };
        for set in sets {
            found &= set;
        }
        found &= &self.live;
        found
    }

    /// The total and one page of a search, as `patient_index::total` and `search` give them.
    pub fn search(&self, f: &Filters, page: &Page) -> (i64, Vec<(i64, After)>) {
        let query = Query::new(self, f);
        let found = self.candidates(f);
        let total = match query.filters_rows() {
            false => found.len() as i64,
            true => found.iter().filter(|id| query.keeps(self.doc(*id))).count() as i64,
        };
        let wanted = page.offset.unwrap_or(0).saturating_add(page.limit) as usize;
        let mut hits = match page.sort {
            SortKey::Name => self.by_name(&found, &query, page, wanted),
            _ => self.by_key(&found, &query, page, wanted),
        };
        hits.drain(..hits.len().min(page.offset.unwrap_or(0) as usize));
        let rows = hits
            .into_iter()
            .map(|id| self.doc(id))
            .map(|d| (d.pid, d.after(page.sort, || query.rank(d))))
            .collect();
        (total, rows)
    }

    fn past_cursor(doc: &Doc, query: &Query, page: &Page) -> bool {
        page.after.as_ref().is_none_or(|after| match page.descending {
            false => doc.cmp_after(after, || query.rank(doc)) == Ordering::Greater,
            true => doc.cmp_after(after, || query.rank(doc)) == Ordering::Less,
        })
    }

    /// Name order: the base's numbers are in it, so its part is a walk from the cursor; the
    /// overlay's few are sorted and merged in.
    fn by_name(&self, found: &RoaringBitmap, query: &Query, page: &Page, wanted: usize) -> Vec<u32> {
        let base_len = self.base.docs.len() as u32;
        let kept = |id: &u32| query.keeps(self.doc(*id)) && Self::past_cursor(self.doc(*id), query, page);
        let mut overlay_ids = found.iter();
        overlay_ids.advance_to(base_len);
        let mut overlay: Vec<u32> = overlay_ids.filter(kept).collect();
        let by_key = |a: &u32, b: &u32| self.doc(*a).name_key().cmp(&self.doc(*b).name_key());
        let mut iter = found.iter();
        let start = page.after.as_ref().map(|after| {
            self.base.docs.partition_point(|d| d.cmp_after(after, || query.rank(d)) != Ordering::Greater)
                as u32
        });
        let base: Box<dyn Iterator<Item = u32>> = match page.descending {
            false => {
                iter.advance_to(start.unwrap_or(0));
                Box::new(iter.take_while(move |id| *id < base_len))
            }
            true => {
                overlay.sort_by(|a, b| by_key(b, a));
                let end = page.after.as_ref().map_or(base_len, |after| {
                    self.base.docs.partition_point(|d| d.cmp_after(after, || query.rank(d)) == Ordering::Less)
                        as u32
                });
                match end {
                    0 => Box::new(std::iter::empty()),
                    end => {
                        iter.advance_back_to(end - 1);
                        Box::new(iter.rev().skip_while(move |id| *id >= base_len))
                    }
                }
            }
        };
        if !page.descending {
            overlay.sort_by(by_key);
        }
        let mut base = base.filter(|id| query.keeps(self.doc(*id))).peekable();
        let mut overlay = overlay.into_iter().peekable();
        let mut hits = Vec::with_capacity(wanted.min(1024));
        while hits.len() < wanted {
            let next = match (base.peek(), overlay.peek()) {
                (None, None) => break,
                (Some(_), None) => base.next(),
                (None, Some(_)) => overlay.next(),
                (Some(b), Some(o)) => {
                    let base_first = by_key(b, o) == Ordering::Less;
                    if base_first != page.descending { base.next() } else { overlay.next() }
                }
            };
            hits.extend(next);
        }
        hits
    }

    /// Birth date, pid or relevance order: every match is sorted (these orders are asked for
    /// less often than name order, and relevance depends on the words searched).
    fn by_key(&self, found: &RoaringBitmap, query: &Query, page: &Page, wanted: usize) -> Vec<u32> {
        let mut ranked: Vec<(u8, u32)> = found
            .iter()
            .filter(|id| query.keeps(self.doc(*id)) && Self::past_cursor(self.doc(*id), query, page))
            .map(|id| match page.sort {
                SortKey::Relevance => (query.rank(self.doc(id)), id),
                _ => (0, id),
            })
            .collect();
        let order = |(rank_a, a): &(u8, u32), (rank_b, b): &(u8, u32)| {
            let (a, b) = (self.doc(*a), self.doc(*b));
            match page.sort {
                SortKey::Dob => a.dob_key().cmp(&b.dob_key()),
                SortKey::Pid => a.pid.cmp(&b.pid),
                SortKey::Name | SortKey::Relevance => (rank_a, a.name_key()).cmp(&(rank_b, b.name_key())),
            }
        };
        ranked.sort_by(|a, b| match page.descending {
            false => order(a, b),
            true => order(b, a),
        });
        ranked.truncate(wanted);
        ranked.into_iter().map(|(_, id)| id).collect()
    }
}

/// The conditions of a search that the terms alone cannot decide, checked patient by patient.
struct Query<'a> {
    f: &'a Filters,
    sex: Option<Option<u16>>,
    dobs: Vec<NaiveDate>,
    panels: Vec<(i64, HashSet<i64>)>,
}

impl<'a> Query<'a> {
    fn rank(&self, doc: &Doc) -> u8 {
        rank(&self.f.needles, &doc.last, &doc.first)
    }

    fn new(index: &MemoryIndex, f: &'a Filters) -> Self {
        Query {
            f,
            sex: f
                .sex
                .as_ref()
                .map(|s| index.sexes.iter().position(|known| &**known == s).map(|at| at as u16)),
            dobs: f
                .needles
                .iter()
                .filter_map(|n| match n {
                    Needle::Dob(date) => Some(*date),
                    Needle::Prefix(_) => None,
                })
                .collect(),
            panels: f.panels.iter().map(|p| (p.provider_id, p.others.iter().copied().collect())).collect(),
        }
    }

    /// Whether any patient could be left out by [`Self::keeps`].
    fn filters_rows(&self) -> bool {
        let f = self.f;
        self.sex.is_some()
            || f.dob_from.is_some()
            || f.dob_to.is_some()
            || f.provider_id.is_some()
            || !self.panels.is_empty()
            || !self.dobs.is_empty()
            || f.fields
                .iter()
                .any(|m| matches!(m, FieldMatch::Family(_) | FieldMatch::Given(_) | FieldMatch::NameWord(_)))
    }

    fn keeps(&self, doc: &Doc) -> bool {
        let f = self.f;
        self.sex.is_none_or(|sex| sex == Some(doc.sex))
            && f.dob_from.is_none_or(|from| doc.dob.is_some_and(|d| d >= from))
            && f.dob_to.is_none_or(|to| doc.dob.is_some_and(|d| d <= to))
            && f.provider_id.is_none_or(|p| doc.provider_id == Some(p))
            && self.dobs.iter().all(|date| doc.dob == Some(*date))
            && self
                .panels
                .iter()
                .all(|(provider, others)| doc.provider_id == Some(*provider) || others.contains(&doc.pid))
            && f.fields.iter().all(|m| field_keeps(m, doc))
    }
}

fn field_keeps(field: &FieldMatch, doc: &Doc) -> bool {
    let word_starts = |text: &str, word: &str| text.starts_with(word) || text.contains(&format!(" {word}"));
    match field {
        FieldMatch::Family(name) => doc.last.starts_with(name.as_str()),
        FieldMatch::Given(name) => doc.first.starts_with(name.as_str()),
        FieldMatch::NameWord(word) => word_starts(&doc.last, word) || word_starts(&doc.first, word),
        FieldMatch::ChartNumber(_) | FieldMatch::Term(_) | FieldMatch::Pid(_) => true,
    }
}

/// Prefixes up to this long have their patients set aside at each merge. Longer ones are streamed
/// from the terms; three characters in, that still meant tens of thousands of terms at 1M patients
/// (e-mail addresses and phone numbers are one term per patient).
const SHORT_PREFIX: usize = 3;

/// Gathers the prefix sets up to [`SHORT_PREFIX`] characters while the terms pass in order: each
/// prefix's terms arrive together.
#[derive(Default)]
struct ShortPrefixes {
    runs: [(Vec<u8>, Vec<u32>); SHORT_PREFIX],
    done: HashMap<Box<[u8]>, RoaringBitmap>,
}

impl ShortPrefixes {
    fn add(&mut self, term: &[u8], ids: &[u32]) {
        for (len, run) in (1..=SHORT_PREFIX).zip(self.runs.iter_mut()) {
            let Some(prefix) = term.get(..len) else { continue };
            if run.0 != prefix {
                Self::close(&mut self.done, run);
                run.0 = prefix.to_vec();
            }
            run.1.extend_from_slice(ids);
        }
    }

    fn close(done: &mut HashMap<Box<[u8]>, RoaringBitmap>, run: &mut (Vec<u8>, Vec<u32>)) {
        if run.1.is_empty() {
            return;
        }
        run.1.sort_unstable();
        run.1.dedup();
        let ids = RoaringBitmap::from_sorted_iter(run.1.drain(..)).expect("sorted");
        done.insert(std::mem::take(&mut run.0).into_boxed_slice(), ids);
    }

    fn finish(mut self) -> HashMap<Box<[u8]>, RoaringBitmap> {
        for run in &mut self.runs {
            Self::close(&mut self.done, run);
        }
        self.done
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::{
        domain::patient_search::{TermSource, parse_query, terms_of},
        storage::mmt::patient_index::Panel,
    };

    const FIRST: &[&str] = &["Maria", "María José", "Mario", "Zoë", "Jose", "Ana", "Go", "Grace"];
    const LAST: &[&str] =
        &["Garcia", "García López", "Gomez", "Go", "O'Brien", "de la Cruz", "Smith", "Nguyễn"];
    const SEXES: &[&str] = &["Female", "Male", "UNK"];

    #[derive(Debug, Clone)]
    struct Patient {
        first: usize,
        last: usize,
        phone: u32,
        dob: Option<u16>,
        sex: usize,
        provider: i64,
    }

    fn patient() -> impl Strategy<Value = Patient> {
        (
            0..FIRST.len(),
            0..LAST.len(),
            5_550_000u32..5_560_000,
            proptest::option::of(0u16..40),
            0..3usize,
            1..4i64,
        )
            .prop_map(|(first, last, phone, dob, sex, provider)| Patient {
                first,
                last,
                phone,
                dob,
                sex,
                provider,
            })
    }

    fn entry(pid: i64, p: &Patient) -> IndexEntry {
        let phone = p.phone.to_string();
        let email = format!("{}{pid}@example.org", FIRST[p.first].to_lowercase());
        let terms = terms_of(&TermSource {
            pid,
            first_name: FIRST[p.first],
            middle_name: "",
            last_name: LAST[p.last],
            preferred_name: "",
            pubpid: &format!("MRN{pid}"),
            email: &email,
            phones: [&phone, "", ""],
        });
        IndexEntry {
            pid,
            terms,
            dob: p
                .dob
                .map(|d| NaiveDate::from_ymd_opt(1980, 1, 1).unwrap() + chrono::Days::new(u64::from(d))),
            sex: SEXES[p.sex].into(),
            provider_id: Some(p.provider),
            source_updated: None,
        }
    }

    /// What the SQL index answers, by a plain scan of every entry.
    fn scan(entries: &BTreeMap<i64, IndexEntry>, f: &Filters, page: &Page) -> Vec<i64> {
        let starts = |e: &IndexEntry, t: &str| e.terms.terms.iter().any(|term| term.starts_with(t));
        let word = |text: &str, w: &str| text.starts_with(w) || text.contains(&format!(" {w}"));
        let mut hits: Vec<&IndexEntry> = entries
            .values()
            .filter(|e| {
                f.needles.iter().all(|n| match n {
                    Needle::Prefix(t) => starts(e, t),
                    Needle::Dob(d) => e.dob == Some(*d),
                }) && f.fields.iter().all(|m| match m {
                    FieldMatch::Family(n) => e.terms.sort_last.starts_with(n.as_str()),
                    FieldMatch::Given(n) => e.terms.sort_first.starts_with(n.as_str()),
                    FieldMatch::NameWord(w) => word(&e.terms.sort_last, w) || word(&e.terms.sort_first, w),
                    FieldMatch::Term(t) => e.terms.terms.contains(t),
                    FieldMatch::Pid(p) => e.pid == *p,
                    FieldMatch::ChartNumber(_) => unreachable!(),
                }) && f.sex.as_ref().is_none_or(|s| &e.sex == s)
                    && f.provider_id.is_none_or(|p| e.provider_id == Some(p))
                    && f.panels
                        .iter()
                        .all(|p| e.provider_id == Some(p.provider_id) || p.others.contains(&e.pid))
            })
            .collect();
        let name = |e: &IndexEntry| (e.terms.sort_last.clone(), e.terms.sort_first.clone(), e.pid);
        let dob = |e: &IndexEntry| (e.dob.unwrap_or(UNKNOWN_DOB_SORTS_AS), e.pid);
        let relevance = |e: &IndexEntry| (rank(&f.needles, &e.terms.sort_last, &e.terms.sort_first), name(e));
        match page.sort {
            SortKey::Name => hits.sort_by_key(|e| name(e)),
            SortKey::Relevance => hits.sort_by_key(|e| relevance(e)),
            SortKey::Dob => hits.sort_by_key(|e| dob(e)),
            SortKey::Pid => hits.sort_by_key(|e| e.pid),
        }
        if page.descending {
            hits.reverse();
        }
        hits.into_iter().map(|e| e.pid).collect()
    }

    /// Every page of the search, walked by its cursor.
    fn walk(index: &MemoryIndex, f: &Filters, sort: SortKey, descending: bool) -> (i64, Vec<i64>) {
        let mut page = Page { sort, descending, after: None, offset: None, limit: 3 };
        let mut all = Vec::new();
        loop {
            let (total, rows) = index.search(f, &page);
            if rows.is_empty() {
                return (total, all);
            }
            all.extend(rows.iter().map(|(pid, _)| *pid));
            page.after = rows.last().map(|(_, after)| after.clone());
        }
    }

    fn filter_sets() -> Vec<Filters> {
        let queries =
            ["", "g", "go", "gar", "maria go", "m", "5", "555", "5551", "obri", "zo", "jose g", "1", "mrn1"];
        let mut sets: Vec<Filters> =
            queries.iter().map(|q| Filters { needles: parse_query(q), ..Filters::default() }).collect();
        sets.push(Filters { sex: Some("Female".into()), needles: parse_query("g"), ..Filters::default() });
        sets.push(Filters { provider_id: Some(2), ..Filters::default() });
        sets.push(Filters {
            panels: vec![Panel { provider_id: 1, others: vec![3, 5, 8] }],
            needles: parse_query("ma"),
            ..Filters::default()
        });
        sets.push(Filters { fields: vec![FieldMatch::Family("garcia l".into())], ..Filters::default() });
        sets.push(Filters { fields: vec![FieldMatch::NameWord("lo".into())], ..Filters::default() });
        sets.push(Filters { fields: vec![FieldMatch::Given("maria j".into())], ..Filters::default() });
        sets.push(Filters { fields: vec![FieldMatch::Pid(4)], ..Filters::default() });
        sets.push(Filters {
            fields: vec![FieldMatch::Term("maria4@example.org".into())],
            ..Filters::default()
        });
        sets
    }

    fn assert_same(index: &MemoryIndex, entries: &BTreeMap<i64, IndexEntry>) {
        for f in filter_sets() {
            for sort in [SortKey::Name, SortKey::Dob, SortKey::Pid, SortKey::Relevance] {
                for descending in [false, true] {
                    let page = Page { sort, descending, after: None, offset: None, limit: 3 };
                    let expected = scan(entries, &f, &page);
                    let (total, walked) = walk(index, &f, sort, descending);
                    assert_eq!(walked, expected, "{f:?} by {sort:?}, descending {descending}");
                    assert_eq!(total, expected.len() as i64, "total of {f:?}");
                    let offset = Page { offset: Some(2), ..page };
                    let skipped: Vec<i64> = index.search(&f, &offset).1.iter().map(|(pid, _)| *pid).collect();
                    assert_eq!(skipped, expected.iter().skip(2).take(3).copied().collect::<Vec<_>>());
                }
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

        #[test]
        fn searches_answer_as_a_scan_of_every_patient_would_before_and_after_merging(
            first in proptest::collection::vec(patient(), 0..40),
            later in proptest::collection::vec(patient(), 0..20),
            changes in proptest::collection::vec((1..60i64, patient()), 0..15),
            removals in proptest::collection::vec(1..60i64, 0..8),
        ) {
            let mut index = MemoryIndex::default();
            let mut entries = BTreeMap::new();
            let mut pid = 0;
            for p in &first {
                pid += 1;
                entries.insert(pid, entry(pid, p));
                index.upsert(&entries[&pid]);
            }
            index = index.merged();
            for p in &later {
                pid += 1;
                entries.insert(pid, entry(pid, p));
                index.upsert(&entries[&pid]);
            }
            for (at, p) in &changes {
                if entries.contains_key(at) {
                    entries.insert(*at, entry(*at, p));
                    index.upsert(&entries[at]);
                }
            }
            for at in &removals {
                prop_assert_eq!(index.remove(*at), entries.remove(at).is_some());
            }
            prop_assert_eq!(index.patients(), entries.len() as u64);
            assert_same(&index, &entries);
            assert_same(&index.merged(), &entries);
        }
    }

    #[test]
    fn an_unchanged_patient_is_not_indexed_twice_and_a_renamed_one_loses_the_old_name() {
        let mut index = MemoryIndex::default();
        let mut p = Patient { first: 0, last: 0, phone: 5_551_234, dob: None, sex: 0, provider: 1 };
        assert!(index.upsert(&entry(7, &p)));
        assert!(!index.upsert(&entry(7, &p)), "the same entry again changes nothing");
        p.last = 6;
        assert!(index.upsert(&entry(7, &p)));
        let by = |q: &str| {
            let f = Filters { needles: parse_query(q), ..Filters::default() };
            index
                .search(
                    &f,
                    &Page { sort: SortKey::Name, descending: false, after: None, offset: None, limit: 5 },
                )
                .0
        };
        assert_eq!((by("garcia"), by("smith"), index.patients()), (0, 1, 1));
    }
}
