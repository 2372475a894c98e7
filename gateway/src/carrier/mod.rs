//! Carrier adapters: each verifies its carrier's signature on the raw bytes, then turns the webhook
//! into at most one [`Event`]. No I/O here; the clock is passed in.

pub mod telnyx;
pub mod twilio;

use textback_schemas::{Event, PhoneNumber};

/// Why a webhook was refused. The server maps these to HTTP statuses in one place.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum WebhookError {
    /// The body is not what this carrier sends (400).
    #[error("malformed webhook: {0}")]
    Malformed(String),
    /// The signature is missing, wrong or stale, or the account is unknown (403).
    #[error("forbidden: {0}")]
    Forbidden(&'static str),
}

pub type Parsed = Result<Option<Event>, WebhookError>;

/// A number a caller may text from or call from. Callers who hide their number are not an error:
/// there is just nobody to text back.
pub(crate) enum Party {
    Number(PhoneNumber),
    Hidden,
}

pub(crate) fn party(field: &str, value: Option<&str>) -> Result<Party, WebhookError> {
    let value = value.ok_or_else(|| WebhookError::Malformed(format!("missing {field}")))?;
    if let Ok(n) = PhoneNumber::parse(value) {
        return Ok(Party::Number(n));
    }
    match value.to_ascii_lowercase().as_str() {
        "" | "anonymous" | "restricted" | "private" | "unknown" | "unavailable" => {
            Ok(Party::Hidden)
        }
        _ => Err(WebhookError::Malformed(format!(
            "{field} is not an E.164 number"
        ))),
    }
}

pub(crate) fn number(field: &str, value: Option<&str>) -> Result<PhoneNumber, WebhookError> {
    let value = value.ok_or_else(|| WebhookError::Malformed(format!("missing {field}")))?;
    PhoneNumber::parse(value)
        .map_err(|_| WebhookError::Malformed(format!("{field} is not an E.164 number")))
}

pub(crate) fn required<'a>(field: &str, value: Option<&'a str>) -> Result<&'a str, WebhookError> {
    match value {
        Some(v) if !v.is_empty() => Ok(v),
        _ => Err(WebhookError::Malformed(format!("missing {field}"))),
    }
}
