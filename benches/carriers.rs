//! Micro-benchmarks of the gateway's per-webhook work: signature checks and parsing per carrier,
//! event encoding, and the dedupe table. Run: `cargo bench --bench carriers`.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use base64::Engine;
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use jiff::Timestamp;
use serde_json::json;
use textback_gateway::carrier::telnyx::{self, Telnyx};
use textback_gateway::carrier::twilio::{self, Form, Hook, Twilio};

const SID: &str = "AC0123456789abcdef0123456789abcdef";
const TOKEN: &str = "0123456789abcdef0123456789abcdef";
const URL: &str = "https://hooks.example.com/twilio/voice/status";

/// A voice status callback with the fields Twilio really sends.
fn twilio_status_params() -> Vec<(&'static str, &'static str)> {
    vec![
        ("AccountSid", SID),
        ("ApiVersion", "2010-04-01"),
        ("CallSid", "CA0123456789abcdef0123456789abcdef"),
        ("CallStatus", "no-answer"),
        ("Called", "+16175550100"),
        ("CalledCity", "BOSTON"),
        ("CalledCountry", "US"),
        ("CalledState", "MA"),
        ("CalledZip", "02108"),
        ("Caller", "+16175550123"),
        ("CallerCity", "BOSTON"),
        ("CallerCountry", "US"),
        ("CallerState", "MA"),
        ("CallerZip", "02108"),
        ("Direction", "inbound"),
        ("Duration", "0"),
        ("From", "+16175550123"),
        ("FromCity", "BOSTON"),
        ("FromCountry", "US"),
        ("FromState", "MA"),
        ("FromZip", "02108"),
        ("Timestamp", "Tue, 09 Jun 2026 14:04:58 +0000"),
        ("To", "+16175550100"),
        ("ToCity", "BOSTON"),
        ("ToCountry", "US"),
        ("ToState", "MA"),
        ("ToZip", "02108"),
    ]
}

fn twilio(c: &mut Criterion) {
    let params = twilio_status_params();
    let body = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(&params)
        .finish()
        .into_bytes();
    let sig = twilio::signature(TOKEN.as_bytes(), URL, params.iter().copied());
    let tokens = BTreeMap::from([(SID.to_string(), TOKEN.to_string())]);
    let gw = Twilio::new("https://hooks.example.com", &tokens);
    let now: Timestamp = "2026-06-09T14:05:00Z".parse().unwrap();

    let mut g = c.benchmark_group("twilio");
    g.throughput(Throughput::Elements(1));
    g.bench_function("signature_hmac_sha1", |b| {
        b.iter(|| twilio::signature(TOKEN.as_bytes(), URL, params.iter().copied()))
    });
    g.bench_function("parse_and_normalise", |b| {
        b.iter(|| twilio::normalise(Hook::VoiceStatus, &Form::parse(&body), SID, now).unwrap())
    });
    g.bench_function("verify_and_normalise", |b| {
        b.iter(|| {
            gw.handle(
                Hook::VoiceStatus,
                "/twilio/voice/status",
                Some(sig.as_bytes()),
                &body,
                now,
            )
            .unwrap()
        })
    });
    g.finish();
}

fn telnyx(c: &mut Criterion) {
    let key = ed25519_dalek::SigningKey::from_bytes(&[9u8; 32]);
    let public = base64::engine::general_purpose::STANDARD.encode(key.verifying_key().to_bytes());
    let gw = Telnyx::new(&public, 300).unwrap();
    let body = json!({"data": {"event_type": "call.hangup", "id": "0ccc7b54-4df3-4bca-a65a-3da1ecc777f0",
        "occurred_at": "2026-06-09T14:04:59.521992Z", "record_type": "event",
        "payload": {"call_control_id": "v3:MdI91X4lWFEs7IgbBEOT9M4AigoY08M0WWZFISt1Yw2axZ_IiE4pqg",
            "call_leg_id": "428c31b6-7af4-4bcb-b7f5-5013ef9657c1", "call_session_id": "428c31b6-abf3-3bc1-b7f4-5013ef9657c1",
            "client_state": null, "connection_id": "7267xxxxxxxxxxxxxx", "from": "+16175550123", "to": "+16175550100",
            "hangup_cause": "timeout", "hangup_source": "callee", "sip_hangup_cause": "480",
            "start_time": "2026-06-09T14:04:30.000000Z", "end_time": "2026-06-09T14:04:59.000000Z", "state": "hangup"}},
        "meta": {"attempt": 1, "delivered_to": "https://hooks.example.com/telnyx"}})
    .to_string()
    .into_bytes();
    let now: Timestamp = "2026-06-09T14:05:00Z".parse().unwrap();
    let ts = now.as_second();
    let sig = telnyx::sign(&key, ts, &body);
    let ts = ts.to_string();

    let mut g = c.benchmark_group("telnyx");
    g.throughput(Throughput::Elements(1));
    g.bench_function("verify_ed25519", |b| {
        b.iter(|| {
            gw.verify(Some(sig.as_bytes()), Some(ts.as_bytes()), &body, now)
                .unwrap()
        })
    });
    g.bench_function("parse_and_normalise", |b| {
        b.iter(|| telnyx::normalise(&body, now).unwrap().unwrap())
    });
    g.bench_function("verify_and_normalise", |b| {
        b.iter(|| {
            gw.handle(Some(sig.as_bytes()), Some(ts.as_bytes()), &body, now)
                .unwrap()
                .unwrap()
        })
    });
    g.finish();
}

