//! The HTTP layer: thin poem-openapi operations that parse input, call a service, shape output.

pub mod admin;
pub mod allow;
pub mod audio_api;
pub mod auth;
pub mod auth_api;
pub mod billing;
pub mod care_team_api;
pub mod catalogue;
pub mod chart;
pub mod chat;
pub mod dashboard;
pub mod docs;
pub mod documents;
pub mod encounters_api;
pub mod etag;
pub mod events_api;
pub mod fhir;
pub mod health;
pub mod hl7_api;
pub mod jobs_api;
pub mod malformed;
pub mod messaging;
pub mod metrics;
pub mod middleware;
pub mod paging;
pub mod patient_access_api;
pub mod patients_api;
pub mod problem;
pub mod query_utf8;
pub mod reference_api;
pub mod scheduling;
pub mod served_spec;
pub mod server;
pub mod spec_routes;
pub mod transcriptions_api;
pub mod webhooks_api;

use poem_openapi::{OpenApiService, Tags};

#[derive(Tags)]
pub enum ApiTags {
    /// Service health.
    Health,
    /// Sign-in with OpenEMR credentials or an OpenEMR session, tokens, sign-out.
    Auth,
    /// OpenEMR patients: search, demographics, registration.
    Patients,
    /// OpenEMR encounters.
    Encounters,
    /// OpenEMR facilities and providers.
    Reference,
    /// Dictated visits: transcription, review and filing into the OpenEMR chart.
    Transcriptions,
    /// Live updates: job progress, notifications and other events as they happen (SSE; WebSocket at /api/ws/).
    Events,
    /// Background jobs: state, progress, result and cancellation.
    Jobs,
    /// Change events for integrations: signed webhook deliveries (administrators).
    Webhooks,
    /// OpenEMR's calendar: appointments, free slots, provider schedules, booking without double booking.
    Scheduling,
    /// Messages between clinicians in OpenEMR's inbox (pnotes), with read receipts.
    Messages,
    /// The signed-in user's notifications (new messages), also pushed live.
    Notifications,
    /// The patient's chart: vitals, allergies, problems, medications and prescriptions.
    Chart,
    /// The signed-in clinician's dashboard: appointments, recently viewed patients, counts, notifications.
    Dashboard,
    /// Live chat rooms about a patient or an appointment: members, history, read markers, typing, transcripts.
    Chat,
    /// Patients' documents in OpenEMR's own store (encrypted as OpenEMR encrypts them) and their categories.
    Documents,
    /// Fee-sheet charges, invoices and patient payments in OpenEMR's billing tables.
    Billing,
    /// Practice administration over OpenEMR's own administration tables: facilities, staff
    /// accounts and roles.
    Administration,
    /// Suppliers' product catalogues, imported from their spreadsheets, for prescribers.
    Catalogue,
    /// HL7 v2 messages in (lab results, documents, registrations), acknowledged, kept and
    /// deduplicated; those whose patient is unclear wait for a person.
    Hl7,
}

/// The operations, grouped by capability (a tuple holds at most twelve).
pub type Apis = (
    (
        health::HealthApi,
        auth_api::AuthApi,
        patients_api::PatientsApi,
        patient_access_api::PatientAccessApi,
        care_team_api::CareTeamApi,
        encounters_api::EncountersApi,
        reference_api::ReferenceApi,
        transcriptions_api::TranscriptionsApi,
        audio_api::AudioApi,
        events_api::EventsApi,
        jobs_api::JobsApi,
        webhooks_api::WebhooksApi,
    ),
    (scheduling::appointments_api::AppointmentsApi, scheduling::schedule_api::ScheduleApi),
    (
        messaging::messages_api::MessagesApi,
        messaging::notifications_api::NotificationsApi,
        chat::chat_api::ChatApi,
    ),
    (
        chart::vitals_api::VitalsApi,
        chart::issues_api::IssuesApi,
        chart::prescriptions_api::PrescriptionsApi,
        chart::prescription_sends_api::PrescriptionSendsApi,
    ),
    (
        dashboard::dashboard_api::DashboardApi,
        dashboard::profile_api::ProfileApi,
        dashboard::sessions_api::SessionsApi,
    ),
    (documents::documents_api::DocumentsApi, documents::context_api::TranscriptionContextApi),
    (
        billing::charges_api::ChargesApi,
        billing::invoices_api::InvoicesApi,
        billing::payments_api::PaymentsApi,
        billing::prices_api::PricesApi,
        billing::checkout_api::CheckoutApi,
    ),
    (admin::facilities_api::FacilitiesApi, admin::users_api::UsersApi, catalogue::products_api::ProductsApi),
    hl7_api::Hl7Api,
);

pub fn api_service() -> OpenApiService<Apis, ()> {
    OpenApiService::new(Apis::default(), "mmt-sidecar", env!("CARGO_PKG_VERSION"))
        .description(
            "Companion API beside OpenEMR: OpenEMR logins and single sign-on, the dictation and \
             transcription workflow, and clinical data keyed off OpenEMR patients. Every error is \
             an RFC 9457 problem (application/problem+json). Operations other than health need \
             authentication: an access token from /auth/login/ (or /auth/bridge/ with an OpenEMR \
             session), sent as `Authorization: Bearer`.",
        )
        .server("/api")
}
