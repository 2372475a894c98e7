//! One contract, two queues: the in-process channel and Kafka deliver every published event, each
//! conversation's events in the order published and always on the same shard. Kafka additionally
//! redelivers what was not acknowledged.

use std::collections::HashMap;
use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::producer::{FutureProducer, FutureRecord};
use textback_schemas::{Carrier, Detail, Event, EventKind, InboundSms, PhoneNumber};
use textback_worker::queue::{KafkaConsumerSettings, Queue};

const CONVERSATIONS: usize = 20;
const PER_CONVERSATION: usize = 15;

fn brokers() -> String {
    std::env::var("TEXTBACK_TEST_KAFKA").unwrap_or_else(|_| "127.0.0.1:9092".into())
}

/// Event k of conversation c; the body carries k so order can be checked.
fn event(c: usize, k: usize) -> Event {
    let now = jiff::Timestamp::now();
    let id = format!("SM-{c}-{k}");
    Event {
        id: Event::derive_id(Carrier::Telnyx, EventKind::InboundSms, &id, ""),
        carrier: Carrier::Telnyx,
        account: "mp".into(),
        business_number: PhoneNumber::parse("+16175550100").unwrap(),
        caller_number: PhoneNumber::parse(&format!("+1617555{c:04}")).unwrap(),
        occurred_at: now,
        received_at: now,
        detail: Detail::InboundSms(InboundSms {
            message_id: id,
            body: k.to_string(),
            media_count: 0,
        }),
    }
}

fn all_events() -> Vec<Event> {
    // Interleaved across conversations, in order within each.
    (0..PER_CONVERSATION)
        .flat_map(|k| (0..CONVERSATIONS).map(move |c| event(c, k)))
        .collect()
}

/// Receives `n` deliveries (acknowledging them when `ack`) and checks the contract.
async fn receive_and_check(queue: &mut Queue, n: usize, ack: bool) -> Vec<Event> {
    let mut got = Vec::new();
    let mut shard_of: HashMap<String, usize> = HashMap::new();
    let mut last: HashMap<String, i64> = HashMap::new();
    while got.len() < n {
        let d = tokio::time::timeout(Duration::from_secs(30), queue.recv())
            .await
            .unwrap_or_else(|_| panic!("only {} of {n} events delivered", got.len()))
            .expect("queue open");
        let key = d.event.partition_key();
        let k: i64 = match &d.event.detail {
            Detail::InboundSms(m) => m.body.parse().unwrap(),
            _ => unreachable!(),
        };
        assert_eq!(
            *shard_of.entry(key.clone()).or_insert(d.shard),
            d.shard,
            "a conversation moved shards"
        );
        let prev = last.insert(key.clone(), k).unwrap_or(-1);
        assert!(k > prev, "conversation {key}: event {k} after {prev}");
        got.push(d.event.clone());
        if ack {
            d.ack();
        }
    }
    got
}

#[tokio::test]
async fn in_process_queue_keeps_the_contract() {
    let (tx, mut queue) = Queue::in_process(1024, 4);
    let events = all_events();
    for e in &events {
        tx.send(e.clone()).await.unwrap();
    }
    let got = receive_and_check(&mut queue, events.len(), true).await;
    assert_eq!(got.len(), CONVERSATIONS * PER_CONVERSATION);
    drop(tx);
    assert!(
        queue.recv().await.is_none(),
        "closed when the publisher is gone"
    );
}

#[tokio::test]
async fn kafka_queue_keeps_the_contract_and_redelivers_unacknowledged() {
    let topic = format!("textback.test.queue.{}", uuid::Uuid::new_v4().simple());
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", brokers())
        .create()
        .unwrap();
    admin
        .create_topics(
            &[NewTopic::new(&topic, 3, TopicReplication::Fixed(1))],
            &AdminOptions::new(),
        )
        .await
        .expect("Kafka reachable (run scripts/test.sh)")
        .into_iter()
        .for_each(|r| {
            r.unwrap();
        });
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", brokers())
        .create()
        .unwrap();
    let events = all_events();
    for e in &events {
        let payload = serde_json::to_vec(e).unwrap();
        let key = e.partition_key();
        producer
            .send(
                FutureRecord::to(&topic).key(&key).payload(&payload),
                Duration::from_secs(10),
            )
            .await
            .map_err(|(e, _)| e)
            .unwrap();
    }
    let settings = KafkaConsumerSettings {
        brokers: brokers(),
        topic: topic.clone(),
        group: format!("contract-{}", uuid::Uuid::new_v4().simple()),
        extra: Default::default(),
    };
    // First consumer: reads everything, acknowledges nothing, goes away.
    {
        let mut queue = Queue::kafka(&settings).unwrap();
        let got = receive_and_check(&mut queue, events.len(), false).await;
        assert_eq!(got.len(), events.len());
    }
    // Second consumer in the same group: everything again, since nothing was acknowledged.
    let mut queue = Queue::kafka(&settings).unwrap();
    let got = receive_and_check(&mut queue, events.len(), true).await;
    let mut ids: Vec<_> = got.iter().map(|e| e.id).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), events.len(), "every event, once each");
}
