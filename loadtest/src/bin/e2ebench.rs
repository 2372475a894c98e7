//! `e2ebench`: end-to-end latency through real Kafka and PostgreSQL.
//!
//! The gateway (durable acks, real Kafka), the worker (Kafka consumer, PostgreSQL store) and the
//! sender run in this process; the sender texts the carrier simulator, also in this process, so the
//! latency of each caller is measured on one clock: signed webhook sent by the client → SMS request
//! received by the simulator. Callers are distinct and spread over many businesses (each business
//! number is rate-limited to one text a second, as a long code is).
//!
//! Phases: a steady offered rate (default 100 missed calls/s), then rates stepped up until p99 passes
//! the target or errors appear; then caller text → reply at the steady rate.
//!
//! Needs Kafka on --brokers and PostgreSQL on --postgres (scripts/kafka.sh, scripts/postgres.sh).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use clap::Parser;
use hdrhistogram::Histogram;
use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use loadtest::stack::LocalStack;
use textback_gateway::carrier::twilio;
use textback_worker::sender::CarrierApi;
use textback_worker::simulator::Simulator;
use tokio::time::Instant;

#[derive(Parser)]
struct Args {
    #[arg(long, default_value = "127.0.0.1:9092")]
    brokers: String,
    #[arg(long, default_value = "postgres://postgres@127.0.0.1:5432/postgres")]
    postgres: String,
    /// Steady offered rate, missed calls per second.
    #[arg(long, default_value_t = 100)]
    rate: u64,
    /// Length of each phase.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Rates tried after the steady phase, in order, until p99 passes --target-ms.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "200,400,600,800,1000,1200,1500"
    )]
    steps: Vec<u64>,
    #[arg(long, default_value_t = 250)]
    target_ms: u64,
    /// Businesses the callers are spread over.
    #[arg(long, default_value_t = 2000)]
    businesses: usize,
    /// Partitions of the bench topic; the worker runs one lane per partition.
    #[arg(long, default_value_t = 16)]
    partitions: i32,
}

const BASE: &str = "http://127.0.0.1";

struct Phase {
    rate: u64,
    sent: usize,
    errors: usize,
    latency: Histogram<u64>,
    lost: usize,
}

fn ms(nanos: u64) -> f64 {
    nanos as f64 / 1e6
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    rt.block_on(run(args))
}

async fn run(args: Args) -> anyhow::Result<()> {
    let stack = LocalStack::start(
        &args.brokers,
        &args.postgres,
        args.businesses,
        args.partitions,
    )
    .await?;
    let (sim, creds, base_url) = (&stack.sim, &stack.credentials, stack.base_url.clone());
    let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let target = Duration::from_millis(args.target_ms);
    let tokens = (
        creds.twilio_account_sid.clone(),
        creds.twilio_auth_token.clone(),
    );
    let load = Load {
        client: &client,
        tokens: &tokens,
        sim,
        businesses: args.businesses,
    };

    println!("e2ebench: 2 cores; gateway (durable) + Kafka + worker + PostgreSQL + sender + simulator on one machine");
    println!(
        "{} businesses, distinct callers, {} partitions, {} s per phase\n",
        args.businesses, args.partitions, args.seconds
    );
    println!("| phase | offered/s | sent | errors | lost | p50 ms | p90 ms | p99 ms | max ms |");
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|");
    // Baseline, same client, same simulator: a webhook handler that texts the caller directly
    // (no Kafka, no PostgreSQL, nothing durable), as the simplest text-back products do.
    let direct_base = direct_texter(sim).await?;
    let mut next_caller = 1_000_000usize;
    let _ = load
        .missed_calls(&direct_base, 50, 1, &mut next_caller)
        .await;
    let baseline = load
        .missed_calls(&direct_base, args.rate, args.seconds, &mut next_caller)
        .await;
    row("baseline: handler texts directly", &baseline);
    // Warm-up: connections, topic metadata, statement caches.
    let mut next_caller = 0usize;
    let _warm = load.missed_calls(&base_url, 50, 2, &mut next_caller).await;
    let steady = load
        .missed_calls(&base_url, args.rate, args.seconds, &mut next_caller)
        .await;
    row("missed call → text-back", &steady);
    let steady_callers: Vec<usize> =
        (next_caller - (args.rate * args.seconds) as usize..next_caller).collect();
    let mut best = if steady.latency.value_at_quantile(0.99) < target.as_nanos() as u64
        && steady.errors == 0
        && steady.lost == 0
    {
        Some(args.rate)
    } else {
        None
    };
    for rate in &args.steps {
        let p = load
            .missed_calls(&base_url, *rate, args.seconds, &mut next_caller)
            .await;
        row("missed call → text-back", &p);
        if p.latency.value_at_quantile(0.99) >= target.as_nanos() as u64
            || p.errors > 0
            || p.lost > 0
        {
            break;
        }
        best = Some(*rate);
    }
    // Let the steps drain before measuring replies.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let replies = load.texts(&base_url, args.rate, &steady_callers).await;
    row("caller text → reply", &replies);
    let ratio = |p: &Phase| {
        p.latency.value_at_quantile(0.99) as f64
            / baseline.latency.value_at_quantile(0.99).max(1) as f64
    };
    println!();
    println!(
        "p99 vs the direct baseline at {}/s: text-back {:.2}x, reply {:.2}x",
        args.rate,
        ratio(&steady),
        ratio(&replies)
    );
    match best {
        Some(r) => println!(
            "highest offered rate with p99 under {} ms: {r} missed calls/s",
            args.target_ms
        ),
        None => println!("no rate tried kept p99 under {} ms", args.target_ms),
    }
    stack.stop().await;
    Ok(())
}

