//! `loadtest`: the goose scenarios an operator runs before a launch.
//!
//! - `storm`: signed Twilio and Telnyx missed-call webhooks from many distinct callers to many businesses;
//! - `conversations`: a missed call, then the caller's text asking to book, as in a real exchange;
//! - `retry-storm`: the same webhooks again and again, as carriers do during an incident;
//! - `mix`: all of them together, plus forged webhooks that must be refused.
//!
//! Each scenario runs for `--run-time` seconds, one after the other. goose reports whole milliseconds,
//! so each request's acknowledgement latency is also recorded in microseconds (HdrHistogram) and the
//! summary prints p50/p99/p99.9 from that. The end-to-end figure (webhook sent → text request at the
//! carrier simulator, matched by caller) is measured when the stack is local.
//!
//! By default it starts the whole stack here on real Kafka and PostgreSQL (starting them with the
//! repository's scripts if they are not running); `--target` points it at a deployment instead.
//!
//!   cargo run -p loadtest --release -- --run-time 10 --users 16

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Parser;
use goose::config::GooseConfiguration;
use goose::prelude::*;
use hdrhistogram::Histogram;
use loadtest::stack::{business_number, LocalStack, TELNYX_SEED};
use textback_gateway::carrier::{telnyx, twilio};

#[derive(Parser)]
struct Args {
    /// Public base URL of a deployment's gateway (what Twilio signs). Default: start the stack here.
    #[arg(long)]
    target: Option<String>,
    /// Twilio account the target accepts, with its auth token (with --target).
    #[arg(long, default_value = "AC00000000000000000000000000000dev")]
    twilio_account: String,
    #[arg(long, default_value = "dev-twilio-auth-token")]
    twilio_token: String,
    /// Seconds each scenario runs.
    #[arg(long, default_value_t = 10)]
    run_time: usize,
    /// Simulated carriers sending at once.
    #[arg(long, default_value_t = 8)]
    users: usize,
    /// Scenarios to run, in order.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "storm,conversations,retry-storm,mix"
    )]
    scenarios: Vec<String>,
    /// Businesses the callers are spread over (the local stack creates them).
    #[arg(long, default_value_t = 500)]
    businesses: usize,
    #[arg(long, default_value = "127.0.0.1:9092")]
    brokers: String,
    #[arg(long, default_value = "postgres://postgres@127.0.0.1:5432/postgres")]
    postgres: String,
}

/// What the transactions need; goose transactions are plain functions.
struct Run {
    base_url: String,
    twilio_account: String,
    twilio_token: String,
    businesses: usize,
    next_caller: AtomicUsize,
    /// Acknowledgement latency of the current scenario, in nanoseconds.
    ack: Mutex<Histogram<u64>>,
    /// When each missed call of the current scenario was sent, by caller.
    sent: Mutex<HashMap<String, Instant>>,
}

static RUN: OnceLock<Run> = OnceLock::new();

fn run() -> &'static Run {
    RUN.get().expect("configured before the attack")
}

fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1_000, 60_000_000_000, 3).expect("valid bounds")
}

fn next_caller() -> (usize, String) {
    let i = run().next_caller.fetch_add(1, Ordering::Relaxed);
    (i, format!("+1718{:07}", i % 10_000_000))
}

/// Sends one signed webhook and records how long the gateway took to answer.
async fn post(
    user: &mut GooseUser,
    name: &str,
    path: &str,
    headers: Vec<(&str, String)>,
    body: String,
    expect: u16,
) -> TransactionResult {
    let mut builder = user
        .get_request_builder(&GooseMethod::Post, path)?
        .body(body);
    for (k, v) in headers {
        builder = builder.header(k, v);
    }
    let request = GooseRequest::builder()
        .method(GooseMethod::Post)
        .path(path)
        .name(name)
        .set_request_builder(builder);
    let request = if expect == 200 {
        request
    } else {
        request.expect_status_code(expect)
    };
    let started = Instant::now();
    let _ = user.request(request.build()).await?;
    run()
        .ack
        .lock()
        .expect("histogram")
        .saturating_record(started.elapsed().as_nanos() as u64);
    Ok(())
}

