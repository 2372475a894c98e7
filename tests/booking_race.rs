//! Fifty callers text for the same free slot at once, through the real engine on PostgreSQL: with
//! capacity 1 exactly one is booked and the rest are offered other times; with capacity 2, exactly
//! two. And where capacity is 1, the database itself refuses a second overlapping booking even from
//! transactions that skip the business lock.

mod common;

use std::sync::Arc;

use common::stack::fresh_store;
use jiff::{Timestamp, ToSpan};
use textback_schemas::{Carrier, Detail, Event, EventKind, InboundSms, PhoneNumber};
use textback_worker::engine::{self, Policy};
use textback_worker::store::postgres::PgStore;
use textback_worker::store::{NewAppointment, Store, Tx};

const RIVALS: usize = 50;

fn text(i: usize, body: &str, at: Timestamp) -> Event {
    let id = format!("SM-race-{i}");
    Event {
        id: Event::derive_id(Carrier::Twilio, EventKind::InboundSms, &id, ""),
        carrier: Carrier::Twilio,
        account: "AC".into(),
        business_number: PhoneNumber::parse("+16175550100").unwrap(),
        caller_number: PhoneNumber::parse(&format!("+1415555{i:04}")).unwrap(),
        occurred_at: at,
        received_at: at,
        detail: Detail::InboundSms(InboundSms {
            message_id: id,
            body: body.into(),
            media_count: 0,
        }),
    }
}

async fn race(store: PgStore) -> (i64, usize) {
    let store = Arc::new(store);
    let now = Timestamp::now();
    let mut tasks = Vec::new();
    for i in 0..RIVALS {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            engine::handle(
                store.as_ref(),
                &Policy::default(),
                &text(i, "haircut tomorrow at 2pm", now),
                now,
            )
            .await
            .unwrap()
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let client = store.pool().get().await.unwrap();
    let booked: i64 = client
        .query_one(
            "SELECT count(*) FROM appointments WHERE status = 'booked'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    let mut offered = 0;
    for i in 0..RIVALS {
        let texts = store
            .texts_to(&PhoneNumber::parse(&format!("+1415555{i:04}")).unwrap())
            .await
            .unwrap();
        assert_eq!(texts.len(), 1, "caller {i} got {texts:?}");
        if texts[0].body.contains("is taken. The closest I have: 1)") {
            offered += 1;
        } else {
            assert!(
                texts[0].body.contains("You're booked: Haircut"),
                "caller {i}: {}",
                texts[0].body
            );
        }
    }
    (booked, offered)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_rivals_capacity_one() {
    let (store, _) = fresh_store().await;
    let (booked, offered) = race(store).await;
    assert_eq!((booked, offered), (1, RIVALS - 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_rivals_capacity_two() {
    let (store, _) = fresh_store().await;
    let mut tx = store.begin().await.unwrap();
    let mut b = (*tx
        .business_by_number(&PhoneNumber::parse("+16175550100").unwrap())
        .await
        .unwrap()
        .unwrap())
    .clone();
    drop(tx);
    b.profile.booking.capacity = 2;
    let b = textback_worker::profile::Business::from_profile(b.profile).unwrap();
    store.upsert_business(&b).await.unwrap();
    let (booked, offered) = race(store).await;
    assert_eq!((booked, offered), (2, RIVALS - 2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_database_refuses_overlap_even_without_the_lock() {
    let (store, _) = fresh_store().await;
    let mut tx = store.begin().await.unwrap();
    let b = tx
        .business_by_number(&PhoneNumber::parse("+16175550100").unwrap())
        .await
        .unwrap()
        .unwrap();
    tx.commit().await.unwrap();
    let start = Timestamp::now() + 48.hours();
    let (c1, c2) = (
        PhoneNumber::parse("+14155550001").unwrap(),
        PhoneNumber::parse("+14155550002").unwrap(),
    );
    // Two transactions that never lock the business: neither sees the other's booking.
    let mut t1 = store.begin().await.unwrap();
    let t2 = store.begin().await.unwrap();
    let new = |caller| NewAppointment {
        id: uuid::Uuid::new_v4(),
        business: &b,
        service_id: "haircut",
        caller,
        start,
        conversation_id: uuid::Uuid::new_v4(),
    };
    assert!(t1.book(new(&c1)).await.unwrap().is_ok());
    let second = tokio::spawn(async move {
        let b2 = b.clone();
        let mut t2 = t2;
        let r = t2
            .book(NewAppointment {
                id: uuid::Uuid::new_v4(),
                business: &b2,
                service_id: "haircut",
                caller: &c2,
                start: start + 15.minutes(),
                conversation_id: uuid::Uuid::new_v4(),
            })
            .await
            .unwrap();
        t2.commit().await.unwrap();
        r
    });
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    t1.commit().await.unwrap();
    assert!(
        second.await.unwrap().is_err(),
        "the exclusion constraint must refuse the overlap"
    );
    let client = store.pool().get().await.unwrap();
    let booked: i64 = client
        .query_one(
            "SELECT count(*) FROM appointments WHERE status = 'booked'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(booked, 1);
}