/// A server that, for every webhook, sends the text-back straight to the simulator and then answers.
async fn direct_texter(sim: &Simulator) -> anyhow::Result<String> {
    use hyper::server::conn::http1;
    use hyper::service::service_fn;
    use hyper_util::rt::TokioIo;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("{BASE}:{}", listener.local_addr()?.port());
    let api = Arc::new(CarrierApi::new(sim.sender_settings()));
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let _ = stream.set_nodelay(true);
            let api = api.clone();
            tokio::spawn(http1::Builder::new().serve_connection(
                TokioIo::new(stream),
                service_fn(move |req: Request<hyper::body::Incoming>| {
                    let api = api.clone();
                    async move {
                        let body = req
                            .into_body()
                            .collect()
                            .await
                            .map(|b| b.to_bytes())
                            .unwrap_or_default();
                        let form: HashMap<String, String> =
                            form_urlencoded::parse(&body).into_owned().collect();
                        let (Some(from), Some(to)) = (form.get("From"), form.get("To")) else {
                            return Ok::<_, std::convert::Infallible>(hyper::Response::new(
                                Full::new(Bytes::new()),
                            ));
                        };
                        let message = textback_worker::store::Outgoing {
                            id: uuid::Uuid::new_v4(),
                            carrier: textback_schemas::Carrier::Twilio,
                            business_id: String::new(),
                            conversation_id: None,
                            from: textback_schemas::PhoneNumber::parse(to).expect("number"),
                            to: textback_schemas::PhoneNumber::parse(from).expect("number"),
                            body: "Sorry we missed your call!".into(),
                            kind: textback_worker::store::OutKind::TextBack,
                            queued_at: jiff::Timestamp::now(),
                            event_received_at: jiff::Timestamp::now(),
                        };
                        let _ = api.send(&message).await;
                        Ok(hyper::Response::new(Full::new(Bytes::new())))
                    }
                }),
            ));
        }
    });
    Ok(base)
}

fn row(name: &str, p: &Phase) {
    let h = &p.latency;
    println!(
        "| {name} | {} | {} | {} | {} | {:.1} | {:.1} | {:.1} | {:.1} |",
        p.rate,
        p.sent,
        p.errors,
        p.lost,
        ms(h.value_at_quantile(0.5)),
        ms(h.value_at_quantile(0.9)),
        ms(h.value_at_quantile(0.99)),
        ms(h.max())
    );
}

fn caller_number(i: usize) -> String {
    format!("+1718{:07}", i)
}

fn business_of(i: usize, businesses: usize) -> String {
    loadtest::stack::business_number(i % businesses)
}

type Tokens = (String, String);

fn signed(
    base_url: &str,
    tokens: &Tokens,
    path: &str,
    params: &[(&str, &str)],
) -> Request<Full<Bytes>> {
    let mut all: Vec<(&str, &str)> = vec![("AccountSid", tokens.0.as_str())];
    all.extend_from_slice(params);
    let body = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(&all)
        .finish();
    let sig = twilio::signature(
        tokens.1.as_bytes(),
        &format!("{base_url}{path}"),
        all.iter().copied(),
    );
    Request::post(format!("{base_url}{path}"))
        .header("content-type", "application/x-www-form-urlencoded")
        .header("x-twilio-signature", sig)
        .body(Full::new(Bytes::from(body)))
        .expect("request")
}

