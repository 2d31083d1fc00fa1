//! HL7 v2.5.1 messages the sidecar sends: `MDM^T02` (original document notification and content)
//! for a filed clinical note, as OpenEMR's own MDM import reads one back (`TXA` for the document,
//! one `OBX|n|TX|` per line of text). Built with `hl7-parser`'s builder, which escapes separators.

use chrono::{NaiveDate, NaiveDateTime};
use hl7_parser::builder::prelude::*;

/// What OpenEMR's patient list holds of the patient.
pub struct Patient<'a> {
    /// The chart number (`pubpid`), sent as the medical record number.
    pub chart: &'a str,
    pub family: &'a str,
    pub given: &'a str,
    pub middle: &'a str,
    pub birth_date: Option<NaiveDate>,
    /// OpenEMR's `sex` option (`Female`, `Male`, …).
    pub sex: &'a str,
}

/// A clinician: NPI when OpenEMR has one, else the OpenEMR username.
pub struct Person<'a> {
    pub id: &'a str,
    pub family: &'a str,
    pub given: &'a str,
}

/// A filed note and where it belongs.
pub struct Document<'a> {
    /// The note type's LOINC code and title.
    pub type_code: &'a str,
    pub type_text: &'a str,
    /// The note's uuid (`form_clinical_notes.uuid`): TXA-12, the unique document number.
    pub number: &'a str,
    pub filed_at: NaiveDateTime,
    pub text: &'a str,
}

pub struct Mdm<'a> {
    /// MSH-10, at most 20 characters, unique per message sent.
    pub control_id: &'a str,
    pub sent_at: NaiveDateTime,
    pub sending_facility: &'a str,
    pub patient: Patient<'a>,
    /// The encounter number (PV1-19, the visit number).
    pub visit: i64,
    pub author: Person<'a>,
    pub document: Document<'a>,
}

fn timestamp(at: NaiveDateTime) -> String {
    at.format("%Y%m%d%H%M%S").to_string()
}

/// HL7 table 0001 from OpenEMR's `sex` list.
fn administrative_sex(sex: &str) -> &'static str {
    match sex.to_ascii_lowercase().as_str() {
        "female" => "F",
        "male" => "M",
        _ => "U",
    }
}

fn person(p: &Person<'_>) -> FieldBuilder {
    FieldBuilder::default()
        .with_component_value(1, p.id)
        .with_component_value(2, p.family)
        .with_component_value(3, p.given)
}

fn document_type(d: &Document<'_>) -> FieldBuilder {
    FieldBuilder::default()
        .with_component_value(1, d.type_code)
        .with_component_value(2, d.type_text)
        .with_component_value(3, "LN")
}

/// The message, segments separated by carriage returns as HL7 requires.
pub fn mdm_t02(m: &Mdm<'_>) -> String {
    let p = &m.patient;
    let d = &m.document;
    let mut message = MessageBuilder::new(Separators::default())
        .with_segment(
            SegmentBuilder::new("MSH")
                .with_field_value(3, "MMT-SIDECAR")
                .with_field_value(4, m.sending_facility)
                .with_field_value(7, timestamp(m.sent_at))
                .with_field(
                    9,
                    FieldBuilder::default()
                        .with_component_value(1, "MDM")
                        .with_component_value(2, "T02")
                        .with_component_value(3, "MDM_T02"),
                )
                .with_field_value(10, m.control_id)
                .with_field_value(11, "P")
                .with_field_value(12, "2.5.1")
                .with_field_value(15, "AL")
                .with_field_value(16, "NE")
                .with_field_value(18, "UNICODE UTF-8"),
        )
        .with_segment(
            SegmentBuilder::new("EVN").with_field_value(1, "T02").with_field_value(2, timestamp(m.sent_at)),
        )
        .with_segment(
            SegmentBuilder::new("PID")
                .with_field_value(1, "1")
                .with_field(
                    3,
                    FieldBuilder::default().with_component_value(1, p.chart).with_component_value(5, "MR"),
                )
                .with_field(
                    5,
                    FieldBuilder::default()
                        .with_component_value(1, p.family)
                        .with_component_value(2, p.given)
                        .with_component_value(3, p.middle),
                )
                .with_field_value(7, p.birth_date.map(|d| d.format("%Y%m%d").to_string()).unwrap_or_default())
                .with_field_value(8, administrative_sex(p.sex)),
        )
        .with_segment(
            SegmentBuilder::new("PV1")
                .with_field_value(1, "1")
                .with_field_value(2, "O")
                .with_field(7, person(&m.author))
                .with_field_value(19, m.visit.to_string()),
        )
        .with_segment(
            SegmentBuilder::new("TXA")
                .with_field_value(1, "1")
                .with_field(2, document_type(d))
                .with_field_value(3, "TX")
                .with_field_value(4, timestamp(d.filed_at))
                .with_field(5, person(&m.author))
                .with_field_value(12, d.number)
                .with_field_value(17, "AU")
                .with_field_value(19, "AV"),
        );
    for (i, line) in d.text.lines().enumerate() {
        message.push_segment(
            SegmentBuilder::new("OBX")
                .with_field_value(1, (i + 1).to_string())
                .with_field_value(2, "TX")
                .with_field(3, document_type(d))
                .with_field_value(5, line)
                .with_field_value(11, "F"),
        );
    }
    message.to_string()
}

