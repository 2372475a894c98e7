//! The worker: carrier events in, texts and bookings out.
//!
//! - `profile`: business profiles as owners configure them.
//! - `assistant`: the pure conversation engine (no I/O).
//! - `store`: the system of record behind one interface (PostgreSQL, memory).
//! - `engine`: one event, one transaction: the text-back policy and the assistant applied to the store.
//! - `eval`: runs a corpus of scripted conversations and scores the outcomes.

pub mod assistant;
pub mod engine;
pub mod eval;
pub mod profile;
pub mod queue;
pub mod run;
pub mod sender;
pub mod simulator;
pub mod sms;
pub mod store;
pub mod telemetry;
