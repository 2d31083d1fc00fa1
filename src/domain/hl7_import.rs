//! HL7 v2 messages the sidecar receives, read as OpenEMR's `receive_hl7_results.inc.php` reads
//! them (`ORU^R01` lab results, `MDM^T02/T04/T08` documents) plus `ADT^A04/A08` registrations,
//! with every value that lands in an OpenEMR column checked against that column's size first.

use base64::Engine;
use chrono::{NaiveDate, NaiveDateTime};
use hl7_parser::{
    Message,
    datetime::{TimeStamp, parse_timestamp},
    message::{Segment, Separators},
};

/// MSH as far as routing, deduplication and the acknowledgement need it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Header {
    pub sending_application: String,
    pub sending_facility: String,
    /// MSH-10, the key a sender's resend is recognised by.
    pub control_id: String,
    /// MSH-9 as `CODE^TRIGGER`.
    pub message_type: String,
    pub trigger: String,
    pub version: String,
}

/// Where a received message stands. `Received` is a message whose filing did not finish (the
/// database failed mid-way): its sender's resend files it. Only a `Queued` one waits for a person.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageState {
    Received,
    Filed,
    Queued,
    Error,
    Rejected,
}

impl MessageState {
    pub const ALL: [Self; 5] = [Self::Received, Self::Filed, Self::Queued, Self::Error, Self::Rejected];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Received => "received",
            Self::Filed => "filed",
            Self::Queued => "queued",
            Self::Error => "error",
            Self::Rejected => "rejected",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|m| m.as_str() == s)
    }

    /// A resend is answered from the row instead of being filed again.
    pub fn is_answered(self) -> bool {
        self != Self::Received
    }

    /// A person may say which patient the message is about.
    pub fn can_resolve(self) -> bool {
        self == Self::Queued
    }
}

/// Why a message is refused outright (an `AR`): it can never be taken as sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    pub header: Option<Header>,
    pub reason: String,
}

/// The patient as PID describes them.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Identity {
    /// PID-3.1, the sender's record number.
    pub record_number: String,
    pub family: String,
    pub given: String,
    pub middle: String,
    pub birth_date: Option<NaiveDate>,
    /// OpenEMR's `sex` option.
    pub sex: String,
    /// Digits of PID-19.
    pub ssn: String,
    pub street: String,
    pub city: String,
    pub state: String,
    pub postal_code: String,
    pub phone: String,
}

/// A clinician named in an XCN field: NPI or id, family and given name.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Clinician {
    pub id: String,
    pub family: String,
    pub given: String,
}

impl Clinician {
    pub fn is_empty(&self) -> bool {
        self.id.is_empty() && self.family.is_empty()
    }
}

/// A date and time as OpenEMR stores it: the local time, and the UTC offset apart ("+hhmm").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    pub at: NaiveDateTime,
    pub offset: Option<(i8, u8)>,
}

impl Stamp {
    /// `procedure_report.date_*_tz`.
    pub fn zone(&self) -> String {
        self.offset
            .map(|(h, m)| format!("{}{:02}{m:02}", if h < 0 { '-' } else { '+' }, h.abs()))
            .unwrap_or_default()
    }
}

/// A file inside a message (`OBX-2 = ED`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Encapsulated {
    pub extension: String,
    pub mimetype: &'static str,
    pub data: Vec<u8>,
}

/// One OBX of a lab report, shaped as a `procedure_result` row.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LabResult {
    /// N, S, F, E or L.
    pub data_type: char,
    pub code: String,
    pub text: String,
    pub result: String,
    pub units: String,
    pub range: String,
    pub abnormal: String,
    pub comments: String,
    pub status: String,
    pub date: Option<Stamp>,
    pub document: Option<Encapsulated>,
}

/// One OBR and its results, shaped as a `procedure_report` row.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LabReport {
    /// ORC-2/OBR-2: OpenEMR's `procedure_order_id` when the order was placed in OpenEMR.
    pub placer: Option<i64>,
    /// OBR-3.1, the lab's own order number.
    pub filler: String,
    pub procedure_code: String,
    pub procedure_name: String,
    pub collected: Option<Stamp>,
    pub reported: Option<Stamp>,
    pub status: String,
    pub ordering: Clinician,
    pub specimen: String,
    pub notes: String,
    pub results: Vec<LabResult>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Results {
    pub patient: Identity,
    pub reports: Vec<LabReport>,
}

