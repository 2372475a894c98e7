//! The configuration file: typed, documented in `config.default.toml`, overridable by `TEXTBACK_*`
//! environment variables, validated once at start. Only the binary reads files and the environment;
//! libraries and tests receive values.

use std::path::Path;

use serde::Deserialize;
use textback_gateway::Settings as GatewaySettings;
use textback_worker::sender::SenderSettings;

pub const DEFAULT_TOML: &str = include_str!("../config.default.toml");

/// The sections that environment variables may address: `TEXTBACK_<SECTION>_<KEY>`.
const SECTIONS: [&str; 6] = ["gateway", "kafka", "twilio", "telnyx", "worker", "sender"];

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    gateway: toml::Table,
    #[serde(default)]
    kafka: toml::Table,
    #[serde(default)]
    twilio: toml::Table,
    #[serde(default)]
    telnyx: toml::Table,
    #[serde(default)]
    worker: toml::Table,
    #[serde(default)]
    sender: toml::Table,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkerSettings {
    pub postgres_url: String,
    pub max_connections: usize,
    pub consumer_group: String,
    pub shards: usize,
    pub cooldown_minutes: i64,
    pub metrics_listen: String,
}

pub struct Config {
    pub gateway: GatewaySettings,
    pub worker: WorkerSettings,
    pub sender: SenderSettings,
}

/// Secrets stay out of `{:?}`.
impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let url = &self.worker.postgres_url;
        let url = match (url.find("://"), url.rfind('@')) {
            (Some(scheme), Some(at)) if at > scheme => {
                format!("{}***{}", &url[..scheme + 3], &url[at..])
            }
            _ => url.clone(),
        };
        f.debug_struct("Config")
            .field("gateway", &self.gateway)
            .field("worker.postgres_url", &url)
            .field("worker.consumer_group", &self.worker.consumer_group)
            .field("worker.shards", &self.worker.shards)
            .field("sender.per_number_rate", &self.sender.per_number_rate)
            .field("sender.twilio.base_url", &self.sender.twilio.base_url)
            .field("sender.telnyx.base_url", &self.sender.telnyx.base_url)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{0}")]
    Invalid(String),
}

impl Config {
    /// The default file, then `path` if given, then the environment.
    pub fn load(
        path: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, ConfigError> {
        let mut table: toml::Table = DEFAULT_TOML
            .parse()
            .expect("the default config is valid TOML");
        if let Some(path) = path {
            let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                path: path.display().to_string(),
                source,
            })?;
            let file: toml::Table = text
                .parse()
                .map_err(|e| ConfigError::Invalid(format!("{}: {e}", path.display())))?;
            merge(&mut table, file);
        }
        for (name, value) in env {
            apply_env(&mut table, &name, &value)?;
        }
        Self::from_table(table)
    }

    fn from_table(table: toml::Table) -> Result<Self, ConfigError> {
        let file: File = toml::Value::Table(table)
            .try_into()
            .map_err(|e| ConfigError::Invalid(format!("{e}")))?;
        let mut gateway = file.gateway;
        gateway.insert("kafka".into(), file.kafka.into());
        gateway.insert("twilio".into(), file.twilio.into());
        gateway.insert("telnyx".into(), file.telnyx.into());
        let gateway: GatewaySettings = toml::Value::Table(gateway)
            .try_into()
            .map_err(|e| ConfigError::Invalid(format!("{e}")))?;
        let worker: WorkerSettings = toml::Value::Table(file.worker)
            .try_into()
            .map_err(|e| ConfigError::Invalid(format!("[worker] {e}")))?;
        let sender: SenderSettings = toml::Value::Table(file.sender)
            .try_into()
            .map_err(|e| ConfigError::Invalid(format!("[sender] {e}")))?;
        Ok(Config {
            gateway,
            worker,
            sender,
        })
    }
}

fn merge(base: &mut toml::Table, over: toml::Table) {
    for (key, value) in over {
        match (base.get_mut(&key), value) {
            (Some(toml::Value::Table(b)), toml::Value::Table(o)) => merge(b, o),
            (_, value) => {
                base.insert(key, value);
            }
        }
    }
}

fn apply_env(table: &mut toml::Table, name: &str, value: &str) -> Result<(), ConfigError> {
    let Some(rest) = name.strip_prefix("TEXTBACK_") else {
        return Ok(());
    };
    let rest = rest.to_ascii_lowercase();
    let Some((section, key)) = rest.split_once('_') else {
        return Ok(());
    };
    if !SECTIONS.contains(&section) {
        // TEXTBACK_LOG and friends belong to other readers.
        return Ok(());
    }
    let parsed = format!("v = {value}")
        .parse::<toml::Table>()
        .ok()
        .and_then(|mut t| t.remove("v"))
        .unwrap_or_else(|| toml::Value::String(value.to_owned()));
    let section = table
        .entry(section)
        .or_insert_with(|| toml::Table::new().into());
    match section {
        toml::Value::Table(t) => {
            t.insert(key.to_owned(), parsed);
            Ok(())
        }
        _ => Err(ConfigError::Invalid(format!(
            "{name}: [{section}] is not a table"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn defaults_load_and_env_overrides_apply() {
        let c = Config::load(
            None,
            env(&[
                ("TEXTBACK_KAFKA_BROKERS", "10.1.2.3:9092"),
                ("TEXTBACK_KAFKA_PUBLISH_TIMEOUT_MS", "750"),
                ("TEXTBACK_GATEWAY_ACK_MODE", "fast"),
                ("TEXTBACK_TWILIO_AUTH_TOKENS", "{ AC1 = \"t\" }"),
                ("TEXTBACK_LOG", "debug"),
                ("PATH", "/bin"),
            ]),
        )
        .unwrap();
        assert_eq!(c.gateway.kafka.brokers, "10.1.2.3:9092");
        assert_eq!(c.gateway.kafka.publish_timeout_ms, 750);
        assert_eq!(c.gateway.ack_mode, textback_gateway::AckMode::Fast);
        assert_eq!(c.gateway.twilio.auth_tokens["AC1"], "t");
        assert_eq!(c.gateway.max_body_bytes, 64 * 1024);
    }

    #[test]
    fn unknown_keys_and_bad_values_are_errors_naming_the_key() {
        let err = Config::load(None, env(&[("TEXTBACK_GATEWAY_LISTEN_ON", "x")])).unwrap_err();
        assert!(err.to_string().contains("listen_on"), "{err}");
        let err =
            Config::load(None, env(&[("TEXTBACK_GATEWAY_ACK_MODE", "sometimes")])).unwrap_err();
        assert!(err.to_string().contains("sometimes"), "{err}");
    }

    #[test]
    fn debug_output_never_shows_secrets() {
        let c = Config::load(
            None,
            env(&[("TEXTBACK_TWILIO_AUTH_TOKENS", "{ AC1 = \"supersecret\" }")]),
        )
        .unwrap();
        assert!(!format!("{c:?}").contains("supersecret"));
    }
}