/// MSA-1 of an acknowledgement the sidecar sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AckCode {
    /// Taken (or queued for a person to finish).
    Accepted,
    /// Could not be taken now; the sender may correct the chart or resend.
    Error,
    /// Will never be taken as sent.
    Rejected,
}

impl AckCode {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Accepted => "AA",
            Self::Error => "AE",
            Self::Rejected => "AR",
        }
    }

    pub fn parse(code: &str) -> Option<Self> {
        [Self::Accepted, Self::Error, Self::Rejected].into_iter().find(|c| c.as_str() == code)
    }
}

/// What an acknowledgement answers: the sender's MSH-3/4, MSH-9 trigger and MSH-10.
pub struct Answered<'a> {
    pub application: &'a str,
    pub facility: &'a str,
    pub trigger: &'a str,
    pub control_id: &'a str,
}

/// `ACK` with MSA (and ERR with HL7 table 0357's code when it is not `AA`).
pub fn ack(to: &Answered<'_>, code: AckCode, text: &str, control_id: &str, sent_at: NaiveDateTime) -> String {
    let mut message = MessageBuilder::new(Separators::default())
        .with_segment(
            SegmentBuilder::new("MSH")
                .with_field_value(3, "MMT-SIDECAR")
                .with_field_value(5, to.application)
                .with_field_value(6, to.facility)
                .with_field_value(7, timestamp(sent_at))
                .with_field(
                    9,
                    FieldBuilder::default()
                        .with_component_value(1, "ACK")
                        .with_component_value(2, to.trigger)
                        .with_component_value(3, "ACK"),
                )
                .with_field_value(10, control_id)
                .with_field_value(11, "P")
                .with_field_value(12, "2.5.1"),
        )
        .with_segment(
            SegmentBuilder::new("MSA")
                .with_field_value(1, code.as_str())
                .with_field_value(2, to.control_id)
                .with_field_value(3, text.chars().take(80).collect::<String>()),
        );
    if code != AckCode::Accepted {
        let (error, severity) = match code {
            AckCode::Rejected => ("200", "E"),
            _ => ("207", "E"),
        };
        message.push_segment(
            SegmentBuilder::new("ERR")
                .with_field(
                    3,
                    FieldBuilder::default().with_component_value(1, error).with_component_value(3, "HL70357"),
                )
                .with_field_value(4, severity)
                .with_field_value(8, text),
        );
    }
    message.to_string()
}

/// MLLP's block: start byte, the message, end bytes.
pub fn framed(message: &str) -> Vec<u8> {
    let mut block = Vec::with_capacity(message.len() + 3);
    block.push(0x0b);
    block.extend_from_slice(message.as_bytes());
    block.extend_from_slice(&[0x1c, 0x0d]);
    block
}

/// The message inside an MLLP block, once its end bytes have arrived.
pub fn unframed(block: &[u8]) -> Option<&[u8]> {
    let start = block.iter().position(|b| *b == 0x0b)? + 1;
    let end = block.windows(2).position(|w| w == [0x1c, 0x0d])?;
    block.get(start..end)
}

/// The first whole block in what a connection has sent so far: the message inside it (none when
/// no start byte came before the end bytes) and how many bytes the block took.
pub fn next_block(stream: &[u8]) -> Option<(Option<&[u8]>, usize)> {
    let end = stream.windows(2).position(|w| w == [0x1c, 0x0d])? + 2;
    Some((unframed(&stream[..end]), end))
}

/// What the receiver said of a message (MSA-1).
#[derive(Debug, PartialEq, Eq)]
pub enum Ack {
    /// `AA`/`CA`: taken.
    Accepted,
    /// `AE`/`CE`: it could not take it now; worth sending again.
    Error(String),
    /// `AR`/`CR`: it will never take it.
    Rejected(String),
}

