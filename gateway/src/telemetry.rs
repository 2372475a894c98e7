//! Everything the gateway reports: Prometheus metrics and log lines, one function per observable event.
//!
//! Metrics are atomics in fixed arrays (no locks, no allocation on the ack path) rendered in the
//! Prometheus text format on `GET /metrics`. Log lines carry ids and redacted numbers only, never a full
//! phone number or a message body.

use std::fmt::Write;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};

use std::time::Duration;

use textback_schemas::{Event, EventKind};

/// Buckets for the acknowledgement: sub-millisecond resolution with an edge at exactly 1 ms (the SLO).
pub const ACK_BUCKETS: &[f64] = &[
    0.000_05, 0.000_1, 0.000_2, 0.000_3, 0.000_5, 0.000_75, 0.001, 0.002, 0.005, 0.01, 0.05, 0.25,
    1.0,
];
/// Buckets for Kafka delivery: from sub-millisecond to the publish timeout.
pub const DELIVERY_BUCKETS: &[f64] = &[
    0.000_25, 0.000_5, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
];

pub use textback_telemetry::Histogram;

/// The gateway's routes, as metric labels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Route {
    TwilioDial,
    TwilioVoiceStatus,
    TwilioSms,
    TwilioSmsStatus,
    Telnyx,
    Healthz,
    Readyz,
    Metrics,
    Unknown,
}

impl Route {
    const ALL: [Route; 9] = [
        Route::TwilioDial,
        Route::TwilioVoiceStatus,
        Route::TwilioSms,
        Route::TwilioSmsStatus,
        Route::Telnyx,
        Route::Healthz,
        Route::Readyz,
        Route::Metrics,
        Route::Unknown,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Route::TwilioDial => "twilio_dial",
            Route::TwilioVoiceStatus => "twilio_voice_status",
            Route::TwilioSms => "twilio_sms",
            Route::TwilioSmsStatus => "twilio_sms_status",
            Route::Telnyx => "telnyx",
            Route::Healthz => "healthz",
            Route::Readyz => "readyz",
            Route::Metrics => "metrics",
            Route::Unknown => "unknown",
        }
    }

    fn index(self) -> usize {
        self as usize
    }

    pub fn is_webhook(self) -> bool {
        matches!(
            self,
            Route::TwilioDial
                | Route::TwilioVoiceStatus
                | Route::TwilioSms
                | Route::TwilioSmsStatus
                | Route::Telnyx
        )
    }
}

/// The status codes the gateway answers with; anything else is counted as "other".
const CODES: [u16; 10] = [200, 400, 403, 404, 405, 408, 413, 500, 503, 0];

fn code_index(code: u16) -> usize {
    CODES
        .iter()
        .position(|c| *c == code)
        .unwrap_or(CODES.len() - 1)
}

/// Why a publish failed, as a metric label.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PublishFailure {
    QueueFull,
    Timeout,
    Broker,
}

impl PublishFailure {
    const ALL: [PublishFailure; 3] = [
        PublishFailure::QueueFull,
        PublishFailure::Timeout,
        PublishFailure::Broker,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            PublishFailure::QueueFull => "queue_full",
            PublishFailure::Timeout => "timeout",
            PublishFailure::Broker => "broker",
        }
    }
}

pub struct Metrics {
    requests: Vec<[AtomicU64; CODES.len()]>,
    ack_latency: Vec<Histogram>,
    kafka_delivery: Histogram,
    published: [AtomicU64; 4],
    duplicates: AtomicU64,
    publish_failures: [AtomicU64; 3],
    kafka_up: AtomicBool,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            requests: Route::ALL
                .iter()
                .map(|_| std::array::from_fn(|_| AtomicU64::new(0)))
                .collect(),
            ack_latency: Route::ALL
                .iter()
                .map(|_| Histogram::new(ACK_BUCKETS))
                .collect(),
            kafka_delivery: Histogram::new(DELIVERY_BUCKETS),
            published: std::array::from_fn(|_| AtomicU64::new(0)),
            duplicates: AtomicU64::new(0),
            publish_failures: std::array::from_fn(|_| AtomicU64::new(0)),
            kafka_up: AtomicBool::new(false),
        }
    }
}