/// A document notification: the text of its `TX` lines, or one encapsulated file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DocumentNotice {
    pub patient: Identity,
    /// PV1-8, then PV1-52: who is told the document arrived.
    pub providers: Vec<Clinician>,
    pub at: Option<Stamp>,
    pub name: String,
    pub text: String,
    pub file: Option<Encapsulated>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AdtEvent {
    /// A04: register a patient.
    Register,
    /// A08: update a patient's information.
    Update,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registration {
    pub event: AdtEvent,
    pub patient: Identity,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Body {
    Results(Results),
    Document(DocumentNotice),
    Registration(Registration),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inbound {
    pub header: Header,
    pub body: Body,
}

impl Inbound {
    pub fn patient(&self) -> &Identity {
        match &self.body {
            Body::Results(r) => &r.patient,
            Body::Document(d) => &d.patient,
            Body::Registration(r) => &r.patient,
        }
    }
}

/// The messages of a file or a body: each starts at an `MSH` segment (batch envelopes ignored).
pub fn split(text: &str) -> Vec<String> {
    let mut messages: Vec<Vec<&str>> = Vec::new();
    for line in text.split(['\r', '\n']).filter(|l| !l.trim().is_empty()) {
        match line.get(..3) {
            Some("MSH") => messages.push(vec![line]),
            Some("FHS" | "BHS" | "BTS" | "FTS") => {}
            _ => match messages.last_mut() {
                Some(m) => m.push(line),
                None => messages.push(vec![line]),
            },
        }
    }
    messages.into_iter().map(|m| m.join("\r")).collect()
}

/// Reads one message (segments separated by CR, LF or CRLF).
pub fn parse(raw: &str) -> Result<Inbound, Refused> {
    let refuse = |header: Option<&Header>, reason: String| Refused { header: header.cloned(), reason };
    if !raw.starts_with("MSH") {
        return Err(refuse(None, "the message does not begin with an MSH segment".into()));
    }
    let message = Message::parse_with_lenient_newlines(raw, true)
        .map_err(|e| refuse(None, format!("the message cannot be parsed as HL7 v2: {e}")))?;
    let header = header(&message).map_err(|reason| refuse(None, reason))?;
    let body = match (header.message_type.as_str(), header.trigger.as_str()) {
        ("ORU", "R01" | "") => results(&message).map(Body::Results),
        ("MDM", "T02" | "T04" | "T08") => document(&message).map(Body::Document),
        ("ADT", "A04") => registration(&message, AdtEvent::Register).map(Body::Registration),
        ("ADT", "A08") => registration(&message, AdtEvent::Update).map(Body::Registration),
        (code, trigger) => Err(format!(
            "MSH-9 message type {code}^{trigger} is not taken here: send ORU^R01, MDM^T02, MDM^T04, MDM^T08, ADT^A04 or ADT^A08"
        )),
    }
    .map_err(|reason| refuse(Some(&header), reason))?;
    Ok(Inbound { header, body })
}

/// Decoded values of one segment.
struct Fields<'a> {
    segment: &'a Segment<'a>,
    separators: &'a Separators,
    /// "OBX 3" for messages naming a field.
    label: String,
}

impl<'a> Fields<'a> {
    fn new(message: &'a Message<'a>, segment: &'a Segment<'a>, nth: usize) -> Self {
        let label = if nth > 1 { format!("{} {nth}", segment.name) } else { segment.name.to_string() };
        Self { segment, separators: &message.separators, label }
    }

    fn raw(&self, field: usize) -> &'a str {
        self.segment.field(field).map(|f| f.raw_value()).unwrap_or_default()
    }

    /// Component `component` (1-based) of the field's first repeat, unescaped; `\.br\` ends a line.
    fn text(&self, field: usize, component: usize) -> String {
        let raw = self
            .segment
            .field(field)
            .and_then(|f| f.component(component))
            .map(|c| c.raw_value())
            .unwrap_or_default();
        self.decode(raw)
    }

    fn decode(&self, raw: &str) -> String {
        let decoded = super::hl7::unescape(self.separators, raw);
        decoded.replace("\r\n", "\n").replace('\r', "\n").trim().to_string()
    }

    /// A text that must fit `chars` characters of an OpenEMR column.
    fn bounded(&self, field: usize, component: usize, chars: usize, column: &str) -> Result<String, String> {
        fit(self.text(field, component), chars, &format!("{}-{field}", self.label), column)
    }

    fn stamp(&self, field: usize) -> Result<Option<Stamp>, String> {
        let raw = self.raw(field);
        let raw = raw.split(self.separators.component).next().unwrap_or_default();
        stamp(raw).map_err(|why| format!("{}-{field} {raw:?} {why}", self.label))
    }

    fn clinician(&self, field: usize) -> Clinician {
        Clinician { id: self.text(field, 1), family: self.text(field, 2), given: self.text(field, 3) }
    }
}

fn fit(value: String, chars: usize, field: &str, column: &str) -> Result<String, String> {
    match value.chars().count() {
        n if n > chars => Err(format!("{field} is {n} characters; OpenEMR's {column} holds {chars}")),
        _ => Ok(value),
    }
}

/// An HL7 DTM: `YYYY[MM[DD[HH[MM[SS[.S]]]]]][+/-ZZZZ]`; empty is none.
pub fn stamp(raw: &str) -> Result<Option<Stamp>, String> {
    if raw.is_empty() {
        return Ok(None);
    }
    let ts: TimeStamp = parse_timestamp(raw, false).map_err(|_| "is not an HL7 date and time".to_string())?;
    let date =
        NaiveDate::from_ymd_opt(ts.year.into(), ts.month.unwrap_or(1).into(), ts.day.unwrap_or(1).into());
    let at = date.and_then(|d| {
        d.and_hms_opt(
            ts.hour.unwrap_or(0).into(),
            ts.minute.unwrap_or(0).into(),
            ts.second.unwrap_or(0).into(),
        )
    });
    let at = at.ok_or_else(|| "is not a date and time that exists".to_string())?;
    Ok(Some(Stamp { at, offset: ts.offset.map(|o| (o.hours, o.minutes)) }))
}

fn header(message: &Message<'_>) -> Result<Header, String> {
    let msh = message.segment("MSH").ok_or("no MSH segment")?;
    let f = Fields::new(message, msh, 1);
    let control_id = f.text(10, 1);
    if control_id.is_empty() {
        return Err("MSH-10 (message control id) is empty; it is needed to acknowledge the message".into());
    }
    let header = Header {
        sending_application: fit(f.text(3, 1), 180, "MSH-3", "sender column")?,
        sending_facility: fit(f.text(4, 1), 180, "MSH-4", "sender column")?,
        control_id: fit(control_id, 199, "MSH-10", "control id column")?,
        message_type: f.text(9, 1),
        trigger: f.text(9, 2),
        version: f.text(12, 1),
    };
    Ok(header)
}

fn identity(message: &Message<'_>) -> Result<Identity, String> {
    let pid = message.segment("PID").ok_or("the message has no PID segment: no patient to file it for")?;
    let f = Fields::new(message, pid, 1);
    let birth_date = f.stamp(7)?.map(|s| s.at.date());
    let identity = Identity {
        record_number: f.bounded(3, 1, 255, "patient_data.pubpid")?,
        family: f.bounded(5, 1, 255, "patient_data.lname")?,
        given: f.bounded(5, 2, 255, "patient_data.fname")?,
        middle: f.bounded(5, 3, 255, "patient_data.mname")?,
        birth_date,
        sex: sex(f.raw(8)).into(),
        ssn: f.text(19, 1).chars().filter(char::is_ascii_digit).collect(),
        street: f.bounded(11, 1, 255, "patient_data.street")?,
        city: f.bounded(11, 3, 255, "patient_data.city")?,
        state: f.bounded(11, 4, 255, "patient_data.state")?,
        postal_code: f.bounded(11, 5, 255, "patient_data.postal_code")?,
        phone: f.bounded(13, 1, 255, "patient_data.phone_home")?,
    };
    if identity.family.is_empty() && identity.record_number.is_empty() {
        return Err("PID-5 (patient name) and PID-3 (record number) are both empty".into());
    }
    Ok(identity)
}

/// HL7 table 0001 to OpenEMR's `sex` options, as `receive_hl7_results` maps it; empty when the
/// message does not say.
fn sex(code: &str) -> &'static str {
    match code.to_ascii_uppercase().as_str() {
        "M" => "Male",
        "F" => "Female",
        _ => "",
    }
}