/// Reads an ACK, which must acknowledge `control_id` (MSA-2); `Err` says why it is not one.
pub fn acknowledgement(raw: &str, control_id: &str) -> Result<Ack, String> {
    let message =
        hl7_parser::parse_message_with_lenient_newlines(raw).map_err(|_| "not an HL7 message".to_string())?;
    let msa = message.segment("MSA").ok_or("no MSA segment")?;
    let field = |n: usize| msa.field(n).map(|f| f.raw_value().to_string()).unwrap_or_default();
    if field(2) != control_id {
        return Err(format!("it acknowledges message {:?}, not {control_id}", field(2)));
    }
    let text = message
        .segment("ERR")
        .and_then(|e| e.field(8))
        .or_else(|| msa.field(3))
        .map(|f| unescape(&message.separators, f.raw_value()))
        .unwrap_or_default();
    match field(1).as_str() {
        "AA" | "CA" => Ok(Ack::Accepted),
        "AE" | "CE" => Ok(Ack::Error(text)),
        "AR" | "CR" => Ok(Ack::Rejected(text)),
        other => Err(format!("MSA-1 {other:?} is no acknowledgement code")),
    }
}

/// A field's text with its escape sequences (`\F\ \S\ \T\ \R\ \E\`, `\.br\`, hexadecimal data
/// `\Xhh…\`) replaced; highlighting (`\H\`, `\N\`) dropped, any other sequence kept as written. Not
/// `hl7-parser`'s decoder: it slices by character count, which panics on text that is not ASCII.
pub fn unescape(separators: &hl7_parser::message::Separators, raw: &str) -> String {
    let escape = separators.escape;
    let mut out = String::with_capacity(raw.len());
    let mut rest = raw;
    while let Some(start) = rest.find(escape) {
        out.push_str(&rest[..start]);
        let after = &rest[start + escape.len_utf8()..];
        let Some(end) = after.find(escape) else {
            out.push_str(&rest[start..]);
            return out;
        };
        match &after[..end] {
            "F" => out.push(separators.field),
            "S" => out.push(separators.component),
            "T" => out.push(separators.subcomponent),
            "R" => out.push(separators.repetition),
            "E" => out.push(escape),
            ".br" => out.push('\r'),
            "H" | "N" => {}
            other => match hex_data(other) {
                Some(bytes) => push_bytes(&mut out, &bytes),
                None => {
                    out.push(escape);
                    out.push_str(other);
                    out.push(escape);
                }
            },
        }
        rest = &after[end + escape.len_utf8()..];
    }
    out.push_str(rest);
    out
}

/// The bytes of a `\Xhh…\` sequence (HL7 2.5.1 §2.7.4: pairs of hex digits, either case).
fn hex_data(sequence: &str) -> Option<Vec<u8>> {
    let digits = sequence.strip_prefix('X')?;
    if digits.is_empty() || digits.len() % 2 != 0 || !digits.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    (0..digits.len()).step_by(2).map(|at| u8::from_str_radix(&digits[at..at + 2], 16).ok()).collect()
}

