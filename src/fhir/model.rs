//! FHIR R4 JSON shapes for the resources served. Hand-written: no maintained Rust crate models
//! plain R4 (see the README); the test suite validates every shape with `fhir.resources`.

use poem_openapi::{
    Object,
    types::{ParseFromJSON, ToJSON},
};

#[derive(Object, Debug, Clone)]
#[oai(rename_all = "camelCase", skip_serializing_if_is_none)]
pub struct Meta {
    pub version_id: Option<String>,
    pub last_updated: Option<String>,
    #[oai(skip_serializing_if_is_empty, default)]
    pub profile: Vec<String>,
}

#[derive(Object, Debug, Clone)]
#[oai(rename_all = "camelCase", skip_serializing_if_is_none)]
pub struct Coding {
    pub system: Option<String>,
    pub code: Option<String>,
    pub display: Option<String>,
}

#[derive(Object, Debug, Clone)]
#[oai(rename_all = "camelCase", skip_serializing_if_is_none)]
pub struct CodeableConcept {
    #[oai(skip_serializing_if_is_empty, default)]
    pub coding: Vec<Coding>,
    pub text: Option<String>,
}

#[derive(Object, Debug, Clone)]
#[oai(rename_all = "camelCase", skip_serializing_if_is_none)]
pub struct Identifier {
    #[oai(rename = "use")]
    pub use_: Option<String>,
    #[oai(rename = "type")]
    pub kind: Option<CodeableConcept>,
    pub system: Option<String>,
    pub value: Option<String>,
}

#[derive(Object, Debug, Clone)]
#[oai(rename_all = "camelCase", skip_serializing_if_is_none)]
pub struct HumanName {
    #[oai(rename = "use")]
    pub use_: Option<String>,
    pub family: Option<String>,
    #[oai(skip_serializing_if_is_empty, default)]
    pub given: Vec<String>,
}

#[derive(Object, Debug, Clone)]
#[oai(rename_all = "camelCase", skip_serializing_if_is_none)]
pub struct ContactPoint {
    pub system: Option<String>,
    pub value: Option<String>,
    #[oai(rename = "use")]
    pub use_: Option<String>,
}

#[derive(Object, Debug, Clone)]
#[oai(rename_all = "camelCase", skip_serializing_if_is_none)]
pub struct Address {
    #[oai(skip_serializing_if_is_empty, default)]
    pub line: Vec<String>,
    pub city: Option<String>,
    pub state: Option<String>,
    pub postal_code: Option<String>,
}

/// A patient, as US Core 3.1.1 Patient (identifier, name and gender always present).
#[derive(Object, Debug, Clone)]
#[oai(rename_all = "camelCase", skip_serializing_if_is_none)]
pub struct Patient {
    /// Always `Patient`.
    pub resource_type: String,
    /// OpenEMR's patient uuid: the id OpenEMR's own FHIR API gives this patient.
    pub id: String,
    pub meta: Meta,
    pub identifier: Vec<Identifier>,
    pub active: bool,
    pub name: Vec<HumanName>,
    #[oai(skip_serializing_if_is_empty, default)]
    pub telecom: Vec<ContactPoint>,
    pub gender: String,
    pub birth_date: Option<String>,
    pub deceased_date_time: Option<String>,
    #[oai(skip_serializing_if_is_empty, default)]
    pub address: Vec<Address>,
}

#[derive(Object, Debug, Clone)]
#[oai(rename_all = "camelCase")]
pub struct BundleLink {
    /// `self` or `next`.
    pub relation: String,
    pub url: String,
}

#[derive(Object, Debug, Clone)]
#[oai(rename_all = "camelCase")]
pub struct BundleSearch {
    /// Always `match`.
    pub mode: String,
}

#[derive(Object, Debug, Clone)]
#[oai(rename_all = "camelCase")]
pub struct Entry<T: ParseFromJSON + ToJSON> {
    pub full_url: String,
    pub resource: T,
    pub search: BundleSearch,
}

