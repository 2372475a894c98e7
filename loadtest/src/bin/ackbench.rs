//! `ackbench`: how fast the gateway acknowledges webhooks, against a bare hyper server that only
//! answers 200, measured in the same run on the same machine.
//!
//! Each target is served in this process on its own tokio runtime; the client runs on another. For
//! each target it measures (1) a fixed offered rate, open loop: every request has an intended send time
//! and its latency counts from then, so a stalled server is not hidden (no coordinated omission); and
//! (2) saturation, closed loop: every connection sends its next request as soon as the last is answered.
//! Latency is recorded in nanoseconds (hdrhistogram) and printed in microseconds. For the gateway it
//! also prints the share of acknowledgements the gateway itself timed at ≤ 1 ms.
//!
//! Requests are real signed carrier webhooks (half Twilio status callbacks, half Telnyx call.hangup),
//! each for a distinct call, so none is dropped as a duplicate.
//!
//! Needs Kafka (scripts/kafka.sh start). Example:
//!   cargo run -p loadtest --release --bin ackbench -- --rate 2000 --seconds 10 --connections 32

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use base64::Engine;
use bytes::Bytes;
use clap::Parser;
use hdrhistogram::Histogram;
use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper_util::rt::TokioIo;
use textback_gateway::carrier::{telnyx, twilio};
use textback_gateway::{AckMode, Gateway, KafkaSettings, Settings, TelnyxSettings, TwilioSettings};

const SID: &str = "AC00000000000000000000000000000dev";
const TOKEN: &str = "dev-twilio-auth-token";
const BASE: &str = "http://127.0.0.1";

#[derive(Parser, Clone)]
struct Args {
    /// Offered rate for the fixed-rate phase, requests per second.
    #[arg(long, default_value_t = 1000)]
    rate: u64,
    /// Length of each measured phase.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Keep-alive connections the client uses.
    #[arg(long, default_value_t = 16)]
    connections: usize,
    /// Kafka bootstrap servers.
    #[arg(long, default_value = "127.0.0.1:9092")]
    brokers: String,
    /// Worker threads of the server runtime.
    #[arg(long, default_value_t = 1)]
    server_threads: usize,
    /// Skip the saturation phase.
    #[arg(long)]
    no_saturation: bool,
}

#[derive(Clone, Copy, PartialEq)]
enum Target {
    Bare,
    Gateway(AckMode),
}

impl Target {
    fn name(self) -> &'static str {
        match self {
            Target::Bare => "bare hyper (200 only)",
            Target::Gateway(AckMode::Durable) => "gateway, durable ack",
            Target::Gateway(AckMode::Fast) => "gateway, fast ack",
        }
    }
}

struct Phase {
    requests: u64,
    errors: u64,
    seconds: f64,
    latency: Histogram<u64>,
    gateway_under_1ms: Option<(u64, u64)>,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    println!(
        "ackbench: {} cores, rate {} req/s, {} s per phase, {} connections, server threads {}",
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(0),
        args.rate,
        args.seconds,
        args.connections,
        args.server_threads
    );
    println!();
    println!("| target | phase | offered req/s | achieved req/s | errors | p50 µs | p99 µs | p99.9 µs | max µs | gateway acks ≤ 1 ms |");
    println!("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|");
    let mut rows = Vec::new();
    for target in [
        Target::Bare,
        Target::Gateway(AckMode::Durable),
        Target::Gateway(AckMode::Fast),
    ] {
        let (fixed, saturated) = run_target(&args, target)?;
        for (phase_name, offered, phase) in [
            ("fixed rate", Some(args.rate), Some(fixed)),
            ("saturation", None, saturated),
        ] {
            let Some(phase) = phase else { continue };
            print_row(target, phase_name, offered, &phase);
            rows.push((target, phase_name, phase));
        }
    }
    println!();
    let bare_sat = rows
        .iter()
        .find(|r| r.0 == Target::Bare && r.1 == "saturation");
    let bare_fixed = rows
        .iter()
        .find(|r| r.0 == Target::Bare && r.1 == "fixed rate");
    if let (Some(sat), Some(fixed)) = (bare_sat, bare_fixed) {
        let bare_rps = sat.2.requests as f64 / sat.2.seconds;
        let bare_p99 = fixed.2.latency.value_at_quantile(0.99) as f64;
        println!("| target | saturation req/s vs bare | fixed-rate p99 vs bare |");
        println!("|---|---:|---:|");
        for target in [
            Target::Gateway(AckMode::Durable),
            Target::Gateway(AckMode::Fast),
        ] {
            let sat = rows.iter().find(|r| r.0 == target && r.1 == "saturation");
            let fixed = rows.iter().find(|r| r.0 == target && r.1 == "fixed rate");
            let sat_ratio =
                sat.map(|r| format!("{:.2}×", (r.2.requests as f64 / r.2.seconds) / bare_rps));
            let p99_ratio = fixed.map(|r| {
                format!(
                    "{:.2}×",
                    r.2.latency.value_at_quantile(0.99) as f64 / bare_p99
                )
            });
            println!(
                "| {} | {} | {} |",
                target.name(),
                sat_ratio.unwrap_or_else(|| "-".into()),
                p99_ratio.unwrap_or_else(|| "-".into())
            );
        }
    }
    Ok(())
}