/// `rhl7ReportStatus`.
fn report_status(code: &str) -> String {
    match code {
        "F" => "final".into(),
        "P" => "prelim".into(),
        "C" => "correct".into(),
        "X" => "error".into(),
        other => other.into(),
    }
}

/// `rhl7Abnormal`.
fn abnormal(code: &str) -> String {
    match code {
        "" | "N" => "no".into(),
        "A" => "yes".into(),
        "H" => "high".into(),
        "L" => "low".into(),
        "HH" => "vhigh".into(),
        "LL" => "vlow".into(),
        other => other.into(),
    }
}

fn results(message: &Message<'_>) -> Result<Results, String> {
    let patient = identity(message)?;
    let mut reports: Vec<LabReport> = Vec::new();
    let mut placer = None;
    let mut context = "";
    let mut counts = std::collections::HashMap::<&str, usize>::new();
    for segment in message.segments() {
        let nth = counts.entry(segment.name).and_modify(|n| *n += 1).or_insert(1);
        let f = Fields::new(message, segment, *nth);
        match segment.name {
            "ORC" => placer = placer_number(&f, 2)?.or(placer),
            "OBR" => reports.push(report(&f, placer)?),
            "NTE" if context == "OBR" => {
                if let Some(r) = reports.last_mut() {
                    r.notes.push_str(&f.text(3, 1));
                    r.notes.push('\n');
                }
            }
            "NTE" if context == "OBX" => {
                if let Some(res) = reports.last_mut().and_then(|r| r.results.last_mut()) {
                    res.comments.push_str(&f.text(3, 1));
                    res.comments.push('\n');
                }
            }
            "OBX" | "ZEF" => {
                let report = reports.last_mut().ok_or_else(|| format!("{} comes before any OBR", f.label))?;
                report.results.push(if segment.name == "OBX" { lab_result(&f)? } else { embedded_pdf(&f)? });
            }
            "SPM" => {
                if let Some(r) = reports.last_mut() {
                    r.specimen = f.bounded(4, 2, 63, "procedure_report.specimen_num")?;
                }
            }
            _ => {}
        }
        context = match segment.name {
            "OBR" | "OBX" | "ORC" => segment.name,
            // Notes after a ZEF belong to its result, as OpenEMR reads them.
            "ZEF" => "OBX",
            _ => context,
        };
    }
    if reports.is_empty() {
        return Err("the ORU message has no OBR segment: no report to file".into());
    }
    Ok(Results { patient, reports })
}

