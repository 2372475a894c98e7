//! The system of record, behind one interface with two back ends: PostgreSQL (production) and
//! memory (the embedded default, `eval`, tests of pure logic). Both pass the same contract tests.
//!
//! All work for one event happens in one transaction ([`Tx`]): it claims the event id (a second
//! delivery finds it claimed), reads and locks the business (so bookings for a business are
//! serialised), reads and writes conversation state, appointments and opt-outs, and queues outgoing
//! texts in the outbox; nothing is visible to anyone else until `commit`.

pub mod memory;
pub mod postgres;

use std::future::Future;
use std::sync::Arc;

use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};
use textback_schemas::{Carrier, PhoneNumber};
use uuid::Uuid;

use crate::assistant::{Appointment, State};
use crate::profile::Business;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("store unavailable: {0}")]
    Unavailable(String),
    #[error("store error: {0}")]
    Other(String),
}

pub type Result<T> = std::result::Result<T, StoreError>;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Conversation {
    pub id: Uuid,
    pub business_id: String,
    pub caller: PhoneNumber,
    pub state: State,
    pub started_at: Timestamp,
    pub last_activity_at: Timestamp,
    pub last_textback_at: Option<Timestamp>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OutKind {
    TextBack,
    Reply,
    OwnerAlert,
}

impl OutKind {
    pub fn as_str(self) -> &'static str {
        match self {
            OutKind::TextBack => "text_back",
            OutKind::Reply => "reply",
            OutKind::OwnerAlert => "owner_alert",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [OutKind::TextBack, OutKind::Reply, OutKind::OwnerAlert]
            .into_iter()
            .find(|k| k.as_str() == s)
    }
}

/// A text waiting to be sent (and, once sent, the record of it).
#[derive(Debug, Clone, PartialEq)]
pub struct Outgoing {
    pub id: Uuid,
    /// The carrier the conversation came in on, which sends the text.
    pub carrier: Carrier,
    pub business_id: String,
    pub conversation_id: Option<Uuid>,
    pub from: PhoneNumber,
    pub to: PhoneNumber,
    pub body: String,
    pub kind: OutKind,
    pub queued_at: Timestamp,
    /// When the gateway received the event that caused this text: the service-level clock.
    pub event_received_at: Timestamp,
}

/// An inbound text, as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct Inbound {
    pub carrier: Carrier,
    pub business_id: String,
    pub conversation_id: Uuid,
    pub from: PhoneNumber,
    pub to: PhoneNumber,
    pub carrier_message_id: String,
    pub body: String,
    pub at: Timestamp,
}

/// An outgoing text claimed by the sender, with how often it was tried before.
#[derive(Debug, Clone, PartialEq)]
pub struct Claimed {
    pub message: Outgoing,
    pub attempts: u32,
    /// A sender claimed it before and neither sent nor released it (it died): the carrier may
    /// already have it.
    pub maybe_sent: bool,
}

/// A booking write refused because the slot filled up in the meantime.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SlotTaken;

pub struct NewAppointment<'a> {
    pub id: Uuid,
    pub business: &'a Business,
    pub service_id: &'a str,
    pub caller: &'a PhoneNumber,
    pub start: Timestamp,
    pub conversation_id: Uuid,
}

pub trait Store: Send + Sync + 'static {
    type Tx: Tx;
    fn begin(&self) -> impl Future<Output = Result<Self::Tx>> + Send;
    /// Inserts or replaces a business by id.
    fn upsert_business(&self, business: &Business) -> impl Future<Output = Result<()>> + Send;
    /// Gives a handed-off conversation back to the assistant; false when there was none to resume.
    fn resume(
        &self,
        business_id: &str,
        caller: &PhoneNumber,
    ) -> impl Future<Output = Result<bool>> + Send;
    /// Every text queued to `to`, oldest first.
    fn texts_to(&self, to: &PhoneNumber) -> impl Future<Output = Result<Vec<Outgoing>>> + Send;

    // The sender's side of the outbox.

    /// Up to `limit` texts due at `now`, leased to the caller until `now + lease` (another sender
    /// skips them meanwhile; a sender that dies leaves them to be claimed again after the lease).
    fn claim_due(
        &self,
        now: Timestamp,
        limit: usize,
        lease: SignedDuration,
    ) -> impl Future<Output = Result<Vec<Claimed>>> + Send;
    /// The carrier accepted the text.
    fn mark_sent(
        &self,
        id: Uuid,
        carrier_message_id: &str,
        at: Timestamp,
    ) -> impl Future<Output = Result<()>> + Send;
    /// Not tried: release it until `next_at` (the per-number rate limit said wait).
    fn postpone(&self, id: Uuid, next_at: Timestamp) -> impl Future<Output = Result<()>> + Send;
    /// Try again at `next_at`.
    fn mark_retry(&self, id: Uuid, next_at: Timestamp) -> impl Future<Output = Result<()>> + Send;
    /// The carrier refused it for good; `opt_out` when the recipient has unsubscribed.
    fn mark_failed(
        &self,
        id: Uuid,
        error_code: &str,
        opt_out: bool,
        at: Timestamp,
    ) -> impl Future<Output = Result<()>> + Send;
    /// How many texts wait in the outbox.
    fn outbox_depth(&self) -> impl Future<Output = Result<u64>> + Send;
}