fn us(nanos: u64) -> String {
    format!("{:.0}", nanos as f64 / 1000.0)
}

fn print_row(target: Target, phase_name: &str, offered: Option<u64>, p: &Phase) {
    let under = p
        .gateway_under_1ms
        .map_or("-".to_string(), |(total, fast)| {
            format!("{:.2} %", 100.0 * fast as f64 / total.max(1) as f64)
        });
    println!(
        "| {} | {} | {} | {:.0} | {} | {} | {} | {} | {} | {} |",
        target.name(),
        phase_name,
        offered.map_or("max".into(), |r| r.to_string()),
        p.requests as f64 / p.seconds,
        p.errors,
        us(p.latency.value_at_quantile(0.50)),
        us(p.latency.value_at_quantile(0.99)),
        us(p.latency.value_at_quantile(0.999)),
        us(p.latency.max()),
        under
    );
}

/// Serves `target` on its own runtime and measures it from a client runtime.
fn run_target(args: &Args, target: Target) -> anyhow::Result<(Phase, Option<Phase>)> {
    let server_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.server_threads)
        .thread_name("server")
        .enable_all()
        .build()?;
    let client_rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let listener = server_rt.block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))?;
    let addr = listener.local_addr()?;
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let gateway = match target {
        Target::Bare => {
            server_rt.spawn(loadtest::stack::bare_server(listener, async move {
                let _ = stop_rx.await;
            }));
            None
        }
        Target::Gateway(mode) => {
            let gateway = Gateway::new(settings(args, addr, mode)).context("gateway settings")?;
            server_rt.spawn(gateway.clone().serve(listener, async move {
                let _ = stop_rx.await;
            }));
            Some(gateway)
        }
    };
    let acks = || {
        gateway
            .as_ref()
            .map(|g| g.metrics().acks_total_and_under_1ms())
    };
    let result = client_rt.block_on(async {
        // Warm-up: connections, the topic's metadata, the producer's first batch.
        let warm = Requests::new(addr.port(), 2000);
        fixed_rate(
            addr,
            &warm,
            args.rate.min(1000),
            Duration::from_secs(2),
            args.connections,
        )
        .await?;
        let before = acks();
        let total = (args.rate * args.seconds) as usize + 1000;
        let requests = Requests::new(addr.port(), total);
        let mut fixed = fixed_rate(
            addr,
            &requests,
            args.rate,
            Duration::from_secs(args.seconds),
            args.connections,
        )
        .await?;
        fixed.gateway_under_1ms = delta(before, acks());
        let saturated = if args.no_saturation {
            None
        } else {
            let before = acks();
            let requests = Requests::new(
                addr.port(),
                (args.seconds as usize * 30_000).max(args.connections * 100),
            );
            let mut p = saturate(
                addr,
                requests,
                Duration::from_secs(args.seconds),
                args.connections,
            )
            .await?;
            p.gateway_under_1ms = delta(before, acks());
            Some(p)
        };
        anyhow::Ok((fixed, saturated))
    });
    let _ = stop_tx.send(());
    server_rt.shutdown_timeout(Duration::from_secs(10));
    result
}