fn twilio_form(path: &str, params: &[(&str, &str)]) -> (Vec<(&'static str, String)>, String) {
    let r = run();
    let mut all: Vec<(&str, &str)> = vec![("AccountSid", r.twilio_account.as_str())];
    all.extend_from_slice(params);
    let body = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(&all)
        .finish();
    let sig = twilio::signature(
        r.twilio_token.as_bytes(),
        &format!("{}{path}", r.base_url),
        all.iter().copied(),
    );
    (
        vec![
            ("content-type", "application/x-www-form-urlencoded".into()),
            ("x-twilio-signature", sig),
        ],
        body,
    )
}

/// A Twilio missed call from `caller` to `business`, its send time noted for the end-to-end figure.
async fn missed_call(
    user: &mut GooseUser,
    name: &str,
    call_sid: &str,
    caller: &str,
    business: &str,
) -> TransactionResult {
    let path = "/twilio/voice/status";
    let params = [
        ("CallSid", call_sid),
        ("CallStatus", "no-answer"),
        ("From", caller),
        ("To", business),
    ];
    let (headers, body) = twilio_form(path, &params);
    run()
        .sent
        .lock()
        .expect("sent")
        .insert(caller.to_string(), Instant::now());
    post(user, name, path, headers, body, 200).await
}

async fn twilio_missed_call(user: &mut GooseUser) -> TransactionResult {
    let (i, caller) = next_caller();
    let business = business_number(i % run().businesses);
    missed_call(
        user,
        "twilio missed call",
        &format!("CAload{i:012}"),
        &caller,
        &business,
    )
    .await
}

async fn telnyx_missed_call(user: &mut GooseUser) -> TransactionResult {
    let (i, caller) = next_caller();
    let business = business_number(i % run().businesses);
    let body = serde_json::json!({"data": {"event_type": "call.hangup", "id": format!("evt-{i}"), "record_type": "event",
        "payload": {"call_session_id": format!("load-{i}"), "call_control_id": "v3:load", "connection_id": "load",
            "from": caller, "to": business, "hangup_cause": "timeout", "hangup_source": "callee"}}})
    .to_string();
    let ts = jiff::Timestamp::now().as_second();
    let sig = telnyx::sign(
        &ed25519_dalek::SigningKey::from_bytes(&TELNYX_SEED),
        ts,
        body.as_bytes(),
    );
    let headers = vec![
        ("content-type", "application/json".into()),
        ("telnyx-signature-ed25519", sig),
        ("telnyx-timestamp", ts.to_string()),
    ];
    run()
        .sent
        .lock()
        .expect("sent")
        .insert(caller, Instant::now());
    post(user, "telnyx missed call", "/telnyx", headers, body, 200).await
}

async fn conversation(user: &mut GooseUser) -> TransactionResult {
    let (i, caller) = next_caller();
    let business = business_number(i % run().businesses);
    missed_call(
        user,
        "conversation: missed call",
        &format!("CAconv{i:012}"),
        &caller,
        &business,
    )
    .await?;
    let text = format!("SMconv{i:012}");
    tokio::time::sleep(Duration::from_millis(200)).await;
    let path = "/twilio/sms";
    let (headers, body) = twilio_form(
        path,
        &[
            ("MessageSid", &text),
            ("Body", "hi can I get a haircut tomorrow at 2pm"),
            ("NumMedia", "0"),
            ("From", &caller),
            ("To", &business),
        ],
    );
    post(user, "conversation: text", path, headers, body, 200).await
}

/// The same 50 webhooks over and over: after the first of each, the gateway acknowledges duplicates.
async fn retry(user: &mut GooseUser) -> TransactionResult {
    let i = run().next_caller.fetch_add(1, Ordering::Relaxed) % 50;
    let caller = format!("+1929555{i:04}");
    let business = business_number(i % run().businesses);
    let sid = format!("CAretry{i:04}");
    let path = "/twilio/voice/status";
    let (headers, body) = twilio_form(
        path,
        &[
            ("CallSid", &sid),
            ("CallStatus", "busy"),
            ("From", &caller),
            ("To", &business),
        ],
    );
    post(user, "retried missed call", path, headers, body, 200).await
}

async fn forged(user: &mut GooseUser) -> TransactionResult {
    let (i, caller) = next_caller();
    let path = "/twilio/voice/status";
    let (mut headers, body) = twilio_form(
        path,
        &[
            ("CallSid", &format!("CAforged{i}")),
            ("CallStatus", "no-answer"),
            ("From", &caller),
            ("To", &business_number(0)),
        ],
    );
    headers[1].1 = "Zm9yZ2VkIHNpZ25hdHVyZQ==".into();
    post(
        user,
        "forged webhook (403 expected)",
        path,
        headers,
        body,
        403,
    )
    .await
}

fn scenario(name: &str) -> anyhow::Result<Scenario> {
    Ok(match name {
        "storm" => scenario!("storm")
            .register_transaction(transaction!(twilio_missed_call).set_weight(3)?)
            .register_transaction(transaction!(telnyx_missed_call).set_weight(2)?),
        "conversations" => {
            scenario!("conversations").register_transaction(transaction!(conversation))
        }
        "retry-storm" => scenario!("retry_storm").register_transaction(transaction!(retry)),
        "mix" => scenario!("mix")
            .register_transaction(transaction!(twilio_missed_call).set_weight(4)?)
            .register_transaction(transaction!(telnyx_missed_call).set_weight(2)?)
            .register_transaction(transaction!(conversation).set_weight(1)?)
            .register_transaction(transaction!(retry).set_weight(2)?)
            .register_transaction(transaction!(forged).set_weight(1)?),
        other => {
            anyhow::bail!("unknown scenario {other:?} (storm, conversations, retry-storm, mix)")
        }
    })
}

struct Row {
    name: String,
    requests: usize,
    errors: usize,
    seconds: f64,
    ack: Histogram<u64>,
    e2e: Option<(usize, Histogram<u64>)>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let local = match &args.target {
        Some(_) => None,
        None => Some(
            LocalStack::start(&args.brokers, &args.postgres, args.businesses, 8)
                .await
                .context("local stack")?,
        ),
    };
    let base_url = args
        .target
        .clone()
        .unwrap_or_else(|| local.as_ref().expect("local").base_url.clone());
    RUN.set(Run {
        base_url: base_url.trim_end_matches('/').to_string(),
        twilio_account: args.twilio_account.clone(),
        twilio_token: args.twilio_token.clone(),
        businesses: args.businesses,
        next_caller: AtomicUsize::new(0),
        ack: Mutex::new(histogram()),
        sent: Mutex::new(HashMap::new()),
    })
    .map_err(|_| anyhow::anyhow!("configured twice"))?;
    println!(
        "loadtest: {} users per scenario, {} s each, against {base_url}",
        args.users, args.run_time
    );
    let mut rows = Vec::new();
    // Same run, same client: the storm's requests against a bare hyper server that only answers 200.
    let baseline = match &local {
        Some(_) => {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
            let host = format!("http://{}", listener.local_addr()?);
            let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
            tokio::spawn(loadtest::stack::bare_server(listener, async move {
                let _ = stopped.await;
            }));
            let row = attack(
                &args,
                "storm",
                "baseline: bare hyper (storm requests)",
                &host,
                None,
            )
            .await?;
            let _ = stop.send(());
            Some(row)
        }
        None => None,
    };
    for name in &args.scenarios {
        rows.push(attack(&args, name, name, &base_url, local.as_ref()).await?);
    }
    println!();
    println!("| scenario | requests | req/s | errors | ack p50 µs | ack p99 µs | ack p99.9 µs | texted | e2e p50 ms | e2e p99 ms |");
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for r in baseline.iter().chain(&rows) {
        let us = |q: f64| format!("{:.0}", r.ack.value_at_quantile(q) as f64 / 1e3);
        let (texted, p50, p99) = match &r.e2e {
            Some((n, h)) if *n > 0 => (
                n.to_string(),
                format!("{:.1}", h.value_at_quantile(0.5) as f64 / 1e6),
                format!("{:.1}", h.value_at_quantile(0.99) as f64 / 1e6),
            ),
            Some(_) => ("0".into(), "-".into(), "-".into()),
            None => ("n/a".into(), "n/a".into(), "n/a".into()),
        };
        println!(
            "| {} | {} | {:.0} | {} | {} | {} | {} | {texted} | {p50} | {p99} |",
            r.name,
            r.requests,
            r.requests as f64 / r.seconds,
            r.errors,
            us(0.5),
            us(0.99),
            us(0.999)
        );
    }
    if let (Some(b), Some(storm)) = (&baseline, rows.iter().find(|r| r.name == "storm")) {
        let rps = |r: &Row| r.requests as f64 / r.seconds;
        let p99 = |r: &Row| r.ack.value_at_quantile(0.99) as f64;
        println!(
            "\nstorm vs the bare server in this run: {:.2}x the requests/s, {:.1}x the ack p99",
            rps(storm) / rps(b),
            p99(storm) / p99(b).max(1.0)
        );
    }
    if let Some(l) = local {
        l.stop().await;
    }
    let errors: usize = rows.iter().map(|r| r.errors).sum();
    anyhow::ensure!(errors == 0, "{errors} requests failed");
    Ok(())
}

/// Runs one scenario against `host` and collects its figures (end to end when `local` is given).
async fn attack(
    args: &Args,
    scenario_name: &str,
    label: &str,
    host: &str,
    local: Option<&LocalStack>,
) -> anyhow::Result<Row> {
    if let Some(l) = local {
        // Start from a drained pipeline, so a scenario's figures are its own.
        l.drain(Duration::from_secs(120)).await;
    }
    *run().ack.lock().expect("histogram") = histogram();
    run().sent.lock().expect("sent").clear();
    let before = local.map(|l| l.sim.received().len()).unwrap_or(0);
    let metrics = GooseAttack::initialize_with_config(GooseConfiguration::default())?
        .register_scenario(scenario(scenario_name)?)
        .set_default(GooseDefault::Host, host)?
        .set_default(GooseDefault::Users, args.users)?
        .set_default(GooseDefault::IncreaseRate, args.users.to_string().as_str())?
        .set_default(GooseDefault::RunTime, args.run_time)?
        .set_default(GooseDefault::NoPrintMetrics, true)?
        .set_default(GooseDefault::NoResetMetrics, true)?
        .set_default(GooseDefault::Quiet, 1)?
        .set_default(GooseDefault::NoTelnet, true)?
        .execute()
        .await?;
    let requests: usize = metrics
        .requests
        .values()
        .map(|r| r.success_count + r.fail_count)
        .sum();
    let errors: usize = metrics.requests.values().map(|r| r.fail_count).sum();
    let e2e = match local {
        Some(l) => Some(end_to_end(l, before).await),
        None => None,
    };
    let ack = std::mem::replace(&mut *run().ack.lock().expect("histogram"), histogram());
    Ok(Row {
        name: label.to_string(),
        requests,
        errors,
        seconds: metrics.duration.max(1) as f64,
        ack,
        e2e,
    })
}

/// Webhook sent → first text to that caller at the simulator, for the missed calls of this scenario.
async fn end_to_end(local: &LocalStack, before: usize) -> (usize, Histogram<u64>) {
    let sent = run().sent.lock().expect("sent").clone();
    let expected = sent.len();
    local
        .sim
        .wait_until(Duration::from_secs(15), |r| {
            let mut seen = std::collections::HashSet::new();
            r[before.min(r.len())..]
                .iter()
                .filter(|m| sent.contains_key(&m.to))
                .for_each(|m| {
                    seen.insert(m.to.clone());
                });
            seen.len() >= expected
        })
        .await;
    let mut h = histogram();
    let mut seen = std::collections::HashSet::new();
    for m in &local.sim.received()[before..] {
        if let Some(at) = sent.get(&m.to) {
            if seen.insert(m.to.clone()) {
                h.saturating_record(m.at.saturating_duration_since(*at).as_nanos() as u64);
            }
        }
    }
    (seen.len(), h)
}
