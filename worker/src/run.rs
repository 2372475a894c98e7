//! The worker process: events from the queue, one shard task each handling its events in order
//! (engine → commit → acknowledge → wake the sender), and the sender draining the outbox.

use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use tokio::sync::{mpsc, Notify};

use crate::engine::{self, Handled, Policy, Report};
use crate::queue::{Delivery, Queue};
use crate::store::Store;

/// What the worker did with each event: for tests, metrics and logs.
pub trait EventObserver: Send + Sync + 'static {
    fn handled(&self, _delivery: &Delivery, _report: &Report, _took: Duration) {}
}

pub struct Silent;
impl EventObserver for Silent {}

/// Consumes until `shutdown` resolves or the queue closes, then lets the shards finish.
pub async fn consume<S: Store + Clone>(
    store: S,
    mut queue: Queue,
    policy: Policy,
    shards: usize,
    wake: Arc<Notify>,
    observer: Arc<dyn EventObserver>,
    shutdown: impl std::future::Future<Output = ()>,
) {
    let shards = shards.max(1);
    let mut lanes = Vec::with_capacity(shards);
    let mut tasks = Vec::with_capacity(shards);
    for _ in 0..shards {
        let (tx, rx) = mpsc::channel::<Delivery>(256);
        lanes.push(tx);
        tasks.push(tokio::spawn(lane(
            store.clone(),
            rx,
            policy.clone(),
            wake.clone(),
            observer.clone(),
        )));
    }
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            delivery = queue.recv() => {
                let Some(d) = delivery else { break };
                let lane = &lanes[d.shard % shards];
                if lane.send(d).await.is_err() {
                    break;
                }
            }
            () = &mut shutdown => break,
        }
    }
    drop(lanes);
    for t in tasks {
        let _ = tokio::time::timeout(Duration::from_secs(10), t).await;
    }
}

async fn lane<S: Store>(
    store: S,
    mut rx: mpsc::Receiver<Delivery>,
    policy: Policy,
    wake: Arc<Notify>,
    observer: Arc<dyn EventObserver>,
) {
    while let Some(d) = rx.recv().await {
        let started = std::time::Instant::now();
        let mut wait = Duration::from_millis(50);
        let handled = loop {
            match engine::handle_reported(&store, &policy, &d.event, Timestamp::now()).await {
                Ok(h) => break h,
                Err(e) => {
                    // The store is down or refused: never skip an event, try again.
                    tracing::warn!(event.id = %d.event.id, error = %e, "event not handled yet; retrying");
                    tokio::time::sleep(wait).await;
                    wait = (wait * 2).min(Duration::from_secs(5));
                }
            }
        };
        if matches!(
            handled.handled,
            Handled::TextBackQueued | Handled::Replied { .. }
        ) {
            wake.notify_one();
        }
        observer.handled(&d, &handled, started.elapsed());
        d.ack();
    }
}