fn delta(before: Option<(u64, u64)>, after: Option<(u64, u64)>) -> Option<(u64, u64)> {
    Some((after?.0 - before?.0, after?.1 - before?.1))
}

fn settings(args: &Args, addr: SocketAddr, mode: AckMode) -> Settings {
    let key = ed25519_dalek::SigningKey::from_bytes(&[0u8; 32]);
    Settings {
        listen: addr,
        public_base_url: format!("{BASE}:{}", addr.port()),
        ack_mode: mode,
        kafka: KafkaSettings {
            brokers: args.brokers.clone(),
            topic: format!("textback.bench.{}", jiff::Timestamp::now().as_millisecond()),
            ..KafkaSettings::default()
        },
        twilio: TwilioSettings {
            auth_tokens: BTreeMap::from([(SID.to_string(), TOKEN.to_string())]),
        },
        telnyx: TelnyxSettings {
            public_key: base64::engine::general_purpose::STANDARD
                .encode(key.verifying_key().to_bytes()),
            ..TelnyxSettings::default()
        },
        ..Settings::default()
    }
}

/// Pre-signed webhooks, so signing costs nothing during measurement.
struct Requests {
    items: Vec<Webhook>,
}

/// Path, headers, body.
type Webhook = (String, Vec<(&'static str, String)>, Bytes);

impl Requests {
    fn new(port: u16, n: usize) -> Self {
        let key = ed25519_dalek::SigningKey::from_bytes(&[0u8; 32]);
        let now = jiff::Timestamp::now().as_second();
        let salt = jiff::Timestamp::now().as_nanosecond();
        let items = (0..n)
            .map(|i| {
                let caller = format!("+1617{:07}", i % 10_000_000);
                let business = format!("+1212{:07}", i % 1000);
                let call = format!("CA{salt:x}{i:08}");
                if i % 2 == 0 {
                    let path = "/twilio/voice/status";
                    let params = [
                        ("AccountSid", SID),
                        ("CallSid", call.as_str()),
                        ("CallStatus", "no-answer"),
                        ("Direction", "inbound"),
                        ("From", caller.as_str()),
                        ("To", business.as_str()),
                    ];
                    let body = form_urlencoded::Serializer::new(String::new()).extend_pairs(params).finish();
                    let sig = twilio::signature(TOKEN.as_bytes(), &format!("{BASE}:{port}{path}"), params);
                    let headers = vec![
                        ("content-type", "application/x-www-form-urlencoded".to_string()),
                        ("x-twilio-signature", sig),
                    ];
                    (path.to_string(), headers, Bytes::from(body))
                } else {
                    let body = serde_json::json!({"data": {"event_type": "call.hangup", "id": call,
                        "occurred_at": "2026-06-09T14:04:59Z", "record_type": "event",
                        "payload": {"call_session_id": call, "call_control_id": "v3:x", "connection_id": "conn-1",
                            "from": caller, "to": business, "hangup_cause": "timeout", "hangup_source": "callee"}}})
                    .to_string();
                    let sig = telnyx::sign(&key, now, body.as_bytes());
                    let headers = vec![
                        ("content-type", "application/json".to_string()),
                        ("telnyx-signature-ed25519", sig),
                        ("telnyx-timestamp", now.to_string()),
                    ];
                    ("/telnyx".to_string(), headers, Bytes::from(body))
                }
            })
            .collect();
        Requests { items }
    }

    fn request(&self, i: usize) -> Request<Full<Bytes>> {
        build(&self.items[i % self.items.len()])
    }
}

fn build((path, headers, body): &Webhook) -> Request<Full<Bytes>> {
    let mut req = Request::post(path.as_str()).header("host", "127.0.0.1");
    for (k, v) in headers {
        req = req.header(*k, v);
    }
    req.body(Full::new(body.clone())).expect("valid request")
}

type Sender = hyper::client::conn::http1::SendRequest<Full<Bytes>>;

async fn connect(addr: SocketAddr) -> anyhow::Result<Sender> {
    let stream = tokio::net::TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(conn);
    Ok(sender)
}

/// One request; Ok(true) when answered 200.
async fn exchange(sender: &mut Sender, req: Request<Full<Bytes>>) -> anyhow::Result<bool> {
    sender.ready().await?;
    let resp = sender.send_request(req).await?;
    let ok = resp.status() == 200;
    resp.into_body().collect().await?;
    Ok(ok)
}

fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 60_000_000_000, 3).expect("valid bounds")
}

