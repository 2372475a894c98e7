//! The worker binary is killed with SIGKILL in the middle of a stream of 1,000 missed calls from
//! distinct callers, then started again: every caller gets exactly one text. What makes it hold:
//! event ids recorded in the same transaction as the text (a redelivered event changes nothing),
//! offsets stored only after commit (nothing acknowledged is lost), and texts leased by the dead
//! sender looked up at the carrier before they are sent again.

mod common;

use std::collections::HashMap;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::stack::{fresh_store, pg_url};
use common::{brokers, fresh_topic, BUSINESS};
use rdkafka::config::ClientConfig;
use rdkafka::producer::{FutureProducer, FutureRecord};
use textback_schemas::{Call, Carrier, Detail, Event, EventKind, PhoneNumber};
use textback_worker::simulator::{Credentials, Simulator};
use textback_worker::store::Store;

const CALLERS: usize = 1000;

fn caller(i: usize) -> String {
    format!("+1212555{i:04}")
}

fn spawn_worker(url: &str, topic: &str, group: &str, sim: &Simulator) -> Child {
    let c = sim.credentials();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_textback"));
    for (name, _) in std::env::vars().filter(|(n, _)| n.starts_with("TEXTBACK_")) {
        cmd.env_remove(name);
    }
    cmd.arg("worker")
        .env("TEXTBACK_WORKER_POSTGRES_URL", url)
        .env("TEXTBACK_WORKER_CONSUMER_GROUP", group)
        .env("TEXTBACK_KAFKA_BROKERS", brokers())
        .env("TEXTBACK_KAFKA_TOPIC", topic)
        .env("TEXTBACK_SENDER_PER_NUMBER_RATE", "2000")
        .env("TEXTBACK_SENDER_BACKOFF_BASE_MS", "50")
        .env("TEXTBACK_SENDER_MAX_QUEUE_DELAY_MS", "1000")
        .env("TEXTBACK_SENDER_REQUEST_TIMEOUT_MS", "2000")
        .env("TEXTBACK_SENDER_POLL_INTERVAL_MS", "100")
        .env(
            "TEXTBACK_SENDER_TWILIO",
            format!(
                "{{ base_url = \"{}\", account_sid = \"{}\", auth_token = \"{}\" }}",
                sim.url(),
                c.twilio_account_sid,
                c.twilio_auth_token
            ),
        )
        .env("TEXTBACK_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start the worker")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_mid_stream_loses_nothing_and_duplicates_nothing() {
    let topic = fresh_topic("crash").await;
    let (store, schema) = fresh_store().await;
    let url = format!("{}?options=-c%20search_path%3D{schema}%2Cpublic", pg_url());
    let sim = Simulator::start("127.0.0.1:0".parse().unwrap(), Credentials::default())
        .await
        .unwrap();
    let group = format!("crash-{}", uuid::Uuid::new_v4().simple());

    // 1,000 missed calls from distinct callers, as the gateway would publish them.
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", brokers())
        .set("linger.ms", "5")
        .create()
        .unwrap();
    let business = PhoneNumber::parse(BUSINESS).unwrap();
    let mut deliveries = Vec::with_capacity(CALLERS);
    for i in 0..CALLERS {
        let now = jiff::Timestamp::now();
        let call_id = format!("CA-crash-{i}");
        let event = Event {
            id: Event::derive_id(
                Carrier::Twilio,
                EventKind::MissedCall,
                &call_id,
                "no-answer",
            ),
            carrier: Carrier::Twilio,
            account: "AC-test".into(),
            business_number: business.clone(),
            caller_number: PhoneNumber::parse(&caller(i)).unwrap(),
            occurred_at: now,
            received_at: now,
            detail: Detail::MissedCall(Call {
                call_id,
                call_status: "no-answer".into(),
                duration_secs: 0,
            }),
        };
        let payload = serde_json::to_vec(&event).unwrap();
        let key = event.partition_key();
        let record = FutureRecord::to(&topic).key(&key).payload(&payload);
        deliveries.push(producer.send_result(record).map_err(|(e, _)| e).unwrap());
    }
    for d in deliveries {
        d.await.unwrap().map_err(|(e, _)| e).unwrap();
    }

    // Start the worker, kill it when about a third of the texts are out.
    let mut first = spawn_worker(&url, &topic, &group, &sim);
    let reached = sim
        .wait_until(Duration::from_secs(120), |r| r.len() >= CALLERS / 3)
        .await;
    first.kill().expect("SIGKILL the worker"); // std's kill is SIGKILL on Unix
    let _ = first.wait();
    assert!(
        reached,
        "the worker sent only {} texts before the kill",
        sim.received().len()
    );
    let at_kill = sim.received().len();
    assert!(
        at_kill < CALLERS,
        "the kill came too late to test anything ({at_kill} texts already out)"
    );

    // Restart; wait until every caller has a text and nothing waits in the outbox.
    let mut second = spawn_worker(&url, &topic, &group, &sim);
    let all = sim
        .wait_until(Duration::from_secs(180), |r| {
            let mut seen = std::collections::HashSet::new();
            r.iter().for_each(|m| {
                seen.insert(m.to.clone());
            });
            seen.len() >= CALLERS
        })
        .await;
    let mut drained = false;
    for _ in 0..200 {
        if store.outbox_depth().await.unwrap() == 0 {
            drained = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    second.kill().ok();
    let _ = second.wait();

    let mut per_caller: HashMap<String, usize> = HashMap::new();
    for r in sim.received() {
        *per_caller.entry(r.to).or_default() += 1;
    }
    let missing: Vec<String> = (0..CALLERS)
        .map(caller)
        .filter(|c| !per_caller.contains_key(c))
        .collect();
    let doubled: Vec<(&String, &usize)> = per_caller.iter().filter(|(_, n)| **n > 1).collect();
    assert!(
        all && missing.is_empty(),
        "{} callers got no text: {:?}",
        missing.len(),
        &missing[..missing.len().min(5)]
    );
    assert!(
        doubled.is_empty(),
        "{} callers got more than one text: {:?}",
        doubled.len(),
        &doubled[..doubled.len().min(5)]
    );
    assert!(drained, "the outbox did not drain");
    assert_eq!(per_caller.len(), CALLERS);
    eprintln!(
        "crash test: {at_kill} texts out at the kill, {} in all",
        sim.received().len()
    );
}
