//! `textback worker`: Kafka → engine → PostgreSQL → outbox → carrier SMS API, with Prometheus
//! metrics on `worker.metrics_listen`.

use std::sync::Arc;

use anyhow::Context;
use jiff::SignedDuration;
use textback_worker::engine::Policy;
use textback_worker::queue::{KafkaConsumerSettings, Queue};
use textback_worker::sender::{self, CarrierApi};
use textback_worker::store::postgres::PgStore;
use textback_worker::telemetry::WorkerMetrics;
use tokio::sync::{watch, Notify};

use super::Failure;
use crate::config::Config;

pub fn run(config: Config) -> Result<(), Failure> {
    config.sender.validate().map_err(Failure::Config)?;
    let w = &config.worker;
    if w.shards == 0 || w.max_connections == 0 || w.cooldown_minutes < 0 {
        return Err(Failure::Config(
            "worker.shards and worker.max_connections must be above 0".into(),
        ));
    }
    let metrics_addr: Option<std::net::SocketAddr> = match w.metrics_listen.trim() {
        "" => None,
        addr => Some(addr.parse().map_err(|_| {
            Failure::Config(format!("worker.metrics_listen: not an address: {addr:?}"))
        })?),
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("tokio runtime")?;
    runtime.block_on(async {
        let store = PgStore::new(&w.postgres_url, None, w.max_connections)
            .map_err(|e| Failure::Config(e.to_string()))?;
        let applied = store.migrate(None).await.context("PostgreSQL migrations")?;
        if !applied.is_empty() {
            tracing::info!(?applied, "migrations applied");
        }
        let consumer = KafkaConsumerSettings {
            brokers: config.gateway.kafka.brokers.clone(),
            topic: config.gateway.kafka.topic.clone(),
            group: w.consumer_group.clone(),
            extra: config.gateway.kafka.extra.clone(),
        };
        let queue = Queue::kafka(&consumer).context("Kafka consumer")?;
        let metrics = Arc::new(WorkerMetrics::default());
        let (stop_tx, stop_rx) = watch::channel(false);
        let stopped = |mut rx: watch::Receiver<bool>| async move {
            let _ = rx.wait_for(|s| *s).await;
        };
        if let Some(addr) = metrics_addr {
            let listener = tokio::net::TcpListener::bind(addr)
                .await
                .with_context(|| format!("metrics listener {addr}"))?;
            let m = metrics.clone();
            tokio::spawn(textback_worker::telemetry::serve(
                listener,
                Arc::new(move || m.render()),
                stopped(stop_rx.clone()),
            ));
            tracing::info!(%addr, "worker metrics on /metrics");
        }
        tokio::spawn(textback_worker::telemetry::sample(
            store.clone(),
            queue.lag_probe(),
            metrics.clone(),
            stopped(stop_rx.clone()),
        ));
        let policy = Policy {
            cooldown: SignedDuration::from_mins(w.cooldown_minutes),
            ..Policy::default()
        };
        let wake = Arc::new(Notify::new());
        let api = Arc::new(CarrierApi::new(config.sender.clone()));
        let sender = tokio::spawn(sender::run(
            store.clone(),
            api,
            wake.clone(),
            metrics.clone(),
            stopped(stop_rx.clone()),
        ));
        tracing::info!(group = %consumer.group, topic = %consumer.topic, "worker consuming");
        textback_worker::run::consume(
            store,
            queue,
            policy,
            w.shards,
            wake,
            metrics,
            super::shutdown_signal(),
        )
        .await;
        let _ = stop_tx.send(true);
        let _ = sender.await;
        tracing::info!("worker stopped");
        Ok(())
    })
}