/// A page of search results; follow the `next` link, when there is one, for the following page.
#[derive(Object, Debug, Clone)]
#[oai(rename_all = "camelCase")]
pub struct Bundle<T: ParseFromJSON + ToJSON> {
    /// Always `Bundle`.
    pub resource_type: String,
    /// Always `searchset`.
    #[oai(rename = "type")]
    pub kind: String,
    /// Matches across all pages; absent where a search pages by cursor and does not count.
    #[oai(skip_serializing_if_is_none)]
    pub total: Option<i64>,
    pub link: Vec<BundleLink>,
    #[oai(skip_serializing_if_is_empty, default)]
    pub entry: Vec<Entry<T>>,
}

#[derive(Object, Debug, Clone)]
#[oai(rename_all = "camelCase", skip_serializing_if_is_none)]
pub struct Reference {
    /// `Patient/{id}`.
    pub reference: Option<String>,
    /// A name for what is referred to, where it has no resource here yet.
    pub display: Option<String>,
}

#[derive(Object, Debug, Clone)]
#[oai(rename_all = "camelCase", skip_serializing_if_is_none)]
pub struct Period {
    pub start: Option<String>,
    pub end: Option<String>,
}

#[derive(Object, Debug, Clone)]
#[oai(rename_all = "camelCase")]
pub struct EncounterParticipant {
    pub individual: Reference,
}

/// A visit (US Core Encounter), from OpenEMR's `form_encounter`.
#[derive(Object, Debug, Clone)]
#[oai(rename_all = "camelCase", skip_serializing_if_is_none)]
pub struct Encounter {
    /// Always `Encounter`.
    pub resource_type: String,
    pub id: String,
    pub meta: Meta,
    pub identifier: Vec<Identifier>,
    /// `finished` once the visit's day has passed or it has an end; `in-progress` before.
    pub status: String,
    pub class: Coding,
    #[oai(rename = "type")]
    pub kind: Vec<CodeableConcept>,
    pub subject: Reference,
    #[oai(skip_serializing_if_is_empty, default)]
    pub participant: Vec<EncounterParticipant>,
    pub period: Option<Period>,
    #[oai(skip_serializing_if_is_empty, default)]
    pub reason_code: Vec<CodeableConcept>,
    pub service_provider: Option<Reference>,
}

/// A problem-list entry (US Core Condition), from OpenEMR's `lists` (type `medical_problem`).
#[derive(Object, Debug, Clone)]
#[oai(rename_all = "camelCase", skip_serializing_if_is_none)]
pub struct Condition {
    /// Always `Condition`.
    pub resource_type: String,
    pub id: String,
    pub meta: Meta,
    pub clinical_status: Option<CodeableConcept>,
    pub verification_status: Option<CodeableConcept>,
    pub category: Vec<CodeableConcept>,
    pub code: CodeableConcept,
    pub subject: Reference,
    pub onset_date_time: Option<String>,
    pub abatement_date_time: Option<String>,
    pub recorded_date: Option<String>,
}

#[derive(Object, Debug, Clone)]
#[oai(rename_all = "camelCase", skip_serializing_if_is_none)]
pub struct AllergyReaction {
    pub manifestation: Vec<CodeableConcept>,
    /// mild, moderate or severe.
    pub severity: Option<String>,
}

/// An allergy (US Core AllergyIntolerance), from OpenEMR's `lists` (type `allergy`).
#[derive(Object, Debug, Clone)]
#[oai(rename_all = "camelCase", skip_serializing_if_is_none)]
pub struct AllergyIntolerance {
    /// Always `AllergyIntolerance`.
    pub resource_type: String,
    pub id: String,
    pub meta: Meta,
    pub clinical_status: Option<CodeableConcept>,
    pub verification_status: Option<CodeableConcept>,
    pub code: CodeableConcept,
    pub patient: Reference,
    pub onset_date_time: Option<String>,
    pub recorded_date: Option<String>,
    #[oai(skip_serializing_if_is_empty, default)]
    pub reaction: Vec<AllergyReaction>,
}