pub trait Tx: Send {
    /// Records the event id; false when it was already recorded (a redelivery).
    fn claim_event(&mut self, id: Uuid) -> impl Future<Output = Result<bool>> + Send;
    /// The business that owns this number, locked for the rest of the transaction.
    fn business_by_number(
        &mut self,
        number: &PhoneNumber,
    ) -> impl Future<Output = Result<Option<Arc<Business>>>> + Send;
    fn opted_out(
        &mut self,
        business_id: &str,
        caller: &PhoneNumber,
    ) -> impl Future<Output = Result<bool>> + Send;
    fn set_opted_out(
        &mut self,
        business_id: &str,
        caller: &PhoneNumber,
        opted_out: bool,
        at: Timestamp,
    ) -> impl Future<Output = Result<()>> + Send;
    fn conversation(
        &mut self,
        business_id: &str,
        caller: &PhoneNumber,
    ) -> impl Future<Output = Result<Option<Conversation>>> + Send;
    fn save_conversation(
        &mut self,
        conversation: &Conversation,
    ) -> impl Future<Output = Result<()>> + Send;
    /// The business's active appointments starting at or after `from`.
    fn appointments(
        &mut self,
        business: &Business,
        from: Timestamp,
    ) -> impl Future<Output = Result<Vec<Appointment>>> + Send;
    /// Books, unless that would exceed the business's capacity at some instant.
    fn book(
        &mut self,
        new: NewAppointment<'_>,
    ) -> impl Future<Output = Result<std::result::Result<(), SlotTaken>>> + Send;
    /// Moves (and possibly changes the service of) an appointment, under the same capacity rule.
    fn move_appointment(
        &mut self,
        business: &Business,
        id: Uuid,
        service_id: &str,
        start: Timestamp,
    ) -> impl Future<Output = Result<std::result::Result<(), SlotTaken>>> + Send;
    fn cancel_appointment(
        &mut self,
        id: Uuid,
        at: Timestamp,
    ) -> impl Future<Output = Result<()>> + Send;
    /// Stores an inbound text on its conversation (once per carrier message id).
    fn record_inbound(&mut self, message: &Inbound) -> impl Future<Output = Result<()>> + Send;
    /// A delivery report for an outgoing text, by the carrier's message id.
    fn update_status(
        &mut self,
        carrier_message_id: &str,
        status: &str,
        error_code: Option<&str>,
    ) -> impl Future<Output = Result<()>> + Send;
    fn enqueue(&mut self, message: &Outgoing) -> impl Future<Output = Result<()>> + Send;
    fn commit(self) -> impl Future<Output = Result<()>> + Send;
}

/// Whether adding `[start, end)` to `existing` busy intervals would put `capacity` or more
/// appointments at some instant. Both back ends check bookings with this.
pub(crate) fn exceeds(
    existing: &[(Timestamp, Timestamp)],
    capacity: u32,
    start: Timestamp,
    end: Timestamp,
) -> bool {
    let overlapping: Vec<&(Timestamp, Timestamp)> = existing
        .iter()
        .filter(|(s, e)| *s < end && *e > start)
        .collect();
    // The count only rises at `start` or at an existing start inside the interval.
    std::iter::once(start)
        .chain(overlapping.iter().map(|(s, _)| *s).filter(|s| *s > start))
        .any(|p| {
            overlapping
                .iter()
                .filter(|(s, e)| *s <= p && p < *e)
                .count() as u32
                >= capacity
        })
}

/// How long an appointment of `service_id` keeps the business busy.
pub(crate) fn busy_until(business: &Business, service_id: &str, start: Timestamp) -> Timestamp {
    let minutes = business
        .service(service_id)
        .map_or(0, |s| s.duration_min + s.buffer_min);
    start + SignedDuration::from_mins(minutes)
}
