//! The gateway: carrier webhooks in, events on Kafka out, acknowledged in under a millisecond.
//!
//! It verifies each carrier's signature on the raw bytes, normalises the webhook into one
//! [`textback_schemas::Event`], drops carrier retries it has already published, publishes to Kafka
//! keyed by conversation and answers the carrier. It holds no database connection and no state that
//! matters across restarts, so any number of copies can run behind a load balancer.

pub mod carrier;
mod dedupe;
mod publish;
mod server;
pub mod settings;
pub mod telemetry;

pub use publish::{KafkaPublisher, PublishError, Publisher};
pub use server::{Gateway, StartError};
pub use settings::{AckMode, KafkaSettings, Settings, TelnyxSettings, TwilioSettings};
