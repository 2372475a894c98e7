//! Every Grafana panel and every alert rule, checked against a real Prometheus (Debian's package)
//! scraping a real gateway and worker under a short load: each expression must be valid and return
//! at least one series. A dashboard that shows nothing is a bug.
//!
//! Grafana's variables are replaced as Grafana would: `$__rate_interval` → 1m, `$__range` → 5m,
//! `$business` → `.*` (All). An alert rule is `<measurement> <comparison> <limit>`; the measurement
//! is what must return data (the comparison is, rightly, empty while all is well).

mod common;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use common::stack::{fresh_store, sender_settings};
use common::{fresh_topic, post_telnyx, post_twilio, send, settings, start, BUSINESS};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use serde_json::Value;
use textback_gateway::AckMode;
use textback_worker::engine::Policy;
use textback_worker::queue::{KafkaConsumerSettings, Queue};
use textback_worker::sender::{self, CarrierApi};
use textback_worker::simulator::{Credentials, Fault, Simulator};
use textback_worker::store::Store;
use textback_worker::telemetry::WorkerMetrics;
use tokio::sync::{watch, Notify};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

struct Prometheus {
    child: Child,
    port: u16,
    _dir: TempDir,
}

struct TempDir(std::path::PathBuf);
impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_prometheus(gateway: &str, worker: &str) -> Prometheus {
    let dir = std::env::temp_dir().join(format!("textback-prom-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let rules = Path::new(env!("CARGO_MANIFEST_DIR")).join("grafana/alerts/textback.rules.yml");
    let config = format!(
        "global: {{scrape_interval: 1s, evaluation_interval: 1s}}\nrule_files: [\"{}\"]\nscrape_configs:\n  - job_name: textback-gateway\n    static_configs: [{{targets: [\"{gateway}\"]}}]\n  - job_name: textback-worker\n    static_configs: [{{targets: [\"{worker}\"]}}]\n",
        rules.display()
    );
    std::fs::write(dir.join("prometheus.yml"), config).unwrap();
    let port = free_port();
    let child = Command::new("prometheus")
        .arg(format!(
            "--config.file={}",
            dir.join("prometheus.yml").display()
        ))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.join("data").display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("prometheus is installed (scripts/test.sh installs Debian's package)");
    Prometheus {
        child,
        port,
        _dir: TempDir(dir),
    }
}

async fn get(port: u16, path_and_query: &str) -> (u16, String) {
    let stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("connect");
    let (mut s, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(conn);
    let req = hyper::Request::get(path_and_query)
        .header("host", "127.0.0.1")
        .body(Full::new(bytes::Bytes::new()))
        .unwrap();
    let resp = s.send_request(req).await.unwrap();
    let status = resp.status().as_u16();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8_lossy(&body).into_owned())
}

/// The measurement of an alert expression: everything before its last top-level comparison.
fn measurement(expr: &str) -> String {
    let bytes = expr.as_bytes();
    let (mut depth, mut quoted, mut cut) = (0i32, false, None);
    for (i, c) in expr.char_indices() {
        match c {
            '"' => quoted = !quoted,
            '(' | '{' | '[' if !quoted => depth += 1,
            ')' | '}' | ']' if !quoted => depth -= 1,
            '>' | '<' if !quoted && depth == 0 => cut = Some(i),
            '=' | '!' if !quoted && depth == 0 && bytes.get(i + 1) == Some(&b'=') => cut = Some(i),
            _ => {}
        }
    }
    match cut {
        Some(i) => expr[..i].trim().to_string(),
        None => expr.trim().to_string(),
    }
}

fn expressions() -> Vec<(String, String)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("grafana");
    let mut out = Vec::new();
    for entry in std::fs::read_dir(root.join("dashboards")).unwrap() {
        let path = entry.unwrap().path();
        let dash: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        for panel in dash["panels"].as_array().unwrap() {
            for target in panel["targets"].as_array().unwrap() {
                let expr = target["expr"]
                    .as_str()
                    .unwrap()
                    .replace("$__rate_interval", "1m")
                    .replace("$__range", "5m")
                    .replace("$business", ".*");
                out.push((
                    format!(
                        "{} / {}",
                        dash["title"].as_str().unwrap(),
                        panel["title"].as_str().unwrap()
                    ),
                    expr,
                ));
            }
        }
    }
    let rules = std::fs::read_to_string(root.join("alerts/textback.rules.yml")).unwrap();
    let mut alert = String::new();
    for line in rules.lines() {
        let line = line.trim();
        if let Some(name) = line.strip_prefix("- alert:") {
            alert = name.trim().to_string();
        } else if let Some(expr) = line.strip_prefix("expr:") {
            out.push((format!("alert {alert}"), measurement(expr)));
        }
    }
    out
}

#[test]
fn measurements_are_cut_at_the_top_level_comparison() {
    assert_eq!(measurement("max(x{a=\"b>c\"}) > 1000"), "max(x{a=\"b>c\"})");
    assert_eq!(
        measurement("sum(rate(a[5m])) / sum(rate(b[5m])) > 0.01"),
        "sum(rate(a[5m])) / sum(rate(b[5m]))"
    );
    assert_eq!(measurement("min(up) == 0"), "min(up)");
    assert_eq!(
        measurement("min(up{job=~\"t.*\"}) < 1"),
        "min(up{job=~\"t.*\"})"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_panel_and_rule_returns_data_from_a_real_prometheus() {
    let topic = fresh_topic("dashboards").await;
    let (store, _) = fresh_store().await;
    let gateway = start(settings(&topic, AckMode::Durable)).await;
    let sim = Simulator::start("127.0.0.1:0".parse().unwrap(), Credentials::default())
        .await
        .unwrap();
    let metrics = Arc::new(WorkerMetrics::default());
    let (stop, rx) = watch::channel(false);
    let stopped = |mut rx: watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|s| *s).await;
    };
    let metrics_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let worker_addr = metrics_listener.local_addr().unwrap();
    let m = metrics.clone();
    tokio::spawn(textback_worker::telemetry::serve(
        metrics_listener,
        Arc::new(move || m.render()),
        stopped(rx.clone()),
    ));
    let queue = Queue::kafka(&KafkaConsumerSettings {
        brokers: common::brokers(),
        topic,
        group: format!("dash-{}", uuid::Uuid::new_v4().simple()),
        extra: Default::default(),
    })
    .unwrap();
    tokio::spawn(textback_worker::telemetry::sample(
        store.clone(),
        queue.lag_probe(),
        metrics.clone(),
        stopped(rx.clone()),
    ));
    let wake = Arc::new(Notify::new());
    let api = Arc::new(CarrierApi::new(sender_settings(&sim)));
    tokio::spawn(sender::run(
        store.clone(),
        api,
        wake.clone(),
        metrics.clone(),
        stopped(rx.clone()),
    ));
    tokio::spawn(textback_worker::run::consume(
        store.clone(),
        queue,
        Policy::default(),
        4,
        wake,
        metrics.clone(),
        stopped(rx),
    ));

    let prom = start_prometheus(&gateway.addr.to_string(), &worker_addr.to_string());
    let mut ready = false;
    for _ in 0..100 {
        if tokio::net::TcpStream::connect(("127.0.0.1", prom.port))
            .await
            .is_ok()
            && get(prom.port, "/-/ready").await.0 == 200
        {
            ready = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(ready, "Prometheus did not become ready");

    // A short load that touches every panel: text-backs on both carriers, bookings, a hand-off, an
    // opt-out, a carrier retry and a refusal, a duplicate and a forged webhook.
    sim.fail_next(1, Fault::RateLimited);
    for round in 0..3 {
        for i in 0..4 {
            let caller = format!("+1617555{round}{i:03}");
            let sid = format!("CA-dash-{round}-{i}");
            post_twilio(
                gateway.addr,
                "/twilio/voice/status",
                &[
                    ("CallSid", &sid),
                    ("CallStatus", "no-answer"),
                    ("From", &caller),
                    ("To", BUSINESS),
                ],
            )
            .await;
        }
        let hangup = serde_json::json!({"data": {"event_type": "call.hangup", "payload": {"call_session_id": format!("s-{round}"),
            "from": format!("+1415555{round:04}"), "to": BUSINESS, "hangup_cause": "timeout"}}});
        post_telnyx(gateway.addr, &hangup).await;
        tokio::time::sleep(Duration::from_millis(700)).await;
        let text = |i: usize, body: &'static str| {
            let caller = format!("+1617555{round}{i:03}");
            let sid = format!("SM-dash-{round}-{i}");
            async move {
                post_twilio(
                    gateway.addr,
                    "/twilio/sms",
                    &[
                        ("MessageSid", &sid),
                        ("Body", body),
                        ("NumMedia", "0"),
                        ("From", &caller),
                        ("To", BUSINESS),
                    ],
                )
                .await
            }
        };
        text(0, "haircut tomorrow at 2pm").await;
        text(1, "can someone call me").await;
        text(2, "STOP").await;
        if round == 1 {
            sim.fail_next(1, Fault::Permanent("21211".into()));
        }
        text(3, "beard trim tomorrow at 4pm").await;
        // A carrier retry and a forged webhook.
        post_twilio(
            gateway.addr,
            "/twilio/voice/status",
            &[
                ("CallSid", "CA-dash-0-0"),
                ("CallStatus", "no-answer"),
                ("From", "+16175550000"),
                ("To", BUSINESS),
            ],
        )
        .await;
        send(
            gateway.addr,
            "POST",
            "/twilio/sms",
            &[("x-twilio-signature", "forged".into())],
            b"AccountSid=AC0000000000000000000000000000test".to_vec(),
        )
        .await;
        tokio::time::sleep(Duration::from_millis(1500)).await;
    }
    // Let the worker finish and Prometheus take a few more scrapes.
    for _ in 0..100 {
        if store.outbox_depth().await.unwrap() == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_secs(4)).await;

    let mut failures = Vec::new();
    let list = expressions();
    assert!(list.len() >= 30, "found only {} expressions", list.len());
    for (what, expr) in &list {
        let query: String = form_urlencoded::Serializer::new(String::new())
            .append_pair("query", expr)
            .finish();
        let (status, body) = get(prom.port, &format!("/api/v1/query?{query}")).await;
        let parsed: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
        if status != 200 || parsed["status"] != "success" {
            failures.push(format!("{what}: invalid ({status}): {expr}: {body}"));
        } else if parsed["data"]["result"]
            .as_array()
            .is_none_or(|r| r.is_empty())
        {
            failures.push(format!("{what}: no series: {expr}"));
        }
    }
    // The rules themselves loaded and are evaluated.
    let (_, rules) = get(prom.port, "/api/v1/rules").await;
    let rules: Value = serde_json::from_str(&rules).unwrap();
    let loaded = rules["data"]["groups"][0]["rules"]
        .as_array()
        .map_or(0, |r| r.len());
    if loaded != 8 {
        failures.push(format!(
            "Prometheus loaded {loaded} alert rules, expected 8"
        ));
    }
    let _ = stop.send(true);
    gateway.stop().await;
    drop(prom);
    assert!(
        failures.is_empty(),
        "{} of {} expressions failed:\n{}",
        failures.len(),
        list.len(),
        failures.join("\n")
    );
}