#[derive(Object, Debug, Clone)]
#[oai(rename_all = "camelCase", skip_serializing_if_is_none)]
pub struct OutcomeIssue {
    /// `error`.
    pub severity: String,
    /// FHIR issue type: `invalid`, `login`, `forbidden`, `not-found`, `transient`…
    pub code: String,
    pub diagnostics: Option<String>,
    /// The parameters or fields at fault.
    #[oai(skip_serializing_if_is_empty, default)]
    pub expression: Vec<String>,
}

/// Every error: what went wrong, one issue per field at fault.
#[derive(Object, Debug, Clone)]
#[oai(rename_all = "camelCase")]
pub struct OperationOutcome {
    /// Always `OperationOutcome`.
    pub resource_type: String,
    pub issue: Vec<OutcomeIssue>,
}

#[derive(Object, Debug, Clone)]
#[oai(rename_all = "camelCase", skip_serializing_if_is_none)]
pub struct SearchParam {
    pub name: String,
    #[oai(rename = "type")]
    pub kind: String,
    pub documentation: Option<String>,
}

#[derive(Object, Debug, Clone)]
#[oai(rename_all = "camelCase")]
pub struct Interaction {
    /// `read` or `search-type`.
    pub code: String,
}

#[derive(Object, Debug, Clone)]
#[oai(rename_all = "camelCase", skip_serializing_if_is_none)]
pub struct RestResource {
    #[oai(rename = "type")]
    pub kind: String,
    pub profile: Option<String>,
    pub interaction: Vec<Interaction>,
    #[oai(skip_serializing_if_is_empty, default)]
    pub search_param: Vec<SearchParam>,
}

#[derive(Object, Debug, Clone)]
#[oai(rename_all = "camelCase")]
pub struct Rest {
    /// Always `server`.
    pub mode: String,
    pub resource: Vec<RestResource>,
    /// System operations: the bulk exports.
    pub operation: Vec<RestOperation>,
}

#[derive(Object, Debug, Clone)]
pub struct RestOperation {
    pub name: String,
    /// The OperationDefinition's canonical URL.
    pub definition: String,
}

#[derive(Object, Debug, Clone)]
#[oai(rename_all = "camelCase")]
pub struct Software {
    pub name: String,
    pub version: String,
}

/// What this server implements, and nothing more.
#[derive(Object, Debug, Clone)]
#[oai(rename_all = "camelCase")]
pub struct CapabilityStatement {
    /// Always `CapabilityStatement`.
    pub resource_type: String,
    pub status: String,
    pub date: String,
    pub kind: String,
    pub software: Software,
    pub fhir_version: String,
    pub format: Vec<String>,
    pub rest: Vec<Rest>,
}

#[derive(Object, Debug, Clone)]
#[oai(rename_all = "camelCase")]
pub struct Quantity {
    pub value: f64,
    pub unit: String,
    /// Always UCUM.
    pub system: String,
    pub code: String,
}

#[derive(Object, Debug, Clone)]
#[oai(rename_all = "camelCase")]
pub struct ObservationComponent {
    pub code: CodeableConcept,
    pub value_quantity: Quantity,
}

/// A vital sign (FHIR vital-signs profile), one per measurement of an OpenEMR vitals form, with
/// the ids OpenEMR's `uuid_mapping` gives them.
#[derive(Object, Debug, Clone)]
#[oai(rename_all = "camelCase", skip_serializing_if_is_none)]
pub struct Observation {
    /// Always `Observation`.
    pub resource_type: String,
    pub id: String,
    pub meta: Meta,
    pub status: String,
    pub category: Vec<CodeableConcept>,
    pub code: CodeableConcept,
    pub subject: Reference,
    pub effective_date_time: Option<String>,
    pub value_quantity: Option<Quantity>,
    #[oai(skip_serializing_if_is_empty, default)]
    pub component: Vec<ObservationComponent>,
    #[oai(skip_serializing_if_is_empty, default)]
    pub has_member: Vec<Reference>,
}