fn placer_number(f: &Fields<'_>, field: usize) -> Result<Option<i64>, String> {
    let raw = f.text(field, 1);
    if raw.is_empty() {
        return Ok(None);
    }
    raw.parse::<i64>().ok().filter(|n| *n > 0).map(Some).ok_or_else(|| {
        format!("{}-{field} placer order number {raw:?} is not an OpenEMR order number", f.label)
    })
}

fn report(f: &Fields<'_>, placer: Option<i64>) -> Result<LabReport, String> {
    Ok(LabReport {
        placer: placer_number(f, 2)?.or(placer),
        filler: f.bounded(3, 1, 255, "procedure_order.control_id")?,
        procedure_code: f.bounded(4, 1, 64, "procedure_order_code.procedure_code")?,
        procedure_name: f.bounded(4, 2, 255, "procedure_order_code.procedure_name")?,
        collected: f.stamp(7)?,
        reported: f.stamp(22)?,
        status: fit(
            report_status(&f.text(25, 1)),
            31,
            &format!("{}-25", f.label),
            "procedure_report.report_status",
        )?,
        ordering: f.clinician(16),
        specimen: String::new(),
        notes: String::new(),
        results: Vec::new(),
    })
}

fn lab_result(f: &Fields<'_>) -> Result<LabResult, String> {
    let value_type = f.text(2, 1);
    let mut result = LabResult {
        data_type: value_type.chars().next().unwrap_or('S'),
        code: f.bounded(3, 1, 31, "procedure_result.result_code")?,
        text: f.bounded(3, 2, 255, "procedure_result.result_text")?,
        units: f.bounded(6, 1, 31, "procedure_result.units")?,
        range: f.bounded(7, 1, 255, "procedure_result.range")?,
        abnormal: fit(abnormal(&f.text(8, 1)), 31, &format!("{}-8", f.label), "procedure_result.abnormal")?,
        status: fit(
            report_status(&f.text(11, 1)),
            31,
            &format!("{}-11", f.label),
            "procedure_result.result_status",
        )?,
        date: f.stamp(14)?,
        // OpenEMR keeps the first line of the comments for a long text result.
        comments: "\n".into(),
        ..LabResult::default()
    };
    let whole = f.decode(f.raw(5));
    match value_type.as_str() {
        "ED" => {
            result.document = Some(encapsulated(f, 5)?);
            result.data_type = 'E';
        }
        "CWE" | "CE" => {
            let (code, text) = (f.text(5, 1), f.text(5, 2));
            result.result = if text.is_empty() { code } else { format!("{code} ({text})") };
        }
        "SN" => {
            result.result = f.raw(5).split(f.separators.component).collect::<Vec<_>>().join(" ").trim().into()
        }
        // Long text goes to the comments, as OpenEMR keeps it (`L`), the first line in `result`
        // when it is short.
        "TX" | "FT" => long_text(&mut result, whole),
        _ if whole.chars().count() > 200 => long_text(&mut result, whole),
        _ => result.result = whole,
    }
    result.result = fit(result.result, 255, &format!("{}-5", f.label), "procedure_result.result")?;
    Ok(result)
}

