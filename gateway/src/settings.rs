//! The gateway's settings: plain values, with defaults that run on a developer's machine.
//!
//! Built from the config file by the binary (`src/config.rs`) or directly by tests; `validate` is the
//! one check, run once at start.

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

use serde::Deserialize;

#[derive(Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// Address to listen on.
    pub listen: SocketAddr,
    /// The public base URL the carriers call (scheme, host, optional port and path prefix), as Twilio
    /// signs the URL it requested, not the one the gateway sees behind a proxy.
    pub public_base_url: String,
    /// `durable`: answer once Kafka confirms the write. `fast`: answer once the event is queued in the
    /// producer.
    pub ack_mode: AckMode,
    /// A larger body is refused with 413.
    pub max_body_bytes: usize,
    /// A client that has not sent its request headers by then is disconnected.
    pub header_read_timeout_ms: u64,
    /// How long an event id is remembered for dropping carrier retries.
    pub dedupe_ttl_secs: u64,
    /// Spoken by the `<Dial>` action TwiML before hanging up; empty for none.
    pub dial_action_message: String,
    /// On shutdown, how long in-flight requests and the producer's queue may take to finish.
    pub shutdown_grace_ms: u64,
    pub kafka: KafkaSettings,
    pub twilio: TwilioSettings,
    pub telnyx: TelnyxSettings,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AckMode {
    Durable,
    Fast,
}

#[derive(Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct KafkaSettings {
    pub brokers: String,
    pub topic: String,
    /// Durable mode: a webhook whose event Kafka has not confirmed by then gets 503.
    pub publish_timeout_ms: u64,
    /// Producer queue bound; when full, webhooks get 503 (back-pressure, never a sleep).
    pub queue_max_messages: u32,
    /// How often the gateway checks that Kafka answers (for `/readyz`).
    pub probe_interval_ms: u64,
    /// Extra librdkafka properties, e.g. `"security.protocol" = "ssl"`.
    pub extra: BTreeMap<String, String>,
}

#[derive(Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TwilioSettings {
    /// AccountSid → auth token. A webhook from an account not listed here is refused with 403.
    pub auth_tokens: BTreeMap<String, String>,
}

#[derive(Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TelnyxSettings {
    /// The account's Ed25519 public key, base64, as shown in the Telnyx portal. Empty: Telnyx disabled.
    pub public_key: String,
    /// Webhooks whose `telnyx-timestamp` is further than this from the gateway's clock are refused.
    pub timestamp_tolerance_secs: u64,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            public_base_url: "http://127.0.0.1:8080".into(),
            ack_mode: AckMode::Durable,
            max_body_bytes: 64 * 1024,
            header_read_timeout_ms: 5_000,
            dedupe_ttl_secs: 24 * 3600,
            dial_action_message: "Sorry we missed your call. We will text you right away.".into(),
            shutdown_grace_ms: 5_000,
            kafka: KafkaSettings::default(),
            twilio: TwilioSettings::default(),
            telnyx: TelnyxSettings::default(),
        }
    }
}

impl Default for KafkaSettings {
    fn default() -> Self {
        KafkaSettings {
            brokers: "127.0.0.1:9092".into(),
            topic: textback_schemas::EVENTS_TOPIC.into(),
            publish_timeout_ms: 1_000,
            queue_max_messages: 100_000,
            probe_interval_ms: 1_000,
            extra: BTreeMap::new(),
        }
    }
}

impl Default for TelnyxSettings {
    fn default() -> Self {
        TelnyxSettings {
            public_key: String::new(),
            timestamp_tolerance_secs: 300,
        }
    }
}

impl Settings {
    /// Checks what serde cannot. The message names the setting at fault.
    pub fn validate(&self) -> Result<(), String> {
        let url = &self.public_base_url;
        if !(url.starts_with("http://") || url.starts_with("https://")) || url.ends_with('/') {
            return Err(format!(
                "gateway.public_base_url must be an http(s) URL without a trailing slash, got {url:?}"
            ));
        }
        if self.max_body_bytes == 0 {
            return Err("gateway.max_body_bytes must be above 0".into());
        }
        if self.header_read_timeout_ms == 0 {
            return Err("gateway.header_read_timeout_ms must be above 0".into());
        }
        if self.kafka.brokers.trim().is_empty() || self.kafka.topic.trim().is_empty() {
            return Err("kafka.brokers and kafka.topic must be set".into());
        }
        if !(1..=10_000).contains(&self.kafka.publish_timeout_ms) {
            return Err("kafka.publish_timeout_ms must be between 1 and 10000".into());
        }
        if self.kafka.queue_max_messages == 0 {
            return Err("kafka.queue_max_messages must be above 0".into());
        }
        for (sid, token) in &self.twilio.auth_tokens {
            if !sid.starts_with("AC") || token.is_empty() {
                return Err(format!(
                    "twilio.auth_tokens: {sid:?} must be an AccountSid (AC...) with a non-empty token"
                ));
            }
        }
        if !self.telnyx.public_key.is_empty() {
            crate::carrier::telnyx::decode_public_key(&self.telnyx.public_key)
                .map_err(|e| format!("telnyx.public_key: {e}"))?;
        }
        if self.twilio.auth_tokens.is_empty() && self.telnyx.public_key.is_empty() {
            return Err(
                "no carrier configured: set twilio.auth_tokens or telnyx.public_key".into(),
            );
        }
        Ok(())
    }

    pub fn header_read_timeout(&self) -> Duration {
        Duration::from_millis(self.header_read_timeout_ms)
    }

    pub fn publish_timeout(&self) -> Duration {
        Duration::from_millis(self.kafka.publish_timeout_ms)
    }
}

/// Secrets stay out of `{:?}`: tokens and keys print as their count only.
impl fmt::Debug for Settings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Settings")
            .field("listen", &self.listen)
            .field("public_base_url", &self.public_base_url)
            .field("ack_mode", &self.ack_mode)
            .field("max_body_bytes", &self.max_body_bytes)
            .field("kafka.brokers", &self.kafka.brokers)
            .field("kafka.topic", &self.kafka.topic)
            .field("twilio.accounts", &self.twilio.auth_tokens.len())
            .field("telnyx.enabled", &!self.telnyx.public_key.is_empty())
            .finish_non_exhaustive()
    }
}