/// A provider (US Core Practitioner): an active OpenEMR user who provides care.
#[derive(Object, Debug, Clone)]
#[oai(rename_all = "camelCase", skip_serializing_if_is_none)]
pub struct Practitioner {
    /// Always `Practitioner`.
    pub resource_type: String,
    pub id: String,
    pub meta: Meta,
    pub identifier: Vec<Identifier>,
    pub active: bool,
    pub name: Vec<HumanName>,
}

/// A facility (US Core Organization), from OpenEMR's `facility`.
#[derive(Object, Debug, Clone)]
#[oai(rename_all = "camelCase", skip_serializing_if_is_none)]
pub struct Organization {
    /// Always `Organization`.
    pub resource_type: String,
    pub id: String,
    pub meta: Meta,
    pub active: bool,
    pub name: String,
    #[oai(skip_serializing_if_is_empty, default)]
    pub telecom: Vec<ContactPoint>,
    #[oai(skip_serializing_if_is_empty, default)]
    pub address: Vec<Address>,
}

#[derive(Object, Debug, Clone)]
#[oai(rename_all = "camelCase", skip_serializing_if_is_none)]
pub struct Dosage {
    pub text: Option<String>,
}

#[derive(Object, Debug, Clone)]
#[oai(rename_all = "camelCase", skip_serializing_if_is_none)]
pub struct DispenseRequest {
    pub number_of_repeats_allowed: Option<u32>,
}

/// A prescription (US Core MedicationRequest), from OpenEMR's `prescriptions`.
#[derive(Object, Debug, Clone)]
#[oai(rename_all = "camelCase", skip_serializing_if_is_none)]
pub struct MedicationRequest {
    /// Always `MedicationRequest`.
    pub resource_type: String,
    pub id: String,
    pub meta: Meta,
    /// `active`, or `stopped` once discontinued.
    pub status: String,
    pub intent: String,
    pub medication_codeable_concept: CodeableConcept,
    pub subject: Reference,
    pub authored_on: Option<String>,
    pub requester: Reference,
    #[oai(skip_serializing_if_is_empty, default)]
    pub dosage_instruction: Vec<Dosage>,
    pub dispense_request: Option<DispenseRequest>,
}

#[derive(Object, Debug, Clone)]
#[oai(rename_all = "camelCase")]
pub struct AppointmentParticipant {
    #[oai(rename = "type")]
    pub kind: Vec<CodeableConcept>,
    pub actor: Reference,
    /// Always `accepted`: OpenEMR's calendar keeps no per-participant answer.
    pub status: String,
}

/// A calendar appointment, from OpenEMR's `openemr_postcalendar_events`, as OpenEMR's own FHIR
/// API maps it.
#[derive(Object, Debug, Clone)]
#[oai(rename_all = "camelCase", skip_serializing_if_is_none)]
pub struct Appointment {
    /// Always `Appointment`.
    pub resource_type: String,
    pub id: String,
    pub meta: Meta,
    /// OpenEMR's appointment status mapped as its FHIR API maps it (`-` proposed, `@` arrived,
    /// `>` fulfilled, `x` cancelled, `?` noshow, …).
    pub status: String,
    /// The calendar category: its constant id and name.
    pub appointment_type: Option<CodeableConcept>,
    pub description: Option<String>,
    pub start: Option<String>,
    pub end: Option<String>,
    pub minutes_duration: Option<i64>,
    pub comment: Option<String>,
    pub participant: Vec<AppointmentParticipant>,
}

