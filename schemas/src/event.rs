//! The event envelope: one per carrier webhook, whatever the carrier.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::PhoneNumber;

/// Namespace of the UUIDv5 event ids. Never change it: ids must stay stable across versions so a
/// webhook retried across a deploy is still recognised as the same event.
pub const EVENT_ID_NAMESPACE: Uuid = Uuid::from_u128(0x6c1f_0a55_7e2b_4f0e_9d3a_5b8c_2e71_d4a9);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Carrier {
    Twilio,
    Telnyx,
}

impl Carrier {
    pub fn as_str(self) -> &'static str {
        match self {
            Carrier::Twilio => "twilio",
            Carrier::Telnyx => "telnyx",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventKind {
    MissedCall,
    CallAnswered,
    InboundSms,
    MessageStatus,
}

impl EventKind {
    pub const ALL: [EventKind; 4] = [
        EventKind::MissedCall,
        EventKind::CallAnswered,
        EventKind::InboundSms,
        EventKind::MessageStatus,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::MissedCall => "missed_call",
            EventKind::CallAnswered => "call_answered",
            EventKind::InboundSms => "inbound_sms",
            EventKind::MessageStatus => "message_status",
        }
    }
}

/// One normalised carrier webhook.
///
/// `business_number` is always the business's number and `caller_number` the other party, whichever
/// way the message or call went, so the pair names the conversation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    pub id: Uuid,
    pub carrier: Carrier,
    pub account: String,
    pub business_number: PhoneNumber,
    pub caller_number: PhoneNumber,
    /// When the carrier says it happened (falls back to `received_at` when the carrier does not say).
    pub occurred_at: Timestamp,
    /// When the gateway received the webhook: the service-level clock starts here.
    pub received_at: Timestamp,
    #[serde(flatten)]
    pub detail: Detail,
}

/// What happened, by kind. Serialised inline in the envelope, tagged by `kind`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Detail {
    MissedCall(Call),
    CallAnswered(Call),
    InboundSms(InboundSms),
    MessageStatus(MessageStatus),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Call {
    /// The carrier's call id (Twilio CallSid, Telnyx call_session_id).
    pub call_id: String,
    /// The carrier's own status word (`no-answer`, `busy`, `timeout`, `completed`, ...).
    pub call_status: String,
    pub duration_secs: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InboundSms {
    pub message_id: String,
    pub body: String,
    pub media_count: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MessageStatus {
    pub message_id: String,
    pub status: MessageState,
    /// The carrier's own status word, kept for the record.
    pub carrier_status: String,
    /// The carrier's error code, when the message failed (Twilio `21610`, Telnyx `40300`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_code: Option<String>,
}

/// Delivery state of an outgoing message, the same words for every carrier.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MessageState {
    Queued,
    Sent,
    Delivered,
    Undelivered,
    Failed,
}

impl Detail {
    pub fn kind(&self) -> EventKind {
        match self {
            Detail::MissedCall(_) => EventKind::MissedCall,
            Detail::CallAnswered(_) => EventKind::CallAnswered,
            Detail::InboundSms(_) => EventKind::InboundSms,
            Detail::MessageStatus(_) => EventKind::MessageStatus,
        }
    }
}

impl Event {
    /// The id of an event, derived only from what the carrier sends, so that a retried webhook gets
    /// the same id in every gateway copy: UUIDv5 of carrier, kind, the carrier's id and its status.
    pub fn derive_id(carrier: Carrier, kind: EventKind, carrier_id: &str, status: &str) -> Uuid {
        let mut name = String::with_capacity(carrier_id.len() + status.len() + 32);
        for part in [carrier.as_str(), kind.as_str(), carrier_id, status] {
            name.push_str(part);
            name.push('\n');
        }
        Uuid::new_v5(&EVENT_ID_NAMESPACE, name.as_bytes())
    }

    pub fn kind(&self) -> EventKind {
        self.detail.kind()
    }

    /// The Kafka key: business number and caller number, so one conversation stays on one partition
    /// and in order.
    pub fn partition_key(&self) -> String {
        conversation_key(&self.business_number, &self.caller_number)
    }
}

/// The partition key of the conversation between a business number and a caller.
pub fn conversation_key(business: &PhoneNumber, caller: &PhoneNumber) -> String {
    let mut key = String::with_capacity(business.as_str().len() + caller.as_str().len() + 1);
    key.push_str(business.as_str());
    key.push('|');
    key.push_str(caller.as_str());
    key
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_deterministic_and_distinguish_every_part() {
        let a = Event::derive_id(Carrier::Twilio, EventKind::MissedCall, "CA1", "no-answer");
        assert_eq!(
            a,
            Event::derive_id(Carrier::Twilio, EventKind::MissedCall, "CA1", "no-answer")
        );
        assert_ne!(
            a,
            Event::derive_id(Carrier::Telnyx, EventKind::MissedCall, "CA1", "no-answer")
        );
        assert_ne!(
            a,
            Event::derive_id(Carrier::Twilio, EventKind::CallAnswered, "CA1", "no-answer")
        );
        assert_ne!(
            a,
            Event::derive_id(Carrier::Twilio, EventKind::MissedCall, "CA2", "no-answer")
        );
        assert_ne!(
            a,
            Event::derive_id(Carrier::Twilio, EventKind::MissedCall, "CA1", "busy")
        );
        // Field boundaries matter: ("ab", "c") and ("a", "bc") are different events.
        assert_ne!(
            Event::derive_id(Carrier::Twilio, EventKind::MessageStatus, "ab", "c"),
            Event::derive_id(Carrier::Twilio, EventKind::MessageStatus, "a", "bc")
        );
        assert_eq!(a.get_version_num(), 5);
    }

    #[test]
    fn partition_key_is_business_then_caller() {
        let b = PhoneNumber::parse("+16175550100").unwrap();
        let c = PhoneNumber::parse("+16175550123").unwrap();
        assert_eq!(conversation_key(&b, &c), "+16175550100|+16175550123");
    }
}
