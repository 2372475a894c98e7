//! The contract between the gateway and the worker.
//!
//! Everything both sides must agree on lives here and nowhere else: the event envelope and its kinds,
//! the Kafka topic, the partition key, how event ids are derived, and (under `json/` and `sql/`) the
//! JSON Schema files and SQL migrations. This crate does no I/O.

mod event;
mod phone;

pub use event::{
    conversation_key, Call, Carrier, Detail, Event, EventKind, InboundSms, MessageState,
    MessageStatus, EVENT_ID_NAMESPACE,
};
pub use phone::{PhoneNumber, PhoneNumberError};

/// The one topic every carrier webhook lands on. Bump the suffix for an incompatible change.
pub const EVENTS_TOPIC: &str = "textback.events.v1";

/// The JSON Schema of [`Event`], as shipped in `schemas/json/event.v1.json`.
pub const EVENT_JSON_SCHEMA: &str = include_str!("../json/event.v1.json");

/// The SQL migrations, in order: (version, file name, SQL). Applied by `textback migrate`.
pub const SQL_MIGRATIONS: &[(i32, &str, &str)] =
    &[(1, "0001_init.sql", include_str!("../sql/0001_init.sql"))];
