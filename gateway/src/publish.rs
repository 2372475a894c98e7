//! Publishing events to Kafka with rdkafka, in one of two acknowledgement modes.
//!
//! `durable`: the webhook is answered once Kafka has confirmed the write (acks=all), or with 503 once
//! the publish timeout passes. `fast`: answered once the event is in the producer's queue; librdkafka
//! retries it until delivered, so it survives a broker outage but not a crash of the gateway.
//! Neither mode sleeps on the ack path: a full queue is refused at once (back-pressure → 503).

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;

use rdkafka::config::ClientConfig;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};

use crate::settings::{AckMode, KafkaSettings};
use crate::telemetry::{Metrics, PublishFailure};
use textback_schemas::Event;

#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    #[error("producer queue full")]
    QueueFull,
    #[error("Kafka did not confirm within the publish timeout")]
    Timeout,
    #[error("Kafka refused the event: {0}")]
    Broker(String),
}

impl PublishError {
    pub fn failure(&self) -> PublishFailure {
        match self {
            PublishError::QueueFull => PublishFailure::QueueFull,
            PublishError::Timeout => PublishFailure::Timeout,
            PublishError::Broker(_) => PublishFailure::Broker,
        }
    }
}

/// Where accepted events go: Kafka (production) or a channel to a worker in the same process (the
/// embedded default).
#[derive(Clone)]
pub enum Publisher {
    Kafka(KafkaPublisher),
    InProcess {
        tx: mpsc::Sender<Event>,
        metrics: Arc<Metrics>,
    },
}

impl Publisher {
    pub async fn publish(&self, event: &Event) -> Result<(), PublishError> {
        match self {
            Publisher::Kafka(k) => k.publish(event).await,
            Publisher::InProcess { tx, metrics } => match tx.try_send(event.clone()) {
                Ok(()) => {
                    metrics.event_published(event, None);
                    Ok(())
                }
                Err(mpsc::error::TrySendError::Full(_)) => Err(PublishError::QueueFull),
                Err(mpsc::error::TrySendError::Closed(_)) => {
                    Err(PublishError::Broker("the worker has stopped".into()))
                }
            },
        }
    }

    /// Whether events can be published now. Blocking: run it off the runtime.
    pub fn probe_blocking(&self, timeout: Duration) -> bool {
        match self {
            Publisher::Kafka(k) => k.probe_blocking(timeout),
            Publisher::InProcess { tx, .. } => !tx.is_closed(),
        }
    }

    /// Waits (bounded) until every accepted event is delivered. Blocking.
    pub fn flush_blocking(&self, timeout: Duration) -> bool {
        match self {
            Publisher::Kafka(k) => k.flush_blocking(timeout),
            Publisher::InProcess { .. } => true,
        }
    }

    pub fn in_flight(&self) -> i32 {
        match self {
            Publisher::Kafka(k) => k.in_flight(),
            Publisher::InProcess { .. } => 0,
        }
    }
}

#[derive(Clone)]
pub struct KafkaPublisher {
    producer: FutureProducer,
    topic: Arc<str>,
    mode: AckMode,
    timeout: Duration,
    metrics: Arc<Metrics>,
}

impl KafkaPublisher {
    pub fn new(
        settings: &KafkaSettings,
        mode: AckMode,
        metrics: Arc<Metrics>,
    ) -> Result<Self, KafkaError> {
        let mut config = ClientConfig::new();
        // Durable mode gives up with the webhook; fast mode has already answered, so it never gives up.
        let message_timeout = match mode {
            AckMode::Durable => settings.publish_timeout_ms.to_string(),
            AckMode::Fast => "0".to_string(),
        };
        config
            .set("bootstrap.servers", &settings.brokers)
            .set("client.id", "textback-gateway")
            .set("acks", "all")
            .set("linger.ms", "0")
            .set("socket.nagle.disable", "true")
            .set("message.timeout.ms", message_timeout)
            .set(
                "queue.buffering.max.messages",
                settings.queue_max_messages.to_string(),
            )
            .set("reconnect.backoff.max.ms", "1000");
        for (k, v) in &settings.extra {
            config.set(k, v);
        }
        let producer: FutureProducer = config.create()?;
        Ok(KafkaPublisher {
            producer,
            topic: settings.topic.as_str().into(),
            mode,
            timeout: Duration::from_millis(settings.publish_timeout_ms),
            metrics,
        })
    }

    pub async fn publish(&self, event: &Event) -> Result<(), PublishError> {
        let payload = serde_json::to_vec(event).expect("an Event always serialises");
        let key = event.partition_key();
        let record = FutureRecord::to(&self.topic).key(&key).payload(&payload);
        let started = Instant::now();
        let delivery = match self.producer.send_result(record) {
            Ok(delivery) => delivery,
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => {
                return Err(PublishError::QueueFull)
            }
            Err((e, _)) => return Err(PublishError::Broker(e.to_string())),
        };
        match self.mode {
            AckMode::Fast => {
                let metrics = self.metrics.clone();
                tokio::spawn(async move {
                    match delivery.await {
                        Ok(Ok(_)) => metrics.delivery_confirmed(started.elapsed()),
                        Ok(Err((e, _))) => {
                            tracing::error!(error = %e, "fast-mode event not delivered")
                        }
                        Err(_) => tracing::error!("fast-mode event dropped by the producer"),
                    }
                });
                self.metrics.event_published(event, None);
                Ok(())
            }
            AckMode::Durable => match tokio::time::timeout(self.timeout, delivery).await {
                Ok(Ok(Ok(_))) => {
                    self.metrics.event_published(event, Some(started.elapsed()));
                    Ok(())
                }
                Ok(Ok(Err((
                    KafkaError::MessageProduction(RDKafkaErrorCode::MessageTimedOut),
                    _,
                ))))
                | Err(_) => Err(PublishError::Timeout),
                Ok(Ok(Err((e, _)))) => Err(PublishError::Broker(e.to_string())),
                Ok(Err(_)) => Err(PublishError::Broker("producer dropped the event".into())),
            },
        }
    }

    /// Whether Kafka answers a metadata request for the topic now. Blocking: run it off the runtime.
    pub fn probe_blocking(&self, timeout: Duration) -> bool {
        self.producer
            .client()
            .fetch_metadata(Some(&self.topic), timeout)
            .is_ok()
    }

    /// Waits (bounded) until every queued event is delivered. Blocking.
    pub fn flush_blocking(&self, timeout: Duration) -> bool {
        self.producer.flush(timeout).is_ok()
    }

    pub fn in_flight(&self) -> i32 {
        self.producer.in_flight_count()
    }
}