/// The vendor segment `ZEF` (Labcorp's): the report as a Base64 PDF in ZEF-2, filed as OpenEMR
/// files it, as an `E` result holding the document.
fn embedded_pdf(f: &Fields<'_>) -> Result<LabResult, String> {
    let data = base64::engine::general_purpose::STANDARD
        .decode(f.raw(2).trim())
        .map_err(|_| format!("{}-2 is not a Base64 document", f.label))?;
    if data.is_empty() {
        return Err(format!("{}-2 holds no document", f.label));
    }
    let document = Encapsulated { mimetype: mimetype("pdf"), extension: "pdf".into(), data };
    Ok(LabResult { data_type: 'E', comments: "\n".into(), document: Some(document), ..LabResult::default() })
}

fn long_text(result: &mut LabResult, text: String) {
    result.data_type = 'L';
    let comments = format!("{text}\n");
    match comments.find('\n') {
        Some(i) if (1..=10).contains(&i) => {
            result.result = comments[..i].into();
            result.comments = comments[i..].into();
        }
        _ => result.comments = comments,
    }
}

/// OBX-5 of an `ED` value: source ^ type ^ subtype (the extension) ^ encoding ^ data.
fn encapsulated(f: &Fields<'_>, field: usize) -> Result<Encapsulated, String> {
    let at = format!("{}-{field}", f.label);
    let extension = f.text(field, 3).to_ascii_lowercase();
    let encoding = f.text(field, 4);
    let data = f.segment.field(field).and_then(|v| v.component(5)).map(|c| c.raw_value()).unwrap_or_default();
    let data = match encoding.as_str() {
        "Base64" | "BASE64" | "B64" => base64::engine::general_purpose::STANDARD
            .decode(data.trim())
            .map_err(|_| format!("{at} says Base64 but its data is not Base64"))?,
        "A" => f.decode(data).into_bytes(),
        "Hex" | "HEX" => {
            hex::decode(data.trim()).map_err(|_| format!("{at} says Hex but its data is not hex"))?
        }
        other => return Err(format!("{at} encoding {other:?} is not Base64, Hex or A")),
    };
    if data.is_empty() {
        return Err(format!("{at} holds no document"));
    }
    Ok(Encapsulated { mimetype: mimetype(&extension), extension, data })
}

/// `rhl7MimeType`.
fn mimetype(extension: &str) -> &'static str {
    match extension {
        "pdf" => "application/pdf",
        "rtf" => "application/rtf",
        "txt" => "text/plain",
        "doc" => "application/msword",
        "zip" => "application/zip",
        _ => "application/octet-stream",
    }
}

