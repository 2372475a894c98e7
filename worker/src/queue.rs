//! Where the worker's events come from: Kafka (production) or an in-process channel (the embedded
//! default). Either way each delivery names a shard — the Kafka partition, or the conversation key's
//! hash — and the worker handles one shard's deliveries in order, so a conversation's events are
//! never reordered or handled by two tasks at once.
//!
//! Kafka offsets are stored only when a delivery is acknowledged, which the worker does after the
//! event's PostgreSQL transaction has committed (auto-commit then commits stored offsets). A crash
//! before that redelivers the event; its id is already recorded, so nothing happens twice.

use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::time::Duration;

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::Message;
use serde::Deserialize;
use textback_schemas::Event;
use tokio::sync::mpsc;

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct KafkaConsumerSettings {
    pub brokers: String,
    pub topic: String,
    pub group: String,
    /// Extra librdkafka properties.
    pub extra: std::collections::BTreeMap<String, String>,
}

impl Default for KafkaConsumerSettings {
    fn default() -> Self {
        KafkaConsumerSettings {
            brokers: "127.0.0.1:9092".into(),
            topic: textback_schemas::EVENTS_TOPIC.into(),
            group: "textback-worker".into(),
            extra: Default::default(),
        }
    }
}

pub struct Delivery {
    pub event: Event,
    pub shard: usize,
    ack: Ack,
}

enum Ack {
    Kafka {
        consumer: Arc<StreamConsumer>,
        topic: Arc<str>,
        partition: i32,
        offset: i64,
    },
    InProcess,
}

impl Delivery {
    /// The event is handled for good: Kafka may forget it.
    pub fn ack(self) {
        self.ack.done();
    }
}

impl Ack {
    fn done(self) {
        if let Ack::Kafka {
            consumer,
            topic,
            partition,
            offset,
        } = self
        {
            // Fails only when the partition was revoked meanwhile; its new owner sees the event
            // again and finds it already handled.
            if let Err(e) = consumer.store_offset(&topic, partition, offset) {
                tracing::debug!(error = %e, partition, "offset not stored");
            }
        }
    }
}

pub enum Queue {
    Kafka {
        consumer: Arc<StreamConsumer>,
        topic: Arc<str>,
    },
    InProcess {
        rx: mpsc::Receiver<Event>,
        shards: usize,
    },
}

impl Queue {
    pub fn kafka(settings: &KafkaConsumerSettings) -> Result<Queue, rdkafka::error::KafkaError> {
        let mut config = ClientConfig::new();
        config
            .set("bootstrap.servers", &settings.brokers)
            .set("group.id", &settings.group)
            .set("client.id", "textback-worker")
            .set("enable.auto.commit", "true")
            .set("auto.commit.interval.ms", "500")
            .set("enable.auto.offset.store", "false")
            .set("auto.offset.reset", "earliest")
            .set("session.timeout.ms", "6000")
            .set("heartbeat.interval.ms", "1000")
            .set("fetch.wait.max.ms", "50")
            .set("socket.nagle.disable", "true");
        for (k, v) in &settings.extra {
            config.set(k, v);
        }
        let consumer: StreamConsumer = config.create()?;
        consumer.subscribe(&[&settings.topic])?;
        Ok(Queue::Kafka {
            consumer: Arc::new(consumer),
            topic: settings.topic.as_str().into(),
        })
    }

    /// An in-process queue and the sender the gateway publishes into.
    pub fn in_process(capacity: usize, shards: usize) -> (mpsc::Sender<Event>, Queue) {
        let (tx, rx) = mpsc::channel(capacity);
        (
            tx,
            Queue::InProcess {
                rx,
                shards: shards.max(1),
            },
        )
    }

    /// For Kafka, something to measure consumer lag with while the queue is in use elsewhere.
    pub fn lag_probe(&self) -> Option<LagProbe> {
        match self {
            Queue::Kafka { consumer, topic } => Some(LagProbe {
                consumer: consumer.clone(),
                topic: topic.clone(),
            }),
            Queue::InProcess { .. } => None,
        }
    }

    /// The next event; None when the queue is closed for good.
    pub async fn recv(&mut self) -> Option<Delivery> {
        match self {
            Queue::InProcess { rx, shards } => {
                let event = rx.recv().await?;
                let mut h = std::collections::hash_map::DefaultHasher::new();
                event.partition_key().hash(&mut h);
                let shard = (h.finish() % *shards as u64) as usize;
                Some(Delivery {
                    event,
                    shard,
                    ack: Ack::InProcess,
                })
            }
            Queue::Kafka { consumer, topic } => loop {
                let msg = match consumer.recv().await {
                    Ok(m) => m,
                    Err(e) => {
                        tracing::warn!(error = %e, "Kafka consumer error");
                        tokio::time::sleep(Duration::from_millis(200)).await;
                        continue;
                    }
                };
                let (partition, offset) = (msg.partition(), msg.offset());
                let ack = Ack::Kafka {
                    consumer: consumer.clone(),
                    topic: topic.clone(),
                    partition,
                    offset,
                };
                match msg.payload().map(serde_json::from_slice::<Event>) {
                    Some(Ok(event)) => {
                        return Some(Delivery {
                            event,
                            shard: partition as usize,
                            ack,
                        })
                    }
                    other => {
                        // Never going to parse: skip it rather than block the partition.
                        let reason = match other {
                            Some(Err(e)) => e.to_string(),
                            _ => "empty payload".into(),
                        };
                        tracing::error!(partition, offset, reason = %reason, "undecodable event skipped");
                        ack.done();
                    }
                }
            },
        }
    }
}

/// Measures how far the group's committed offsets trail the end of each assigned partition.
pub struct LagProbe {
    consumer: Arc<StreamConsumer>,
    topic: Arc<str>,
}

impl LagProbe {
    /// (partition, lag) for the partitions assigned to this consumer. Blocking: run it off the runtime.
    pub fn lag_blocking(&self) -> Vec<(i32, i64)> {
        let timeout = Duration::from_secs(2);
        let Ok(committed) = self.consumer.committed(timeout) else {
            return Vec::new();
        };
        committed
            .elements_for_topic(&self.topic)
            .iter()
            .filter_map(|e| {
                let (_, high) = self
                    .consumer
                    .fetch_watermarks(&self.topic, e.partition(), timeout)
                    .ok()?;
                let done = match e.offset() {
                    rdkafka::Offset::Offset(n) => n,
                    _ => 0,
                };
                Some((e.partition(), (high - done).max(0)))
            })
            .collect()
    }
}
