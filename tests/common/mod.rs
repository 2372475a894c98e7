//! Helpers for the integration tests: a real Kafka broker (started by `scripts/test.sh`), one topic
//! per test, the gateway served in-process on port 0, and a plain HTTP/1.1 client.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper_util::rt::TokioIo;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{Message, Offset, TopicPartitionList};
use textback_gateway::carrier::{telnyx, twilio};
use textback_gateway::{AckMode, Gateway, KafkaSettings, Settings, TelnyxSettings, TwilioSettings};
use textback_schemas::Event;
use tokio::sync::oneshot;

pub const TWILIO_SID: &str = "AC0000000000000000000000000000test";
pub const TWILIO_TOKEN: &str = "twilio-test-token";
pub const BASE_URL: &str = "https://hooks.textback.test";
pub const BUSINESS: &str = "+16175550100";

pub fn brokers() -> String {
    std::env::var("TEXTBACK_TEST_KAFKA").unwrap_or_else(|_| "127.0.0.1:9092".into())
}

pub fn telnyx_key() -> ed25519_dalek::SigningKey {
    ed25519_dalek::SigningKey::from_bytes(&[42u8; 32])
}

/// A fresh topic for one test, so tests never read each other's events.
pub async fn fresh_topic(test: &str) -> String {
    let topic = format!("textback.test.{test}.{}", uuid::Uuid::new_v4().simple());
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", brokers())
        .create()
        .expect("admin client");
    let results = admin
        .create_topics(
            &[NewTopic::new(&topic, 3, TopicReplication::Fixed(1))],
            &AdminOptions::new().operation_timeout(Some(Duration::from_secs(10))),
        )
        .await
        .unwrap_or_else(|e| {
            panic!(
                "Kafka at {} is not reachable ({e}); run scripts/test.sh",
                brokers()
            )
        });
    for r in results {
        r.unwrap_or_else(|(t, e)| panic!("creating {t}: {e}"));
    }
    topic
}

pub fn settings(topic: &str, mode: AckMode) -> Settings {
    let public_key =
        base64::engine::general_purpose::STANDARD.encode(telnyx_key().verifying_key().to_bytes());
    Settings {
        public_base_url: BASE_URL.into(),
        ack_mode: mode,
        kafka: KafkaSettings {
            brokers: brokers(),
            topic: topic.into(),
            probe_interval_ms: 200,
            ..KafkaSettings::default()
        },
        twilio: TwilioSettings {
            auth_tokens: BTreeMap::from([(TWILIO_SID.to_string(), TWILIO_TOKEN.to_string())]),
        },
        telnyx: TelnyxSettings {
            public_key,
            ..TelnyxSettings::default()
        },
        ..Settings::default()
    }
}

pub struct Running {
    pub addr: SocketAddr,
    pub gateway: Arc<Gateway>,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Running {
    pub async fn stop(mut self) {
        let _ = self.stop.take().unwrap().send(());
        self.task.await.expect("serve task").expect("serve result");
    }
}

pub async fn start(settings: Settings) -> Running {
    let gateway = Gateway::new(settings).expect("gateway settings");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = oneshot::channel::<()>();
    let task = tokio::spawn(gateway.clone().serve(listener, async move {
        let _ = rx.await;
    }));
    Running {
        addr,
        gateway,
        stop: Some(tx),
        task,
    }
}

pub struct Reply {
    pub status: u16,
    pub content_type: String,
    pub body: String,
}

/// One request on a fresh connection.
pub async fn send(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, String)],
    body: Vec<u8>,
) -> Reply {
    let stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .expect("handshake");
    tokio::spawn(conn);
    let mut req = Request::builder()
        .method(method)
        .uri(path)
        .header("host", "hooks.textback.test");
    for (k, v) in headers {
        req = req.header(*k, v);
    }
    let req = req.body(Full::new(Bytes::from(body))).unwrap();
    let resp = tokio::time::timeout(Duration::from_secs(30), sender.send_request(req))
        .await
        .expect("the gateway answered within 30 s")
        .expect("response");
    let status = resp.status().as_u16();
    let content_type = resp
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    Reply {
        status,
        content_type,
        body: String::from_utf8_lossy(&body).into_owned(),
    }
}

/// A Twilio webhook, form-encoded and signed as Twilio signs it.
pub fn twilio_request(
    path: &str,
    params: &[(&str, &str)],
) -> (Vec<(&'static str, String)>, Vec<u8>) {
    let mut all: Vec<(&str, &str)> = vec![("AccountSid", TWILIO_SID)];
    all.extend_from_slice(params);
    let body = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(&all)
        .finish();
    let sig = twilio::signature(
        TWILIO_TOKEN.as_bytes(),
        &format!("{BASE_URL}{path}"),
        all.iter().copied(),
    );
    (
        vec![
            ("content-type", "application/x-www-form-urlencoded".into()),
            ("x-twilio-signature", sig),
        ],
        body.into_bytes(),
    )
}

pub async fn post_twilio(addr: SocketAddr, path: &str, params: &[(&str, &str)]) -> Reply {
    let (headers, body) = twilio_request(path, params);
    send(addr, "POST", path, &headers, body).await
}

/// A Telnyx webhook, signed now.
pub fn telnyx_request(
    body: &serde_json::Value,
    timestamp: i64,
) -> (Vec<(&'static str, String)>, Vec<u8>) {
    let body = body.to_string().into_bytes();
    let sig = telnyx::sign(&telnyx_key(), timestamp, &body);
    (
        vec![
            ("content-type", "application/json".into()),
            ("telnyx-signature-ed25519", sig),
            ("telnyx-timestamp", timestamp.to_string()),
        ],
        body,
    )
}

pub async fn post_telnyx(addr: SocketAddr, body: &serde_json::Value) -> Reply {
    let (headers, body) = telnyx_request(body, jiff::Timestamp::now().as_second());
    send(addr, "POST", "/telnyx", &headers, body).await
}

/// Every event on the topic, read from the beginning to the current end of each partition.
pub fn read_topic(topic: &str) -> Vec<Event> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers())
        .set("group.id", format!("reader-{}", uuid::Uuid::new_v4()))
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer");
    let metadata = consumer
        .fetch_metadata(Some(topic), Duration::from_secs(10))
        .expect("metadata");
    let partitions: Vec<i32> = metadata.topics()[0]
        .partitions()
        .iter()
        .map(|p| p.id())
        .collect();
    let mut assignment = TopicPartitionList::new();
    let mut expected = 0;
    for p in &partitions {
        let (low, high) = consumer
            .fetch_watermarks(topic, *p, Duration::from_secs(10))
            .expect("watermarks");
        expected += high - low;
        assignment
            .add_partition_offset(topic, *p, Offset::Beginning)
            .unwrap();
    }
    consumer.assign(&assignment).unwrap();
    let mut events = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while (events.len() as i64) < expected {
        assert!(
            std::time::Instant::now() < deadline,
            "read {} of {expected} messages",
            events.len()
        );
        if let Some(msg) = consumer.poll(Duration::from_millis(200)) {
            let msg = msg.expect("message");
            let event: Event =
                serde_json::from_slice(msg.payload().expect("payload")).expect("an Event");
            assert_eq!(
                msg.key(),
                Some(event.partition_key().as_bytes()),
                "keyed by conversation"
            );
            events.push(event);
        }
    }
    events
}

pub mod stack;
