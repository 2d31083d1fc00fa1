//! Outgoing e-mail over SMTP with lettre, configured by `SMTP_URL`. Sending is always done by a
//! job, so a slow or absent mail server never holds a request.

use std::time::Duration;

use lettre::{
    AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor,
    message::{Attachment, Mailbox, MultiPart, SinglePart, header::ContentType},
};
use secrecy::ExposeSecret;

use crate::config::MailConfig;

/// How long one conversation with the mail server may take.
const SMTP_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug, thiserror::Error)]
pub enum MailError {
    /// The server answered 5xx: sending the same message again fails the same way.
    #[error("the mail server refused the message ({0})")]
    Refused(String),
    /// Connection, TLS, timeout or a 4xx answer: worth another attempt later.
    #[error("could not hand the message to the mail server ({0})")]
    Unavailable(String),
    #[error("could not build the message: {0}")]
    Message(String),
}

impl MailError {
    pub fn is_permanent(&self) -> bool {
        !matches!(self, Self::Unavailable(_))
    }
}

pub struct Mailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Option<Mailbox>,
}

/// A message to one recipient with one file attached.
pub struct Letter<'a> {
    pub from: Mailbox,
    pub to: &'a str,
    pub subject: String,
    pub body: String,
    pub file_name: String,
    pub content_type: &'a str,
    pub file: Vec<u8>,
}

impl Mailer {
    /// `None` when `SMTP_URL` is unset (the URL was validated when the configuration was read).
    pub fn from_config(config: &MailConfig) -> Option<Self> {
        let url = config.smtp_url.as_ref()?;
        let builder = AsyncSmtpTransport::<Tokio1Executor>::from_url(url.expose_secret())
            .map_err(|_| tracing::error!("SMTP_URL no longer parses; e-mail is off"))
            .ok()?;
        Some(Self { transport: builder.timeout(Some(SMTP_TIMEOUT)).build(), from: config.from.clone() })
    }

    /// The configured From address (`MMT_MAIL_FROM`), which wins over OpenEMR's.
    pub fn from(&self) -> Option<&Mailbox> {
        self.from.as_ref()
    }

    /// Sends the letter and answers its Message-ID.
    pub async fn send(&self, letter: Letter<'_>) -> Result<String, MailError> {
        let message = build(letter)?;
        let id = message.headers().get_raw("Message-ID").unwrap_or_default().to_string();
        self.transport.send(message).await.map_err(|e| {
            let what = match e.status() {
                Some(code) => format!("SMTP {code}"),
                None if e.is_timeout() => "timed out".into(),
                None => "no usable connection".into(),
            };
            if e.is_permanent() { MailError::Refused(what) } else { MailError::Unavailable(what) }
        })?;
        Ok(id)
    }
}

fn build(letter: Letter<'_>) -> Result<Message, MailError> {
    let bad = |e: &dyn std::fmt::Display| MailError::Message(e.to_string());
    let to: Mailbox = letter.to.parse().map_err(|e| bad(&e))?;
    let content_type = ContentType::parse(letter.content_type).map_err(|e| bad(&e))?;
    Message::builder()
        .message_id(None)
        .from(letter.from)
        .to(to)
        .subject(letter.subject)
        .multipart(
            MultiPart::mixed()
                .singlepart(SinglePart::plain(letter.body))
                .singlepart(Attachment::new(letter.file_name).body(letter.file, content_type)),
        )
        .map_err(|e| bad(&e))
}