/// Hex data as text: UTF-8 when it is, else one character per byte (ISO 8859-1, HL7's default).
fn push_bytes(out: &mut String, bytes: &[u8]) {
    match std::str::from_utf8(bytes) {
        Ok(text) => out.push_str(text),
        Err(_) => out.extend(bytes.iter().map(|b| char::from(*b))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(text: &'static str) -> String {
        let at = NaiveDate::from_ymd_opt(2026, 12, 1).unwrap().and_hms_opt(9, 30, 5).unwrap();
        mdm_t02(&Mdm {
            control_id: "abc123",
            sent_at: at,
            sending_facility: "Clinic | North",
            patient: Patient {
                chart: "PUB-9",
                family: "Núñez",
                given: "José",
                middle: "",
                birth_date: NaiveDate::from_ymd_opt(1970, 2, 3),
                sex: "Male",
            },
            visit: 304,
            author: Person { id: "1234567893", family: "Garcia", given: "Ana" },
            document: Document {
                type_code: "11506-3",
                type_text: "Progress Note",
                number: "9d69b232-ca80-4a7d-a089-77dbc525d476",
                filed_at: at,
                text,
            },
        })
    }

    #[test]
    fn segments_are_separated_by_carriage_returns_and_each_line_is_an_obx() {
        let message = sample("BP 120/80.\nPlan: recheck in 2 weeks.");
        let names: Vec<&str> = message.split('\r').map(|s| &s[..3]).collect();
        assert_eq!(names, ["MSH", "EVN", "PID", "PV1", "TXA", "OBX", "OBX"]);
        assert!(message.starts_with(
            "MSH|^~\\&|MMT-SIDECAR|Clinic \\F\\ North|||20261201093005||MDM^T02^MDM_T02|abc123|P|2.5.1"
        ));
    }

    #[test]
    fn an_ack_must_name_the_message_and_its_code_decides() {
        let ack = |code: &str, id: &str| {
            format!("MSH|^~\\&|RCV|||||20261201||ACK^T02|9|P|2.5.1\rMSA|{code}|{id}|busy \\T\\ full")
        };
        assert_eq!(acknowledgement(&ack("AA", "abc"), "abc"), Ok(Ack::Accepted));
        assert_eq!(acknowledgement(&ack("AE", "abc"), "abc"), Ok(Ack::Error("busy & full".into())));
        assert_eq!(acknowledgement(&ack("AR", "abc"), "abc"), Ok(Ack::Rejected("busy & full".into())));
        assert!(acknowledgement(&ack("AA", "other"), "abc").is_err());
        assert!(acknowledgement("hello", "abc").is_err());
        let block = framed("MSH|x");
        assert_eq!(unframed(&block), Some(&b"MSH|x"[..]));
        assert_eq!(unframed(&block[..block.len() - 1]), None);
    }

    #[test]
    fn a_stream_yields_its_blocks_one_at_a_time() {
        let mut stream = framed("MSH|one");
        stream.extend_from_slice(b"noise\x1c\x0d");
        stream.extend(framed("MSH|two"));
        stream.extend_from_slice(&[0x0b, b'M']);
        let (first, used) = next_block(&stream).unwrap();
        assert_eq!(first, Some(&b"MSH|one"[..]));
        let rest = &stream[used..];
        let (noise, used) = next_block(rest).unwrap();
        assert_eq!(noise, None);
        let rest = &rest[used..];
        let (second, used) = next_block(rest).unwrap();
        assert_eq!(second, Some(&b"MSH|two"[..]));
        assert_eq!(next_block(&rest[used..]), None, "a block still arriving waits");
    }

    #[test]
    fn an_ack_we_send_reads_back_with_our_own_reader() {
        let at = NaiveDate::from_ymd_opt(2026, 12, 1).unwrap().and_hms_opt(9, 0, 0).unwrap();
        let to = Answered { application: "LAB", facility: "ACME", trigger: "R01", control_id: "M-1" };
        let aa = ack(&to, AckCode::Accepted, "filed", "ours", at);
        assert_eq!(acknowledgement(&aa, "M-1"), Ok(Ack::Accepted));
        let ar = ack(&to, AckCode::Rejected, "PID-7 | bad", "ours", at);
        assert_eq!(acknowledgement(&ar, "M-1"), Ok(Ack::Rejected("PID-7 | bad".into())));
        let ae = ack(&to, AckCode::Error, "no order 42", "ours", at);
        assert_eq!(acknowledgement(&ae, "M-1"), Ok(Ack::Error("no order 42".into())));
        assert!(aa.starts_with("MSH|^~\\&|MMT-SIDECAR||LAB|ACME|20261201090000||ACK^R01^ACK|ours|P|2.5.1"));
    }

    #[test]
    fn separators_in_the_text_are_escaped_and_decode_back() {
        let text = "K+ 5.9 | recheck ^ soon & call ~ family \\ done";
        let message = sample(text);
        let parsed = hl7_parser::Message::parse(&message).unwrap();
        let obx = parsed.segment("OBX").unwrap();
        assert_eq!(unescape(&parsed.separators, obx.field(5).unwrap().raw_value()), text);
        assert_eq!(parsed.segment("PID").unwrap().field(8).unwrap().raw_value(), "M");
    }

    #[test]
    fn unescaping_text_that_is_not_ascii_keeps_every_character() {
        let separators = hl7_parser::message::Separators::default();
        assert_eq!(
            unescape(&separators, r"Muñoz\S\José\.br\Ünal \H\bold\N\ 5\T\6"),
            "Muñoz^José\rÜnal bold 5&6"
        );
        assert_eq!(unescape(&separators, r"ܴ\Zx\ and an open \ escape ñ"), r"ܴ\Zx\ and an open \ escape ñ");
        assert_eq!(unescape(&separators, r"a\X0d\b\X0A\c\XC3B1\d\XF1\e"), "a\rb\nc\u{f1}d\u{f1}e");
        assert_eq!(unescape(&separators, r"odd \X0\ and \Xzz\ stay"), r"odd \X0\ and \Xzz\ stay");
    }
}