fn event_encoding(c: &mut Criterion) {
    let params = twilio_status_params();
    let body = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(&params)
        .finish()
        .into_bytes();
    let now: Timestamp = "2026-06-09T14:05:00Z".parse().unwrap();
    let event = twilio::normalise(Hook::VoiceStatus, &Form::parse(&body), SID, now)
        .unwrap()
        .unwrap();
    let mut g = c.benchmark_group("event");
    g.throughput(Throughput::Elements(1));
    g.bench_function("encode_json", |b| {
        b.iter(|| serde_json::to_vec(&event).unwrap())
    });
    let bytes = serde_json::to_vec(&event).unwrap();
    g.bench_function("decode_json", |b| {
        b.iter(|| serde_json::from_slice::<textback_schemas::Event>(&bytes).unwrap())
    });
    g.finish();
}

fn dedupe(c: &mut Criterion) {
    // The table as the gateway uses it, pre-filled as after ~10 minutes at 1,000 webhooks/s.
    let seen = dashmap::DashMap::<uuid::Uuid, Instant>::new();
    let now = Instant::now();
    for i in 0..600_000u128 {
        seen.insert(uuid::Uuid::from_u128(i), now);
    }
    let mut g = c.benchmark_group("dedupe");
    g.throughput(Throughput::Elements(1));
    g.measurement_time(Duration::from_secs(3));
    let mut i = 0u128;
    g.bench_function("lookup_hit_600k", |b| {
        b.iter(|| {
            i = (i + 7919) % 600_000;
            seen.get(&uuid::Uuid::from_u128(i)).is_some()
        })
    });
    g.bench_function("insert_new", |b| {
        b.iter_batched(
            uuid::Uuid::new_v4,
            |id| seen.insert(id, now),
            BatchSize::SmallInput,
        )
    });
    g.finish();
}

/// Lookups measured on this thread while another thread inserts new ids as fast as it can: the two
/// cores of the machine both on the table, as under a webhook storm.
fn dedupe_contended(c: &mut Criterion) {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    let seen = Arc::new(dashmap::DashMap::<uuid::Uuid, Instant>::new());
    let now = Instant::now();
    for i in 0..600_000u128 {
        seen.insert(uuid::Uuid::from_u128(i), now);
    }
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (seen, stop) = (seen.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut n = 1_000_000u128;
            while !stop.load(Ordering::Relaxed) {
                seen.insert(uuid::Uuid::from_u128(n), now);
                n += 1;
            }
        })
    };
    let mut g = c.benchmark_group("dedupe");
    g.throughput(Throughput::Elements(1));
    g.measurement_time(Duration::from_secs(3));
    let mut i = 0u128;
    g.bench_function("lookup_hit_600k_while_another_thread_inserts", |b| {
        b.iter(|| {
            i = (i + 7919) % 600_000;
            seen.get(&uuid::Uuid::from_u128(i)).is_some()
        })
    });
    g.finish();
    stop.store(true, Ordering::Relaxed);
    let _ = writer.join();
}

criterion_group!(
    benches,
    twilio,
    telnyx,
    event_encoding,
    dedupe,
    dedupe_contended
);
criterion_main!(benches);