/// A provider's calendar, as a Schedule whose id is the provider's (Practitioner) uuid.
#[derive(Object, Debug, Clone)]
#[oai(rename_all = "camelCase", skip_serializing_if_is_none)]
pub struct Schedule {
    /// Always `Schedule`.
    pub resource_type: String,
    pub id: String,
    pub active: bool,
    pub actor: Vec<Reference>,
    pub comment: Option<String>,
}

/// A free start on a provider's calendar for a visit of one calendar category, computed from
/// In Office hours, provider events, closures and appointments; nothing is stored.
#[derive(Object, Debug, Clone)]
#[oai(rename_all = "camelCase", skip_serializing_if_is_none)]
pub struct Slot {
    /// Always `Slot`.
    pub resource_type: String,
    /// `{schedule id}.{YYYYMMDDhhmm}.{category id}.{minutes}`.
    pub id: String,
    pub schedule: Reference,
    /// Always `free`: booked time is an Appointment.
    pub status: String,
    /// The calendar category: its constant id and name.
    #[oai(skip_serializing_if_is_empty, default)]
    pub service_type: Vec<CodeableConcept>,
    pub start: String,
    pub end: String,
}

/// Who takes part in an appointment being booked: the patient and the provider.
#[derive(Object, Debug, Clone)]
#[oai(rename_all = "camelCase")]
pub struct ParticipantInput {
    pub actor: Reference,
}

/// An appointment to book: a free `slot`, or `start` with a provider participant and the
/// calendar category as `appointmentType` or `serviceType`.
#[derive(Object, Debug, Clone)]
#[oai(rename_all = "camelCase")]
pub struct AppointmentCreate {
    /// `Appointment`.
    pub resource_type: String,
    /// `booked` or `proposed`: booked with OpenEMR's default status (`-`, which OpenEMR's FHIR API
    /// reads as proposed); `pending`: a hold (`^`) that lapses unless confirmed.
    pub status: String,
    /// `Slot/{id}`, as the Slot search returns it.
    #[oai(default)]
    pub slot: Vec<Reference>,
    pub start: Option<String>,
    pub end: Option<String>,
    pub minutes_duration: Option<i64>,
    /// The reason for the visit (OpenEMR's comments, `pc_hometext`).
    pub comment: Option<String>,
    pub appointment_type: Option<CodeableConcept>,
    #[oai(default)]
    pub service_type: Vec<CodeableConcept>,
    /// `Patient/{id}` (required) and, without a slot, `Practitioner/{id}`.
    #[oai(default)]
    pub participant: Vec<ParticipantInput>,
}

/// A measured amount as a client sends it: the UCUM unit in `code` (or `unit`).
#[derive(Object, Debug, Clone)]
#[oai(rename_all = "camelCase")]
pub struct QuantityInput {
    pub value: f64,
    pub unit: Option<String>,
    pub system: Option<String>,
    pub code: Option<String>,
}

#[derive(Object, Debug, Clone)]
#[oai(rename_all = "camelCase")]
pub struct ComponentInput {
    pub code: CodeableConcept,
    pub value_quantity: Option<QuantityInput>,
}

/// A vital sign to record: one LOINC-coded measurement, or the blood-pressure panel with its
/// systolic and diastolic components, taken in an encounter of the subject.
#[derive(Object, Debug, Clone)]
#[oai(rename_all = "camelCase")]
pub struct ObservationCreate {
    /// `Observation`.
    pub resource_type: String,
    /// `final`, `amended`, `corrected` or `preliminary`.
    pub status: String,
    pub code: CodeableConcept,
    /// `Patient/{id}`.
    pub subject: Reference,
    /// `Encounter/{id}`: the visit whose vitals form it goes into; required.
    pub encounter: Option<Reference>,
    pub effective_date_time: Option<String>,
    pub value_quantity: Option<QuantityInput>,
    #[oai(default)]
    pub component: Vec<ComponentInput>,
}

