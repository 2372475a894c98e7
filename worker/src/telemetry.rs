//! Everything the worker reports, in one place: Prometheus metrics fed by the event lanes (what each
//! event did), the sender (what each text did) and two samplers (outbox depth, consumer lag), and
//! rendered on the worker's `/metrics`. No phone numbers and no message bodies in labels or logs;
//! business ids are labels so the Business dashboard can filter.

use std::fmt::Write;
use std::time::Duration;

use jiff::Timestamp;
use textback_schemas::{Carrier, EventKind};
use textback_telemetry::{header, Family, Histogram};

/// Serves `/metrics` (for the worker process, which has no other HTTP server).
pub use textback_telemetry::serve;

use crate::engine::{Handled, Report};
use crate::queue::Delivery;
use crate::run::EventObserver;
use crate::sender::SendObserver;
use crate::store::{OutKind, Outgoing};

/// End-to-end buckets: 10 ms to 5 s, with an edge at the 250 ms service level.
pub const E2E_BUCKETS: &[f64] = &[0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0];
/// Time to handle one event (its PostgreSQL transaction).
pub const HANDLE_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0,
];

const OUTCOMES: [&str; 7] = [
    "duplicate",
    "unknown_number",
    "text_back_queued",
    "suppressed_opted_out",
    "suppressed_cooldown",
    "replied",
    "recorded",
];

pub struct WorkerMetrics {
    events: Family,
    missed_calls: Family,
    conversations: Family,
    revenue: Family,
    sends: Family,
    send_failures: Family,
    outbox_depth: Family,
    consumer_lag: Family,
    textback_latency: Histogram,
    reply_latency: Histogram,
    handle_seconds: Histogram,
}

fn outcome(h: &Handled) -> &'static str {
    match h {
        Handled::Duplicate => OUTCOMES[0],
        Handled::UnknownNumber => OUTCOMES[1],
        Handled::TextBackQueued => OUTCOMES[2],
        Handled::SuppressedOptedOut => OUTCOMES[3],
        Handled::SuppressedCooldown => OUTCOMES[4],
        Handled::Replied { .. } => OUTCOMES[5],
        Handled::Recorded => OUTCOMES[6],
    }
}

impl Default for WorkerMetrics {
    fn default() -> Self {
        let m = WorkerMetrics {
            events: Family::counter("textback_worker_events_total", "Events handled, by kind and outcome.", &["kind", "outcome"]),
            missed_calls: Family::counter(
                "textback_worker_missed_calls_total",
                "Missed calls to known business numbers, by business.",
                &["business"],
            ),
            conversations: Family::counter(
                "textback_worker_conversations_total",
                "Conversation milestones (started, replied, booked, handed_off, opted_out), by business.",
                &["business", "event"],
            ),
            revenue: Family::counter(
                "textback_worker_booked_revenue_cents_total",
                "Service prices of new bookings, in cents, by business.",
                &["business"],
            ),
            sends: Family::counter("textback_worker_sends_total", "Texts handed to carriers, by carrier and result (accepted, retry, failed).", &["carrier", "result"]),
            send_failures: Family::counter(
                "textback_worker_send_failures_total",
                "Texts the carrier refused for good, by carrier and error code.",
                &["carrier", "code"],
            ),
            outbox_depth: Family::gauge("textback_worker_outbox_depth", "Texts waiting in the outbox.", &[]),
            consumer_lag: Family::gauge(
                "textback_worker_consumer_lag",
                "Events on the topic not yet handled, by partition.",
                &["partition"],
            ),
            textback_latency: Histogram::new(E2E_BUCKETS),
            reply_latency: Histogram::new(E2E_BUCKETS),
            handle_seconds: Histogram::new(HANDLE_BUCKETS),
        };
        // Series a dashboard shows from the start, at zero.
        for kind in EventKind::ALL {
            for outcome in OUTCOMES {
                m.events.touch(&[kind.as_str(), outcome]);
            }
        }
        for carrier in [Carrier::Twilio, Carrier::Telnyx] {
            for result in ["accepted", "retry", "failed"] {
                m.sends.touch(&[carrier.as_str(), result]);
            }
        }
        m.outbox_depth.set(&[], 0.0);
        m
    }
}