fn document(message: &Message<'_>) -> Result<DocumentNotice, String> {
    let patient = identity(message)?;
    let mut providers = Vec::new();
    if let Some(pv1) = message.segment("PV1") {
        let f = Fields::new(message, pv1, 1);
        providers = [8, 52].into_iter().map(|n| f.clinician(n)).filter(|c| !c.is_empty()).collect();
    }
    let txa = message.segment("TXA").ok_or("the MDM message has no TXA segment")?;
    let t = Fields::new(message, txa, 1);
    let (at, name) = (t.stamp(4)?, t.bounded(12, 1, 200, "documents.name")?);
    let mut lines = Vec::new();
    let mut file = None;
    for (i, obx) in message.segments().filter(|s| s.name == "OBX").enumerate() {
        let f = Fields::new(message, obx, i + 1);
        match f.text(2, 1).as_str() {
            "TX" | "FT" | "ST" => lines.push(f.decode(f.raw(5))),
            "ED" if file.is_none() => file = Some(encapsulated(&f, 5)?),
            "ED" => {
                return Err(format!("{} is a second encapsulated document; send one per message", f.label));
            }
            other => {
                return Err(format!(
                    "{}-2 value type {other:?} is not a document: send TX lines or one ED",
                    f.label
                ));
            }
        }
    }
    if file.is_some() && !lines.is_empty() {
        return Err("the MDM message mixes TX lines and an ED document; send one or the other".into());
    }
    if file.is_none() && lines.is_empty() {
        return Err("the MDM message has no OBX: no document content".into());
    }
    Ok(DocumentNotice { patient, providers, at, name, text: lines.join("\n"), file })
}

fn registration(message: &Message<'_>, event: AdtEvent) -> Result<Registration, String> {
    let patient = identity(message)?;
    if patient.family.is_empty() || patient.given.is_empty() {
        return Err("PID-5 needs a family and a given name to register a patient".into());
    }
    if patient.birth_date.is_none() {
        return Err("PID-7 (date of birth) is empty: a patient is registered with one".into());
    }
    Ok(Registration { event, patient })
}

#[cfg(test)]
mod tests {
    use super::*;

    const ORU: &str = "MSH|^~\\&|LAB|ACME LAB|MMT|CLINIC|20261201101500-0500||ORU^R01^ORU_R01|MSG0001|P|2.5.1\r\
PID|1||PUB-9^^^^MR||Núñez^José^Q||19700203|M|||1 Main St^^Springfield^IL^62701||555-0100||||||123-45-6789\r\
ORC|RE|42|F-77\r\
OBR|1|42|F-77|24323-8^Comprehensive metabolic panel^LN|||20261130083000-0500|||||||||1234567893^Garcia^Ana||||||20261201101000-0500|||F\r\
NTE|1||Fasting \\T\\ rested\r\
OBX|1|NM|2823-3^Potassium^LN||5.9|mmol/L|3.5-5.1|H|||F|||20261130090000\r\
OBX|2|CWE|5778-6^Color^LN||YEL^Yellow^L||||||F\r\
OBX|3|TX|8251-1^Comment^LN||Hemolysed\\.br\\Recollect advised||||||F\r\
SPM|1|||119297000^Blood^SCT";

    #[test]
    fn an_oru_reads_as_reports_with_their_results_as_openemr_stores_them() {
        let inbound = parse(ORU).unwrap();
        assert_eq!(inbound.header.control_id, "MSG0001");
        assert_eq!((inbound.header.message_type.as_str(), inbound.header.trigger.as_str()), ("ORU", "R01"));
        let Body::Results(results) = inbound.body else { panic!("not results") };
        let p = &results.patient;
        assert_eq!((p.family.as_str(), p.given.as_str(), p.sex.as_str()), ("Núñez", "José", "Male"));
        assert_eq!((p.record_number.as_str(), p.ssn.as_str()), ("PUB-9", "123456789"));
        assert_eq!(p.birth_date, NaiveDate::from_ymd_opt(1970, 2, 3));
        let [report] = &results.reports[..] else { panic!("one report") };
        assert_eq!(
            (report.placer, report.filler.as_str(), report.status.as_str()),
            (Some(42), "F-77", "final")
        );
        assert_eq!(report.collected.unwrap().at.to_string(), "2026-11-30 08:30:00");
        assert_eq!(report.collected.unwrap().zone(), "-0500");
        assert_eq!(report.notes, "Fasting & rested\n");
        assert_eq!(report.specimen, "Blood");
        assert_eq!(report.ordering.id, "1234567893");
        let r = &report.results;
        assert_eq!((r[0].data_type, r[0].result.as_str(), r[0].abnormal.as_str()), ('N', "5.9", "high"));
        assert_eq!(
            (r[0].units.as_str(), r[0].range.as_str(), r[0].status.as_str()),
            ("mmol/L", "3.5-5.1", "final")
        );
        assert_eq!(r[1].result, "YEL (Yellow)");
        assert_eq!((r[2].data_type, r[2].result.as_str()), ('L', "Hemolysed"));
        assert_eq!(r[2].comments, "\nRecollect advised\n");
        assert_eq!(r[0].comments, "\n");
    }

