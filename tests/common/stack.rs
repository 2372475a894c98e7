//! The whole pipeline in one test process, on real services: gateway → Kafka (a fresh topic) →
//! worker (a fresh consumer group) → PostgreSQL (a fresh schema) → sender → carrier simulator.
#![allow(dead_code)]

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use textback_gateway::AckMode;
use textback_worker::engine::{Handled, Policy, Report};
use textback_worker::profile::load_file;
use textback_worker::queue::{Delivery, KafkaConsumerSettings, Queue};
use textback_worker::run::EventObserver;
use textback_worker::sender::{self, CarrierApi, Quiet, SenderSettings};
use textback_worker::simulator::{Credentials, Simulator};
use textback_worker::store::postgres::PgStore;
use textback_worker::store::Store;
use tokio::sync::{watch, Notify};

use super::{fresh_topic, settings, start, Running, BUSINESS};

pub const OWNER: &str = "+16175550199";

/// Open every day, all day, in UTC, so tests do not depend on the day they run.
pub const BUSINESS_JSON: &str = r#"{"businesses": [{"id": "fadeco", "name": "Fade & Co Barbershop",
  "phone_number": "+16175550100", "owner_phone": "+16175550199", "timezone": "UTC", "address": "41 Elm Street",
  "hours": {"mon": [["00:00", "23:59"]], "tue": [["00:00", "23:59"]], "wed": [["00:00", "23:59"]], "thu": [["00:00", "23:59"]],
            "fri": [["00:00", "23:59"]], "sat": [["00:00", "23:59"]], "sun": [["00:00", "23:59"]]},
  "booking": {"slot_interval_min": 15, "min_notice_min": 60, "horizon_days": 30, "capacity": 1},
  "services": [{"id": "haircut", "name": "Haircut", "duration_min": 30, "price_cents": 3500, "aliases": ["cut"]},
               {"id": "beard", "name": "Beard Trim", "duration_min": 15, "price_cents": 1500}],
  "urgent_keywords": []}]}"#;

pub fn pg_url() -> String {
    std::env::var("TEXTBACK_TEST_PG")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// A fresh schema, migrated, with the test business imported.
pub async fn fresh_store() -> (PgStore, String) {
    let schema = format!("t_{}", uuid::Uuid::new_v4().simple());
    let store = PgStore::new(&pg_url(), Some(&schema), 16).expect("pool");
    store.migrate(Some(&schema)).await.unwrap_or_else(|e| {
        panic!(
            "PostgreSQL at {} is not reachable ({e}); run scripts/test.sh",
            pg_url()
        )
    });
    for b in load_file(BUSINESS_JSON).unwrap() {
        store.upsert_business(&b).await.unwrap();
    }
    (store, schema)
}

pub fn sender_settings(sim: &Simulator) -> SenderSettings {
    SenderSettings {
        per_number_rate: 200.0,
        backoff_base_ms: 40,
        backoff_max_ms: 400,
        poll_interval_ms: 100,
        ..sim.sender_settings()
    }
}

/// Counts what the worker did.
#[derive(Default)]
pub struct Counts {
    pub handled: AtomicU64,
    pub duplicates: AtomicU64,
    pub suppressed: AtomicU64,
}

impl EventObserver for Counts {
    fn handled(&self, _d: &Delivery, r: &Report, _took: Duration) {
        self.handled.fetch_add(1, Ordering::SeqCst);
        match r.handled {
            Handled::Duplicate => self.duplicates.fetch_add(1, Ordering::SeqCst),
            Handled::SuppressedCooldown | Handled::SuppressedOptedOut => {
                self.suppressed.fetch_add(1, Ordering::SeqCst)
            }
            _ => 0,
        };
    }
}

pub struct Stack {
    pub gateway: Running,
    pub store: PgStore,
    pub schema: String,
    pub sim: Simulator,
    pub counts: Arc<Counts>,
    stop: watch::Sender<bool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Stack {
    pub async fn start(name: &str) -> Stack {
        let topic = fresh_topic(name).await;
        let (store, schema) = fresh_store().await;
        let gateway = start(settings(&topic, AckMode::Durable)).await;
        let sim = Simulator::start("127.0.0.1:0".parse().unwrap(), Credentials::default())
            .await
            .unwrap();
        let consumer = KafkaConsumerSettings {
            brokers: super::brokers(),
            topic: topic.clone(),
            group: format!("test-{name}-{}", uuid::Uuid::new_v4().simple()),
            extra: Default::default(),
        };
        let queue = Queue::kafka(&consumer).unwrap();
        let wake = Arc::new(Notify::new());
        let counts = Arc::new(Counts::default());
        let (stop, rx) = watch::channel(false);
        let stopped = |mut rx: watch::Receiver<bool>| async move {
            let _ = rx.wait_for(|s| *s).await;
        };
        let api = Arc::new(CarrierApi::new(sender_settings(&sim)));
        let tasks = vec![
            tokio::spawn(sender::run(
                store.clone(),
                api,
                wake.clone(),
                Arc::new(Quiet),
                stopped(rx.clone()),
            )),
            tokio::spawn(textback_worker::run::consume(
                store.clone(),
                queue,
                Policy::default(),
                4,
                wake,
                counts.clone(),
                stopped(rx),
            )),
        ];
        Stack {
            gateway,
            store,
            schema,
            sim,
            counts,
            stop,
            tasks,
        }
    }

    /// Waits until the worker has handled `n` events and the outbox is empty.
    pub async fn settle(&self, n: u64) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        loop {
            let handled = self.counts.handled.load(Ordering::SeqCst);
            if handled >= n && self.store.outbox_depth().await.unwrap() == 0 {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "handled {handled} of {n} events within 60 s"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Texts the simulator received for `to`, oldest first.
    pub fn texts_to(&self, to: &str) -> Vec<String> {
        self.sim
            .received()
            .into_iter()
            .filter(|r| r.to == to)
            .map(|r| r.body)
            .collect()
    }

    pub async fn stop(self) {
        let _ = self.stop.send(true);
        for t in self.tasks {
            let _ = tokio::time::timeout(Duration::from_secs(20), t).await;
        }
        self.gateway.stop().await;
    }

    pub async fn missed_call(&self, call_sid: &str, caller: &str) -> u16 {
        let params = [
            ("CallSid", call_sid),
            ("CallStatus", "no-answer"),
            ("From", caller),
            ("To", BUSINESS),
        ];
        super::post_twilio(self.gateway.addr, "/twilio/voice/status", &params)
            .await
            .status
    }

    pub async fn text(&self, message_sid: &str, caller: &str, body: &str) -> u16 {
        let params = [
            ("MessageSid", message_sid),
            ("Body", body),
            ("NumMedia", "0"),
            ("From", caller),
            ("To", BUSINESS),
        ];
        super::post_twilio(self.gateway.addr, "/twilio/sms", &params)
            .await
            .status
    }

    /// One SQL value, in this stack's schema.
    pub async fn scalar_i64(&self, sql: &str) -> i64 {
        let client = self.store.pool().get().await.unwrap();
        client.query_one(sql, &[]).await.unwrap().get(0)
    }
}
