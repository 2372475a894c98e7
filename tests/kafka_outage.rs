//! Kafka goes down and comes back, for real: this test stops and restarts the broker with
//! `scripts/kafka.sh`, so it lives alone in its own test binary (cargo runs test binaries one at a time).
//!
//! What must hold: while Kafka is down, a durable-mode gateway answers 503 (not a hang), and every
//! webhook that got a 200 from either mode is on the topic once Kafka is back. A webhook that got 503
//! is retried, as carriers do, until it gets a 200.

mod common;

use std::collections::HashSet;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::*;
use textback_gateway::AckMode;
use textback_schemas::{Carrier, Event, EventKind};

fn kafka(action: &str) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/kafka.sh");
    let status = Command::new("bash")
        .arg(script)
        .arg(action)
        .status()
        .expect("run scripts/kafka.sh");
    assert!(status.success(), "scripts/kafka.sh {action} failed");
}

struct Carrierish {
    addr: std::net::SocketAddr,
    acked: Vec<String>,
    refused: Vec<String>,
}

impl Carrierish {
    /// Sends the missed-call webhook for `call_sid`; records whether it got 200 or 503.
    async fn call(&mut self, call_sid: &str) -> u16 {
        let params = [
            ("CallSid", call_sid),
            ("CallStatus", "no-answer"),
            ("From", "+16175550199"),
            ("To", BUSINESS),
        ];
        let reply = post_twilio(self.addr, "/twilio/voice/status", &params).await;
        match reply.status {
            200 => self.acked.push(call_sid.to_string()),
            503 => self.refused.push(call_sid.to_string()),
            other => panic!("unexpected {other}: {}", reply.body),
        }
        reply.status
    }
}

fn id_of(call_sid: &str) -> uuid::Uuid {
    Event::derive_id(
        Carrier::Twilio,
        EventKind::MissedCall,
        call_sid,
        "no-answer",
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_acknowledged_is_lost_across_a_broker_outage() {
    let topic = fresh_topic("outage").await;
    let mut durable_settings = settings(&topic, AckMode::Durable);
    durable_settings.kafka.publish_timeout_ms = 800;
    let durable = start(durable_settings).await;
    let fast = start(settings(&topic, AckMode::Fast)).await;
    let mut d = Carrierish {
        addr: durable.addr,
        acked: vec![],
        refused: vec![],
    };
    let mut f = Carrierish {
        addr: fast.addr,
        acked: vec![],
        refused: vec![],
    };

    for i in 0..20 {
        assert_eq!(d.call(&format!("CA-d-before-{i}")).await, 200);
        assert_eq!(f.call(&format!("CA-f-before-{i}")).await, 200);
    }

    kafka("stop");
    for i in 0..10 {
        d.call(&format!("CA-d-during-{i}")).await;
        f.call(&format!("CA-f-during-{i}")).await;
    }
    assert_eq!(
        d.refused.len(),
        10,
        "durable mode must refuse while Kafka is down"
    );
    // Fast mode queued them (librdkafka keeps retrying); they must arrive once Kafka is back.
    assert_eq!(f.acked.len(), 30);

    kafka("start");
    for i in 0..20 {
        // Right after the restart the producer may still be reconnecting: a 503 here is retried below.
        d.call(&format!("CA-d-after-{i}")).await;
        f.call(&format!("CA-f-after-{i}")).await;
    }
    // The carrier retries what got 503 until it gets 200.
    for round in 0.. {
        let pending: Vec<String> = d.refused.drain(..).chain(f.refused.drain(..)).collect();
        if pending.is_empty() {
            break;
        }
        assert!(
            round < 60,
            "still refused after 60 retry rounds: {pending:?}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
        for sid in pending {
            let c = if sid.starts_with("CA-d") {
                &mut d
            } else {
                &mut f
            };
            c.call(&sid).await;
        }
    }

    durable.stop().await;
    fast.stop().await;
    let on_topic: HashSet<uuid::Uuid> = read_topic(&topic).iter().map(|e| e.id).collect();
    let acked: HashSet<&String> = d.acked.iter().chain(&f.acked).collect();
    let missing: Vec<&&String> = acked
        .iter()
        .filter(|sid| !on_topic.contains(&id_of(sid)))
        .collect();
    assert!(
        missing.is_empty(),
        "acknowledged with 200 but not on the topic: {missing:?}"
    );
    // Every webhook was eventually acknowledged: 50 distinct calls per mode.
    assert_eq!(acked.len(), 100);
    assert_eq!(on_topic.len(), 100);
}