fn kind_index(kind: EventKind) -> usize {
    EventKind::ALL.iter().position(|k| *k == kind).unwrap_or(0)
}

impl Metrics {
    /// A request was answered: counts it and records how long the gateway took to acknowledge it.
    pub fn request_answered(&self, route: Route, code: u16, elapsed: Duration) {
        self.requests[route.index()][code_index(code)].fetch_add(1, Relaxed);
        if route.is_webhook() {
            self.ack_latency[route.index()].observe(elapsed);
        }
    }

    /// A webhook was refused (4xx). Logged without the body or numbers: the reason is enough.
    pub fn webhook_rejected(&self, route: Route, code: u16, reason: &str) {
        tracing::info!(
            route = route.as_str(),
            http.status = code,
            reason,
            "webhook rejected"
        );
    }

    pub fn event_published(&self, event: &Event, delivery: Option<Duration>) {
        self.published[kind_index(event.kind())].fetch_add(1, Relaxed);
        if let Some(d) = delivery {
            self.kafka_delivery.observe(d);
        }
        tracing::debug!(
            event.id = %event.id,
            event.kind = event.kind().as_str(),
            carrier = event.carrier.as_str(),
            business = %event.business_number.redacted(),
            caller = %event.caller_number.redacted(),
            "event published"
        );
    }

    /// A fast-mode delivery confirmed after the webhook was answered.
    pub fn delivery_confirmed(&self, delivery: Duration) {
        self.kafka_delivery.observe(delivery);
    }

    pub fn duplicate_dropped(&self, event: &Event) {
        self.duplicates.fetch_add(1, Relaxed);
        tracing::debug!(event.id = %event.id, event.kind = event.kind().as_str(), "duplicate webhook dropped");
    }

    pub fn publish_failed(&self, event: &Event, failure: PublishFailure, detail: &str) {
        self.publish_failures[failure as usize].fetch_add(1, Relaxed);
        tracing::warn!(event.id = %event.id, reason = failure.as_str(), detail, "publish to Kafka failed");
    }

    pub fn kafka_reachable(&self, up: bool) {
        let was = self.kafka_up.swap(up, Relaxed);
        if was != up {
            if up {
                tracing::info!("event queue reachable");
            } else {
                tracing::warn!("event queue unreachable");
            }
        }
    }

    pub fn is_kafka_up(&self) -> bool {
        self.kafka_up.load(Relaxed)
    }

    pub fn duplicates(&self) -> u64 {
        self.duplicates.load(Relaxed)
    }

    /// All routes' acknowledgements merged: (count, count at or under 1 ms).
    pub fn acks_total_and_under_1ms(&self) -> (u64, u64) {
        self.ack_latency.iter().fold((0, 0), |(n, fast), h| {
            (n + h.count(), fast + h.count_le(0.001))
        })
    }

