//! Prometheus metrics for textback's services, with no registry and no allocation on hot paths that
//! use the fixed histograms: counters and gauges with labels (`Family`), cumulative histograms with
//! fixed bucket edges (`Histogram`), the text exposition format, and a tiny `/metrics` server for
//! processes that have no HTTP server of their own (the worker).

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::fmt::Write;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;

/// A cumulative histogram with fixed upper bounds (seconds).
pub struct Histogram {
    bounds: &'static [f64],
    counts: Vec<AtomicU64>,
    sum_nanos: AtomicU64,
    count: AtomicU64,
}

impl Histogram {
    pub fn new(bounds: &'static [f64]) -> Self {
        Histogram {
            bounds,
            counts: (0..bounds.len()).map(|_| AtomicU64::new(0)).collect(),
            sum_nanos: AtomicU64::new(0),
            count: AtomicU64::new(0),
        }
    }

    pub fn observe(&self, elapsed: Duration) {
        let secs = elapsed.as_secs_f64();
        if let Some(i) = self.bounds.iter().position(|b| secs <= *b) {
            self.counts[i].fetch_add(1, Relaxed);
        }
        self.sum_nanos.fetch_add(elapsed.as_nanos() as u64, Relaxed);
        self.count.fetch_add(1, Relaxed);
    }

    pub fn count(&self) -> u64 {
        self.count.load(Relaxed)
    }

    /// How many observations were at or under `bound` (one of the bucket edges).
    pub fn count_le(&self, bound: f64) -> u64 {
        self.bounds
            .iter()
            .zip(&self.counts)
            .take_while(|(b, _)| **b <= bound)
            .map(|(_, c)| c.load(Relaxed))
            .sum()
    }

    /// Writes the `_bucket`, `_sum` and `_count` lines; `labels` is `""` or `a="x",b="y"`.
    pub fn render(&self, out: &mut String, name: &str, labels: &str) {
        let sep = if labels.is_empty() { "" } else { "," };
        let mut cumulative = 0;
        for (bound, count) in self.bounds.iter().zip(&self.counts) {
            cumulative += count.load(Relaxed);
            let _ = writeln!(
                out,
                "{name}_bucket{{{labels}{sep}le=\"{bound}\"}} {cumulative}"
            );
        }
        let total = self.count.load(Relaxed);
        let _ = writeln!(out, "{name}_bucket{{{labels}{sep}le=\"+Inf\"}} {total}");
        let sum = self.sum_nanos.load(Relaxed) as f64 / 1e9;
        let braces = if labels.is_empty() {
            String::new()
        } else {
            format!("{{{labels}}}")
        };
        let _ = writeln!(out, "{name}_sum{braces} {sum}");
        let _ = writeln!(out, "{name}_count{braces} {total}");
    }
}

/// `# HELP` and `# TYPE` lines.
pub fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Counter,
    Gauge,
}

/// A counter or gauge with named labels; series appear when first touched (or when `touch`ed, so a
/// dashboard has a zero to show before the first event).
pub struct Family {
    name: &'static str,
    help: &'static str,
    kind: Kind,
    labels: &'static [&'static str],
    series: Mutex<BTreeMap<Vec<String>, f64>>,
}

impl Family {
    pub fn counter(
        name: &'static str,
        help: &'static str,
        labels: &'static [&'static str],
    ) -> Self {
        Family {
            name,
            help,
            kind: Kind::Counter,
            labels,
            series: Mutex::default(),
        }
    }

    pub fn gauge(name: &'static str, help: &'static str, labels: &'static [&'static str]) -> Self {
        Family {
            name,
            help,
            kind: Kind::Gauge,
            labels,
            series: Mutex::default(),
        }
    }

    fn key(&self, values: &[&str]) -> Vec<String> {
        debug_assert_eq!(
            values.len(),
            self.labels.len(),
            "{}: label values",
            self.name
        );
        values.iter().map(|v| v.to_string()).collect()
    }

    pub fn add(&self, values: &[&str], by: f64) {
        *self
            .series
            .lock()
            .expect("metrics lock")
            .entry(self.key(values))
            .or_insert(0.0) += by;
    }

    pub fn inc(&self, values: &[&str]) {
        self.add(values, 1.0);
    }

    /// Creates the series at zero if it does not exist.
    pub fn touch(&self, values: &[&str]) {
        self.add(values, 0.0);
    }

    pub fn set(&self, values: &[&str], to: f64) {
        self.series
            .lock()
            .expect("metrics lock")
            .insert(self.key(values), to);
    }

    pub fn render(&self, out: &mut String) {
        let kind = match self.kind {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
        };
        header(out, self.name, kind, self.help);
        for (values, v) in self.series.lock().expect("metrics lock").iter() {
            let labels: Vec<String> = self
                .labels
                .iter()
                .zip(values)
                .map(|(k, v)| format!("{k}=\"{}\"", v.replace('\\', "\\\\").replace('"', "\\\"")))
                .collect();
            if labels.is_empty() {
                let _ = writeln!(out, "{} {v}", self.name);
            } else {
                let _ = writeln!(out, "{}{{{}}} {v}", self.name, labels.join(","));
            }
        }
    }
}

/// Serves `GET /metrics` with whatever `render` returns, until `shutdown` resolves.
pub async fn serve(
    listener: tokio::net::TcpListener,
    render: Arc<dyn Fn() -> String + Send + Sync>,
    shutdown: impl Future<Output = ()>,
) {
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else { continue };
                let render = render.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                        let render = render.clone();
                        async move {
                            let resp = if req.uri().path() == "/metrics" {
                                hyper::Response::builder()
                                    .header("content-type", "text/plain; version=0.0.4; charset=utf-8")
                                    .body(Full::new(Bytes::from(render())))
                            } else {
                                hyper::Response::builder().status(404).body(Full::new(Bytes::from_static(b"not found\n")))
                            };
                            Ok::<_, Infallible>(resp.expect("static response parts are valid"))
                        }
                    });
                    let _ = http1::Builder::new().serve_connection(TokioIo::new(stream), service).await;
                });
            }
            () = &mut shutdown => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_edges_are_inclusive() {
        const B: &[f64] = &[0.001, 0.01];
        let h = Histogram::new(B);
        h.observe(Duration::from_micros(1000));
        h.observe(Duration::from_micros(1001));
        let mut out = String::new();
        h.render(&mut out, "x", "k=\"v\"");
        assert!(out.contains("x_bucket{k=\"v\",le=\"0.001\"} 1\n"), "{out}");
        assert!(out.contains("x_bucket{k=\"v\",le=\"0.01\"} 2\n"), "{out}");
        assert!(out.contains("x_count{k=\"v\"} 2\n"), "{out}");
    }

    #[test]
    fn families_render_labels_escaped() {
        let f = Family::counter("t_total", "help", &["a", "b"]);
        f.inc(&["x", "y\"z"]);
        f.add(&["x", "y\"z"], 2.0);
        f.touch(&["q", "r"]);
        let mut out = String::new();
        f.render(&mut out);
        assert!(out.contains("# TYPE t_total counter\n"));
        assert!(out.contains("t_total{a=\"x\",b=\"y\\\"z\"} 3\n"), "{out}");
        assert!(out.contains("t_total{a=\"q\",b=\"r\"} 0\n"), "{out}");
    }
}