/// Open loop at `rate`: request k is due at start + k/rate, on connection k mod C. Latency counts from
/// the due time when the connection was still busy with its previous request then (the server is
/// behind: that wait is the server's), otherwise from the actual send (so the timer's millisecond
/// granularity is not counted against a sub-millisecond server).
async fn fixed_rate(
    addr: SocketAddr,
    requests: &Requests,
    rate: u64,
    length: Duration,
    connections: usize,
) -> anyhow::Result<Phase> {
    let total = (rate as f64 * length.as_secs_f64()) as usize;
    let interval = Duration::from_secs_f64(1.0 / rate as f64);
    let mut senders = Vec::with_capacity(connections);
    for _ in 0..connections {
        senders.push(connect(addr).await?);
    }
    let start = tokio::time::Instant::now() + Duration::from_millis(20);
    let mut tasks = Vec::with_capacity(connections);
    for (c, mut sender) in senders.into_iter().enumerate() {
        let plan: Vec<(tokio::time::Instant, Request<Full<Bytes>>)> = (c..total)
            .step_by(connections)
            .map(|k| (start + interval * k as u32, requests.request(k)))
            .collect();
        tasks.push(tokio::spawn(async move {
            let mut h = histogram();
            let mut errors = 0u64;
            for (due, req) in plan {
                let late = tokio::time::Instant::now() > due;
                tokio::time::sleep_until(due).await;
                let from = if late {
                    due
                } else {
                    tokio::time::Instant::now()
                };
                if !exchange(&mut sender, req).await.unwrap_or(false) {
                    errors += 1;
                }
                h.saturating_record(from.elapsed().as_nanos() as u64);
            }
            (h, errors)
        }));
    }
    collect(tasks, start).await
}

/// Closed loop: each connection sends its next request as soon as the last is answered.
async fn saturate(
    addr: SocketAddr,
    requests: Requests,
    length: Duration,
    connections: usize,
) -> anyhow::Result<Phase> {
    let mut senders = Vec::with_capacity(connections);
    for _ in 0..connections {
        senders.push(connect(addr).await?);
    }
    let start = tokio::time::Instant::now();
    let deadline = start + length;
    let mut tasks = Vec::with_capacity(connections);
    let requests = Arc::new(requests.items);
    for (c, mut sender) in senders.into_iter().enumerate() {
        let requests = requests.clone();
        tasks.push(tokio::spawn(async move {
            let mut h = histogram();
            let mut errors = 0u64;
            // Connection c sends requests c, c+C, c+2C, ...; past the end of the pool it starts over
            // (the gateway then acknowledges repeats as duplicates, which is cheaper: see BENCHMARKS.md).
            let mut k = c;
            while tokio::time::Instant::now() < deadline {
                let sent = tokio::time::Instant::now();
                if !exchange(&mut sender, build(&requests[k % requests.len()]))
                    .await
                    .unwrap_or(false)
                {
                    errors += 1;
                }
                h.saturating_record(sent.elapsed().as_nanos() as u64);
                k += connections;
            }
            (h, errors)
        }));
    }
    collect(tasks, start).await
}

async fn collect(
    tasks: Vec<tokio::task::JoinHandle<(Histogram<u64>, u64)>>,
    start: tokio::time::Instant,
) -> anyhow::Result<Phase> {
    let mut latency = histogram();
    let mut errors = 0;
    for task in tasks {
        let (h, e) = task.await?;
        latency.add(&h)?;
        errors += e;
    }
    let seconds = start.elapsed().as_secs_f64();
    if latency.is_empty() {
        bail!("no request completed");
    }
    Ok(Phase {
        requests: latency.len(),
        errors,
        seconds,
        latency,
        gateway_under_1ms: None,
    })
}