    /// The Prometheus text exposition; `dedupe_entries` is the size of the recently-seen table.
    pub fn render(&self, dedupe_entries: usize) -> String {
        let mut out = String::with_capacity(8 * 1024);
        out.push_str(
            "# HELP textback_gateway_requests_total Requests answered, by route and status code.\n",
        );
        out.push_str("# TYPE textback_gateway_requests_total counter\n");
        for route in Route::ALL {
            for (i, code) in CODES.iter().enumerate() {
                let n = self.requests[route.index()][i].load(Relaxed);
                if n > 0 {
                    let code = if *code == 0 {
                        "other".to_string()
                    } else {
                        code.to_string()
                    };
                    let _ = writeln!(
                        out,
                        "textback_gateway_requests_total{{route=\"{}\",code=\"{code}\"}} {n}",
                        route.as_str()
                    );
                }
            }
        }
        out.push_str(
            "# HELP textback_gateway_ack_seconds Webhook received to response written, by route.\n",
        );
        out.push_str("# TYPE textback_gateway_ack_seconds histogram\n");
        for route in Route::ALL.into_iter().filter(|r| r.is_webhook()) {
            let labels = format!("route=\"{}\"", route.as_str());
            self.ack_latency[route.index()].render(
                &mut out,
                "textback_gateway_ack_seconds",
                &labels,
            );
        }
        out.push_str("# HELP textback_gateway_kafka_delivery_seconds Produce call to Kafka's confirmation.\n");
        out.push_str("# TYPE textback_gateway_kafka_delivery_seconds histogram\n");
        self.kafka_delivery
            .render(&mut out, "textback_gateway_kafka_delivery_seconds", "");
        out.push_str(
            "# HELP textback_gateway_events_published_total Events written to Kafka, by kind.\n",
        );
        out.push_str("# TYPE textback_gateway_events_published_total counter\n");
        for kind in EventKind::ALL {
            let n = self.published[kind_index(kind)].load(Relaxed);
            let _ = writeln!(
                out,
                "textback_gateway_events_published_total{{kind=\"{}\"}} {n}",
                kind.as_str()
            );
        }
        out.push_str("# HELP textback_gateway_duplicates_dropped_total Retried webhooks acknowledged, not published again.\n");
        out.push_str("# TYPE textback_gateway_duplicates_dropped_total counter\n");
        let _ = writeln!(
            out,
            "textback_gateway_duplicates_dropped_total {}",
            self.duplicates.load(Relaxed)
        );
        out.push_str("# HELP textback_gateway_publish_failures_total Webhooks answered 503 because Kafka did not take the event.\n");
        out.push_str("# TYPE textback_gateway_publish_failures_total counter\n");
        for f in PublishFailure::ALL {
            let n = self.publish_failures[f as usize].load(Relaxed);
            let _ = writeln!(
                out,
                "textback_gateway_publish_failures_total{{reason=\"{}\"}} {n}",
                f.as_str()
            );
        }
        out.push_str(
            "# HELP textback_gateway_kafka_up Whether the last metadata probe reached Kafka.\n",
        );
        out.push_str("# TYPE textback_gateway_kafka_up gauge\n");
        let _ = writeln!(
            out,
            "textback_gateway_kafka_up {}",
            u8::from(self.is_kafka_up())
        );
        out.push_str("# HELP textback_gateway_dedupe_entries Event ids remembered for dropping carrier retries.\n");
        out.push_str("# TYPE textback_gateway_dedupe_entries gauge\n");
        let _ = writeln!(out, "textback_gateway_dedupe_entries {dedupe_entries}");
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_puts_exactly_one_millisecond_in_the_1ms_bucket() {
        let h = Histogram::new(ACK_BUCKETS);
        h.observe(Duration::from_micros(1000));
        h.observe(Duration::from_micros(1001));
        h.observe(Duration::from_micros(80));
        assert_eq!(h.count(), 3);
        assert_eq!(h.count_le(0.001), 2);
        let mut out = String::new();
        h.render(&mut out, "x", "");
        assert!(out.contains("x_bucket{le=\"0.001\"} 2\n"), "{out}");
        assert!(out.contains("x_bucket{le=\"0.0001\"} 1\n"), "{out}");
        assert!(out.contains("x_bucket{le=\"+Inf\"} 3\n"), "{out}");
        assert!(out.contains("x_count 3\n"), "{out}");
    }

    #[test]
    fn requests_render_by_route_and_code() {
        let m = Metrics::default();
        m.request_answered(Route::Telnyx, 403, Duration::from_micros(30));
        m.request_answered(Route::Telnyx, 403, Duration::from_micros(30));
        m.request_answered(Route::TwilioSms, 200, Duration::from_micros(300));
        let text = m.render(0);
        assert!(text.contains("textback_gateway_requests_total{route=\"telnyx\",code=\"403\"} 2\n"));
        assert!(
            text.contains("textback_gateway_requests_total{route=\"twilio_sms\",code=\"200\"} 1\n")
        );
        assert!(text.contains(
            "textback_gateway_ack_seconds_bucket{route=\"twilio_sms\",le=\"0.0003\"} 1\n"
        ));
    }
}