/// A document's content: inline (`data`, base64) or where to fetch it (`url`, a Binary).
#[derive(Object, Debug, Clone)]
#[oai(rename_all = "camelCase", skip_serializing_if_is_none)]
pub struct Attachment {
    pub content_type: Option<String>,
    /// Base64 of the content.
    pub data: Option<String>,
    pub url: Option<String>,
    pub title: Option<String>,
}

#[derive(Object, Debug, Clone)]
#[oai(rename_all = "camelCase", skip_serializing_if_is_none)]
pub struct DocumentContent {
    pub attachment: Attachment,
    pub format: Option<Coding>,
}

#[derive(Object, Debug, Clone)]
#[oai(rename_all = "camelCase", skip_serializing_if_is_none)]
pub struct DocumentContext {
    #[oai(skip_serializing_if_is_empty, default)]
    pub encounter: Vec<Reference>,
    pub period: Option<Period>,
}

/// A patient document (OpenEMR's `documents`, content in a Binary) or a filed clinical note
/// (`form_clinical_notes`, its text inline), as US Core 3.1.1 DocumentReference.
#[derive(Object, Debug, Clone)]
#[oai(rename_all = "camelCase", skip_serializing_if_is_none)]
pub struct DocumentReference {
    /// Always `DocumentReference`.
    pub resource_type: String,
    /// The document's or the note's OpenEMR uuid.
    pub id: String,
    pub meta: Meta,
    pub identifier: Vec<Identifier>,
    /// `current`, or `entered-in-error` for a note made inactive.
    pub status: String,
    #[oai(rename = "type")]
    pub kind: CodeableConcept,
    pub category: Vec<CodeableConcept>,
    pub subject: Reference,
    pub date: Option<String>,
    #[oai(skip_serializing_if_is_empty, default)]
    pub author: Vec<Reference>,
    pub custodian: Option<Reference>,
    pub content: Vec<DocumentContent>,
    pub context: Option<DocumentContext>,
}

/// A document's bytes as a FHIR resource (asked for with `Accept: application/fhir+json`).
#[derive(Object, Debug, Clone)]
#[oai(rename_all = "camelCase")]
pub struct BinaryResource {
    /// Always `Binary`.
    pub resource_type: String,
    pub id: String,
    pub content_type: String,
    /// Base64 of the document.
    pub data: String,
}

#[derive(Object, Debug, Clone)]
#[oai(rename_all = "camelCase")]
pub struct AttachmentInput {
    /// `text/plain` (the default).
    pub content_type: Option<String>,
    /// Base64 of the note's UTF-8 text.
    pub data: String,
}

#[derive(Object, Debug, Clone)]
#[oai(rename_all = "camelCase")]
pub struct DocumentContentInput {
    pub attachment: AttachmentInput,
}

#[derive(Object, Debug, Clone)]
#[oai(rename_all = "camelCase")]
pub struct DocumentContextInput {
    /// `Encounter/{id}`: the visit the note is filed into.
    #[oai(default)]
    pub encounter: Vec<Reference>,
}

/// A clinical note to file: its text as one `text/plain` attachment, filed into the encounter
/// named in `context` as a note of OpenEMR's Clinical Notes form.
#[derive(Object, Debug, Clone)]
#[oai(rename_all = "camelCase")]
pub struct DocumentReferenceCreate {
    /// `DocumentReference`.
    pub resource_type: String,
    /// `current`.
    pub status: String,
    /// The note type's LOINC code (one of OpenEMR's `Clinical_Note_Type` list); a progress note
    /// (11506-3) when absent.
    #[oai(rename = "type")]
    pub kind: Option<CodeableConcept>,
    /// `Patient/{id}`.
    pub subject: Reference,
    pub content: Vec<DocumentContentInput>,
    pub context: Option<DocumentContextInput>,
}