/// Sends `kind` webhooks for callers at `rate`/s and measures each to the caller's next text at the
/// simulator.
async fn open_loop(
    client: &Client<hyper_util::client::legacy::connect::HttpConnector, Full<Bytes>>,
    sim: &Simulator,
    rate: u64,
    callers: &[usize],
    build: impl Fn(usize) -> Request<Full<Bytes>>,
) -> Phase {
    let before: HashMap<String, usize> = {
        let mut m = HashMap::new();
        for r in sim.received() {
            *m.entry(r.to).or_insert(0) += 1;
        }
        m
    };
    let interval = Duration::from_secs_f64(1.0 / rate as f64);
    let start = Instant::now() + Duration::from_millis(20);
    let mut tasks = Vec::with_capacity(callers.len());
    for (k, &i) in callers.iter().enumerate() {
        let due = start + interval * k as u32;
        tokio::time::sleep_until(due).await;
        let req = build(i);
        let client = client.clone();
        tasks.push(tokio::spawn(async move {
            let sent = std::time::Instant::now();
            let ok = match client.request(req).await {
                Ok(resp) => {
                    let ok = resp.status().is_success();
                    let _ = resp.into_body().collect().await;
                    ok
                }
                Err(_) => false,
            };
            (i, sent, ok)
        }));
    }
    let mut sent_at = HashMap::new();
    let mut errors = 0;
    for t in tasks {
        let (i, sent, ok) = t.await.expect("task");
        if ok {
            sent_at.insert(caller_number(i), sent);
        } else {
            errors += 1;
        }
    }
    // Wait (bounded) for the texts.
    let expected = sent_at.len();
    let want: HashMap<String, usize> = sent_at
        .keys()
        .map(|c| (c.clone(), before.get(c).copied().unwrap_or(0)))
        .collect();
    sim.wait_until(Duration::from_secs(30), |r| {
        let mut seen: HashMap<&str, usize> = HashMap::new();
        for x in r {
            *seen.entry(x.to.as_str()).or_insert(0) += 1;
        }
        want.iter()
            .filter(|(c, n)| seen.get(c.as_str()).copied().unwrap_or(0) > **n)
            .count()
            >= expected
    })
    .await;
    let mut latency =
        Histogram::<u64>::new_with_bounds(1_000, 600_000_000_000, 3).expect("histogram");
    let mut counted: HashMap<String, usize> = HashMap::new();
    let mut measured = 0;
    for r in sim.received() {
        let seen = counted.entry(r.to.clone()).or_insert(0);
        *seen += 1;
        // The first text to this caller after the ones it had before this phase.
        if let (Some(sent), Some(n)) = (sent_at.get(&r.to), want.get(&r.to)) {
            if *seen == n + 1 {
                latency.saturating_record(r.at.saturating_duration_since(*sent).as_nanos() as u64);
                measured += 1;
            }
        }
    }
    Phase {
        rate,
        sent: callers.len(),
        errors,
        latency,
        lost: expected - measured,
    }
}

/// What each caller sends in a phase.
#[derive(Clone, Copy)]
enum Webhook {
    MissedCall,
    Text,
}

/// Signed Twilio webhook `kind` from caller `i` to its business.
fn webhook(
    base_url: &str,
    tokens: &Tokens,
    businesses: usize,
    kind: Webhook,
    i: usize,
) -> Request<Full<Bytes>> {
    let caller = caller_number(i);
    let business = business_of(i, businesses);
    match kind {
        Webhook::MissedCall => {
            let sid = format!("CAbench{i:010}");
            let params = [
                ("CallSid", sid.as_str()),
                ("CallStatus", "no-answer"),
                ("From", &caller),
                ("To", &business),
            ];
            signed(base_url, tokens, "/twilio/voice/status", &params)
        }
        Webhook::Text => {
            let sid = format!("SMbench{i:010}");
            let body = "haircut tomorrow at 2pm please";
            let params = [
                ("MessageSid", sid.as_str()),
                ("Body", body),
                ("NumMedia", "0"),
                ("From", &caller),
                ("To", &business),
            ];
            signed(base_url, tokens, "/twilio/sms", &params)
        }
    }
}

type HttpClient = Client<hyper_util::client::legacy::connect::HttpConnector, Full<Bytes>>;

/// What every phase shares: the client, the credentials, the simulator, the businesses.
struct Load<'a> {
    client: &'a HttpClient,
    tokens: &'a Tokens,
    sim: &'a Simulator,
    businesses: usize,
}

impl Load<'_> {
    /// `rate` missed calls a second for `seconds`, from callers not used before.
    async fn missed_calls(
        &self,
        base_url: &str,
        rate: u64,
        seconds: u64,
        next_caller: &mut usize,
    ) -> Phase {
        let n = (rate * seconds) as usize;
        let callers: Vec<usize> = (*next_caller..*next_caller + n).collect();
        *next_caller += n;
        open_loop(self.client, self.sim, rate, &callers, |i| {
            webhook(
                base_url,
                self.tokens,
                self.businesses,
                Webhook::MissedCall,
                i,
            )
        })
        .await
    }

    /// One text from each of `callers`, `rate` a second.
    async fn texts(&self, base_url: &str, rate: u64, callers: &[usize]) -> Phase {
        open_loop(self.client, self.sim, rate, callers, |i| {
            webhook(base_url, self.tokens, self.businesses, Webhook::Text, i)
        })
        .await
    }
}