impl WorkerMetrics {
    pub fn render(&self) -> String {
        let mut out = String::with_capacity(16 * 1024);
        for f in [
            &self.events,
            &self.missed_calls,
            &self.conversations,
            &self.revenue,
            &self.sends,
            &self.send_failures,
            &self.outbox_depth,
            &self.consumer_lag,
        ] {
            f.render(&mut out);
        }
        let histograms: [(&str, &str, &Histogram); 3] = [
            (
                "textback_worker_textback_latency_seconds",
                "Missed call received by the gateway to text-back accepted by the carrier.",
                &self.textback_latency,
            ),
            (
                "textback_worker_reply_latency_seconds",
                "Caller text received by the gateway to the reply accepted by the carrier.",
                &self.reply_latency,
            ),
            (
                "textback_worker_event_handle_seconds",
                "Time to handle one event (its database transaction).",
                &self.handle_seconds,
            ),
        ];
        for (name, help, h) in histograms {
            header(&mut out, name, "histogram", help);
            h.render(&mut out, name, "");
        }
        let _ = writeln!(out);
        out
    }

    pub fn event_handled(&self, d: &Delivery, r: &Report, took: Duration) {
        self.handle_seconds.observe(took);
        self.events
            .inc(&[d.event.kind().as_str(), outcome(&r.handled)]);
        let Some(business) = r.business_id.as_deref() else {
            if r.handled == Handled::UnknownNumber {
                tracing::warn!(event.id = %d.event.id, business = %d.event.business_number.redacted(), "event for an unknown business number dropped");
            }
            return;
        };
        if d.event.kind() == EventKind::MissedCall {
            self.missed_calls.inc(&[business]);
        }
        let milestone = |event: &str| self.conversations.inc(&[business, event]);
        match r.handled {
            Handled::TextBackQueued => milestone("started"),
            Handled::Replied {
                booked,
                handed_off,
                opted_out,
                ..
            } => {
                milestone("replied");
                if booked {
                    milestone("booked");
                }
                if handed_off {
                    milestone("handed_off");
                }
                if opted_out {
                    milestone("opted_out");
                }
            }
            _ => {}
        }
        if r.booked_cents > 0 {
            self.revenue.add(&[business], r.booked_cents as f64);
        }
    }

    pub fn outbox(&self, depth: u64) {
        self.outbox_depth.set(&[], depth as f64);
    }

    pub fn lag(&self, partitions: &[(i32, i64)]) {
        for (p, lag) in partitions {
            self.consumer_lag.set(&[&p.to_string()], *lag as f64);
        }
    }
}

impl EventObserver for WorkerMetrics {
    fn handled(&self, d: &Delivery, r: &Report, took: Duration) {
        self.event_handled(d, r, took);
    }
}

impl SendObserver for WorkerMetrics {
    fn sent(&self, m: &Outgoing, accepted_at: Timestamp) {
        self.sends.inc(&[m.carrier.as_str(), "accepted"]);
        let latency = accepted_at
            .duration_since(m.event_received_at)
            .unsigned_abs();
        match m.kind {
            OutKind::TextBack => self.textback_latency.observe(latency),
            OutKind::Reply => self.reply_latency.observe(latency),
            OutKind::OwnerAlert => {}
        }
    }

    fn failed(&self, m: &Outgoing, code: &str) {
        self.sends.inc(&[m.carrier.as_str(), "failed"]);
        self.send_failures.inc(&[m.carrier.as_str(), code]);
    }

    fn retried(&self, m: &Outgoing, _reason: &str) {
        self.sends.inc(&[m.carrier.as_str(), "retry"]);
    }
}

/// Samples the outbox depth and the consumer lag for the metrics, every two seconds, until `stop`.
pub async fn sample<S: crate::store::Store>(
    store: S,
    lag: Option<crate::queue::LagProbe>,
    metrics: std::sync::Arc<WorkerMetrics>,
    stop: impl std::future::Future<Output = ()>,
) {
    let lag = lag.map(std::sync::Arc::new);
    tokio::pin!(stop);
    loop {
        if let Ok(depth) = store.outbox_depth().await {
            metrics.outbox(depth);
        }
        if let Some(probe) = lag.clone() {
            if let Ok(parts) = tokio::task::spawn_blocking(move || probe.lag_blocking()).await {
                metrics.lag(&parts);
            }
        }
        tokio::select! {
            () = tokio::time::sleep(Duration::from_secs(2)) => {}
            () = &mut stop => return,
        }
    }
}