#[derive(Object, Debug, Clone)]
#[oai(rename_all = "camelCase")]
pub struct CommunicationPayload {
    /// One entry of the thread, as OpenEMR's Messages screen shows it: when, who to whom, text.
    pub content_string: String,
}

/// A message thread between OpenEMR users (`pnotes`): one per recipient, as OpenEMR keeps them.
#[derive(Object, Debug, Clone)]
#[oai(rename_all = "camelCase", skip_serializing_if_is_none)]
pub struct Communication {
    /// Always `Communication`.
    pub resource_type: String,
    /// OpenEMR's message id (`pnotes.id`; OpenEMR gives messages no uuid).
    pub id: String,
    pub meta: Meta,
    /// `completed` once OpenEMR's status is `Done`, else `in-progress`.
    pub status: String,
    /// The message type (OpenEMR's `note_type` list) as text.
    #[oai(skip_serializing_if_is_empty, default)]
    pub category: Vec<CodeableConcept>,
    /// The patient the message is about, if any.
    pub subject: Option<Reference>,
    pub sent: Option<String>,
    /// When the current recipient first opened it.
    pub received: Option<String>,
    #[oai(skip_serializing_if_is_empty, default)]
    pub recipient: Vec<Reference>,
    pub sender: Option<Reference>,
    #[oai(skip_serializing_if_is_empty, default)]
    pub payload: Vec<CommunicationPayload>,
}

#[derive(Object, Debug, Clone)]
#[oai(rename_all = "camelCase")]
pub struct PayloadInput {
    pub content_string: String,
}

/// A message to send from the signed-in user, as OpenEMR's Messages screen sends it.
#[derive(Object, Debug, Clone)]
#[oai(rename_all = "camelCase")]
pub struct CommunicationCreate {
    /// `Communication`.
    pub resource_type: String,
    /// `in-progress` or `completed`: a message is sent as OpenEMR's `New`.
    pub status: String,
    /// The message type as `text`: one of OpenEMR's `note_type` list (`Unassigned` when absent).
    #[oai(default)]
    pub category: Vec<CodeableConcept>,
    /// `Patient/{id}` when the message is about a patient.
    pub subject: Option<Reference>,
    /// Exactly one `Practitioner/{id}` (an OpenEMR user's uuid): OpenEMR keeps one thread per
    /// recipient.
    pub recipient: Vec<Reference>,
    /// The text; several parts are joined by new lines.
    pub payload: Vec<PayloadInput>,
}

/// A finished bulk export's manifest (Bulk Data Access 1.0 complete status).
#[derive(Object, Debug, Clone)]
#[oai(rename_all = "camelCase")]
pub struct ExportManifest {
    /// When the export started; its data is as of this instant.
    pub transaction_time: String,
    /// The kick-off request's URL.
    pub request: String,
    /// Always true: each file is fetched with the same credentials as the kick-off.
    pub requires_access_token: bool,
    pub output: Vec<ExportOutput>,
    pub error: Vec<ExportOutput>,
}

/// One NDJSON file of an export.
#[derive(Object, Debug, Clone)]
pub struct ExportOutput {
    #[oai(rename = "type")]
    pub kind: String,
    pub url: String,
    pub count: u64,
}

/// A provider group (OpenEMR's FhirPatientProviderGroupService): the patients whose provider one
/// practitioner is. `type` and `actual`, which R4 requires and OpenEMR leaves out, are set.
#[derive(Object, Debug, Clone)]
#[oai(rename_all = "camelCase", skip_serializing_if_is_none)]
pub struct Group {
    pub resource_type: String,
    pub id: String,
    pub meta: Meta,
    #[oai(rename = "type")]
    pub kind: String,
    pub actual: bool,
    pub name: Option<String>,
    pub quantity: u32,
    #[oai(skip_serializing_if_is_empty, default)]
    pub member: Vec<GroupMember>,
}

#[derive(Object, Debug, Clone)]
pub struct GroupMember {
    pub entity: Reference,
}