    #[test]
    fn values_too_long_for_openemr_columns_are_refused_naming_field_and_column() {
        let long = ORU.replace("mmol/L", &"u".repeat(40));
        let refused = parse(&long).unwrap_err();
        assert!(
            refused.reason.contains("OBX-6") && refused.reason.contains("procedure_result.units"),
            "{refused:?}"
        );
        assert_eq!(refused.header.unwrap().control_id, "MSG0001");
    }

    #[test]
    fn unsupported_types_bad_dates_and_non_hl7_are_refused_with_the_reason() {
        let adt = ORU.replace("ORU^R01^ORU_R01", "SIU^S12");
        assert!(parse(&adt).unwrap_err().reason.contains("SIU^S12 is not taken"));
        let bad_date = ORU.replace("20261130083000-0500", "2026133");
        assert!(parse(&bad_date).unwrap_err().reason.contains("OBR-7"));
        assert!(parse("hello").unwrap_err().header.is_none());
        let no_id = ORU.replace("|MSG0001|", "||");
        assert!(parse(&no_id).unwrap_err().reason.contains("MSH-10"));
    }

    #[test]
    fn an_mdm_carries_text_lines_or_one_encapsulated_pdf() {
        let text = "MSH|^~\\&|DICT|HOSP|||20261201||MDM^T02|D1|P|2.5.1\n\
PID|1||77||Doe^Jane||19800101|F\n\
PV1|1|O||||||1234567893^Garcia^Ana\n\
TXA|1|CN|TX|20261201093000||||||||Discharge summary\n\
OBX|1|TX|||Line one\n\
OBX|2|TX|||Line \\F\\ two";
        let Body::Document(doc) = parse(text).unwrap().body else { panic!("not a document") };
        assert_eq!(doc.text, "Line one\nLine | two");
        assert_eq!(doc.name, "Discharge summary");
        assert_eq!(doc.providers[0].family, "Garcia");
        let pdf = base64::engine::general_purpose::STANDARD.encode(b"%PDF-1.4 test");
        let with_pdf = text.replace(
            "OBX|1|TX|||Line one\nOBX|2|TX|||Line \\F\\ two",
            &format!("OBX|1|ED|||^AP^PDF^Base64^{pdf}"),
        );
        let Body::Document(doc) = parse(&with_pdf).unwrap().body else { panic!("not a document") };
        let file = doc.file.unwrap();
        assert_eq!((file.mimetype, file.data.as_slice()), ("application/pdf", &b"%PDF-1.4 test"[..]));
        let mixed = with_pdf.replace("OBX|1|ED", "OBX|1|TX|||x\nOBX|2|ED");
        assert!(parse(&mixed).unwrap_err().reason.contains("mixes"));
    }

    #[test]
    fn a_file_splits_into_its_messages() {
        let file =
            format!("FHS|^~\\&\nBHS|^~\\&\n{ORU}\n{}\nBTS|2\nFTS|1\n", ORU.replace("MSG0001", "MSG0002"));
        let messages = split(&file);
        assert_eq!(messages.len(), 2);
        assert!(messages[1].contains("MSG0002") && messages[1].starts_with("MSH"));
    }

    #[test]
    fn text_that_is_not_ascii_after_an_escape_character_is_parsed_not_a_panic() {
        // Found by the fuzzer: hl7-parser's decoder sliced this mid-character.
        let bytes = hex::decode(
            "4d53480001012001212c2c2c2c2c2c2c2c2c2c2e20dcb42020482c2c2c2c2c2c2c41200001000000004d534800010120010029",
        );
        let raw = String::from_utf8(bytes.unwrap()).unwrap();
        assert!(!split(&raw).is_empty());
        for message in split(&raw) {
            let _ = parse(&message);
        }
    }
}
