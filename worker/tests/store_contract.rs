//! One contract, two back ends: the in-memory store and PostgreSQL must behave the same. Each test is
//! written once, against the `Store` trait, and run on both; PostgreSQL tests get a fresh schema each.

use jiff::{SignedDuration, Timestamp};
use textback_schemas::PhoneNumber;
use textback_worker::assistant::State;
use textback_worker::profile::{load_file, Business};
use textback_worker::store::memory::MemoryStore;
use textback_worker::store::postgres::PgStore;
use textback_worker::store::{Conversation, Inbound, NewAppointment, OutKind, Outgoing, Store, Tx};
use uuid::Uuid;

const BUSINESSES: &str = r#"{"businesses": [
  {"id": "barber", "name": "Fade & Co", "phone_number": "+16175550100", "owner_phone": "+16175550199",
   "timezone": "America/New_York", "address": "41 Elm St",
   "hours": {"tue": [["09:00", "18:00"]], "wed": [["09:00", "18:00"]]},
   "booking": {"slot_interval_min": 15, "min_notice_min": 60, "horizon_days": 30, "capacity": 1},
   "services": [{"id": "haircut", "name": "Haircut", "duration_min": 30, "price_cents": 3500}]},
  {"id": "hvac", "name": "Comfort Air", "phone_number": "+17145550177", "owner_phone": "+17145550178",
   "timezone": "America/Los_Angeles",
   "hours": {"mon": [["07:00", "19:00"]]},
   "booking": {"slot_interval_min": 60, "min_notice_min": 120, "horizon_days": 14, "capacity": 2},
   "services": [{"id": "ac", "name": "AC Repair", "duration_min": 120, "price_cents": 12900, "buffer_after_min": 30}]}
]}"#;

fn businesses() -> Vec<Business> {
    load_file(BUSINESSES).unwrap()
}

fn n(s: &str) -> PhoneNumber {
    PhoneNumber::parse(s).unwrap()
}

fn ts(s: &str) -> Timestamp {
    s.parse().unwrap()
}

async fn seeded<S: Store>(store: S) -> (S, Vec<Business>) {
    let list = businesses();
    for b in &list {
        store.upsert_business(b).await.unwrap();
    }
    (store, list)
}

fn pg_url() -> String {
    std::env::var("TEXTBACK_TEST_PG")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

async fn pg() -> PgStore {
    let schema = format!("t_{}", Uuid::new_v4().simple());
    let store = PgStore::new(&pg_url(), Some(&schema), 8).unwrap();
    store.migrate(Some(&schema)).await.unwrap_or_else(|e| {
        panic!(
            "PostgreSQL at {} is not reachable ({e}); run scripts/test.sh",
            pg_url()
        )
    });
    store
}

/// Runs one contract test on both back ends.
macro_rules! contract {
    ($name:ident) => {
        mod $name {
            #[tokio::test]
            async fn memory() {
                super::$name(textback_worker::store::memory::MemoryStore::new()).await;
            }
            #[tokio::test]
            async fn postgres() {
                super::$name(super::pg().await).await;
            }
        }
    };
}

async fn events_are_claimed_once<S: Store>(store: S) {
    let id = Uuid::new_v4();
    let mut tx = store.begin().await.unwrap();
    assert!(tx.claim_event(id).await.unwrap());
    drop(tx); // not committed: as if it never happened
    tokio::task::yield_now().await;
    let mut tx = store.begin().await.unwrap();
    assert!(
        tx.claim_event(id).await.unwrap(),
        "a rolled-back claim must not count"
    );
    tx.commit().await.unwrap();
    let mut tx = store.begin().await.unwrap();
    assert!(
        !tx.claim_event(id).await.unwrap(),
        "a committed claim must count"
    );
    assert!(tx.claim_event(Uuid::new_v4()).await.unwrap());
}
contract!(events_are_claimed_once);

async fn businesses_by_number<S: Store>(store: S) {
    let (store, list) = seeded(store).await;
    let mut tx = store.begin().await.unwrap();
    let b = tx
        .business_by_number(&n("+17145550177"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (b.id.as_str(), b.rules.capacity, b.services[0].buffer_min),
        ("hvac", 2, 30)
    );
    assert!(tx
        .business_by_number(&n("+19995550000"))
        .await
        .unwrap()
        .is_none());
    tx.commit().await.unwrap();
    // Insert or update by id: a changed name is seen.
    let mut changed = list[0].profile.clone();
    changed.name = "Fade & Co Barbers".into();
    store
        .upsert_business(&Business::from_profile(changed).unwrap())
        .await
        .unwrap();
    let mut tx = store.begin().await.unwrap();
    assert_eq!(
        tx.business_by_number(&n("+16175550100"))
            .await
            .unwrap()
            .unwrap()
            .name,
        "Fade & Co Barbers"
    );
}
contract!(businesses_by_number);

async fn bookings_respect_capacity<S: Store>(store: S) {
    let (store, list) = seeded(store).await;
    let (barber, hvac) = (&list[0], &list[1]);
    let caller = n("+16175550123");
    fn book<'a>(b: &'a Business, caller: &'a PhoneNumber, at: &str) -> NewAppointment<'a> {
        NewAppointment {
            id: Uuid::new_v4(),
            business: b,
            service_id: &b.services[0].id,
            caller,
            start: ts(at),
            conversation_id: Uuid::new_v4(),
        }
    }
    let mut tx = store.begin().await.unwrap();
    let first = book(barber, &caller, "2026-06-09T14:00:00Z");
    let first_id = first.id;
    assert!(tx.book(first).await.unwrap().is_ok());
    // Capacity 1: 14:15 overlaps 14:00–14:30; 14:30 does not.
    assert!(tx
        .book(book(barber, &caller, "2026-06-09T14:15:00Z"))
        .await
        .unwrap()
        .is_err());
    assert!(tx
        .book(book(barber, &caller, "2026-06-09T14:30:00Z"))
        .await
        .unwrap()
        .is_ok());
    // Capacity 2 with a 30-minute buffer: two fit, the third does not, even partly.
    assert!(tx
        .book(book(hvac, &caller, "2026-06-08T16:00:00Z"))
        .await
        .unwrap()
        .is_ok());
    assert!(tx
        .book(book(hvac, &caller, "2026-06-08T17:00:00Z"))
        .await
        .unwrap()
        .is_ok());
    assert!(
        tx.book(book(hvac, &caller, "2026-06-08T18:00:00Z"))
            .await
            .unwrap()
            .is_err(),
        "16–18:30 and 17–19:30 overlap 18:00"
    );
    assert!(tx
        .book(book(hvac, &caller, "2026-06-08T19:30:00Z"))
        .await
        .unwrap()
        .is_ok());
    // Moving does not collide with itself; moving onto another appointment does.
    assert!(tx
        .move_appointment(barber, first_id, "haircut", ts("2026-06-09T13:45:00Z"))
        .await
        .unwrap()
        .is_ok());
    assert!(tx
        .move_appointment(barber, first_id, "haircut", ts("2026-06-09T14:30:00Z"))
        .await
        .unwrap()
        .is_err());
    tx.commit().await.unwrap();
    let mut tx = store.begin().await.unwrap();
    let list_now = tx
        .appointments(barber, ts("2026-06-09T00:00:00Z"))
        .await
        .unwrap();
    let starts: Vec<Timestamp> = list_now.iter().map(|a| a.start).collect();
    assert_eq!(
        starts,
        [ts("2026-06-09T13:45:00Z"), ts("2026-06-09T14:30:00Z")]
    );
    // Cancelling frees the slot.
    tx.cancel_appointment(first_id, ts("2026-06-09T12:00:00Z"))
        .await
        .unwrap();
    assert!(tx
        .book(book(barber, &caller, "2026-06-09T13:45:00Z"))
        .await
        .unwrap()
        .is_ok());
    assert_eq!(
        tx.appointments(barber, ts("2026-06-09T00:00:00Z"))
            .await
            .unwrap()
            .len(),
        2
    );
}
contract!(bookings_respect_capacity);

fn text(b: &Business, to: &PhoneNumber, body: &str, at: Timestamp) -> Outgoing {
    Outgoing {
        id: Uuid::new_v4(),
        carrier: textback_schemas::Carrier::Twilio,
        business_id: b.id.clone(),
        conversation_id: None,
        from: b.phone.clone(),
        to: to.clone(),
        body: body.into(),
        kind: OutKind::Reply,
        queued_at: at,
        event_received_at: at,
    }
}

async fn conversations_and_inbound<S: Store>(store: S) {
    let (store, list) = seeded(store).await;
    let caller = n("+16175550123");
    let state = State {
        service: Some("haircut".into()),
        unclear: 1,
        ..State::default()
    };
    let conv = Conversation {
        id: Uuid::new_v4(),
        business_id: list[0].id.clone(),
        caller: caller.clone(),
        state: state.clone(),
        started_at: ts("2026-06-09T14:00:00Z"),
        last_activity_at: ts("2026-06-09T14:01:00Z"),
        last_textback_at: Some(ts("2026-06-09T14:00:00Z")),
    };
    let mut tx = store.begin().await.unwrap();
    assert!(tx.conversation("barber", &caller).await.unwrap().is_none());
    tx.save_conversation(&conv).await.unwrap();
    let inbound = Inbound {
        carrier: textback_schemas::Carrier::Twilio,
        business_id: "barber".into(),
        conversation_id: conv.id,
        from: caller.clone(),
        to: list[0].phone.clone(),
        carrier_message_id: "SM1".into(),
        body: "haircut tomorrow".into(),
        at: ts("2026-06-09T14:01:00Z"),
    };
    tx.record_inbound(&inbound).await.unwrap();
    tx.record_inbound(&inbound).await.unwrap(); // the same carrier message twice: stored once, no error
    tx.commit().await.unwrap();
    let mut tx = store.begin().await.unwrap();
    assert_eq!(
        tx.conversation("barber", &caller).await.unwrap(),
        Some(conv)
    );
}
contract!(conversations_and_inbound);

async fn outbox_lifecycle<S: Store>(store: S) {
    let (store, list) = seeded(store).await;
    let b = &list[0];
    let caller = n("+16175550123");
    let t0 = ts("2026-06-09T14:00:00Z");
    let (a, c) = (
        text(b, &caller, "first", t0),
        text(b, &caller, "second", t0),
    );
    let mut tx = store.begin().await.unwrap();
    tx.enqueue(&a).await.unwrap();
    tx.enqueue(&c).await.unwrap();
    tx.commit().await.unwrap();
    let bodies: Vec<String> = store
        .texts_to(&caller)
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.body)
        .collect();
    assert_eq!(bodies, ["first", "second"], "in the order written");
    assert_eq!(store.outbox_depth().await.unwrap(), 2);

    let lease = SignedDuration::from_secs(30);
    let claimed = store.claim_due(t0, 10, lease).await.unwrap();
    assert_eq!(
        claimed
            .iter()
            .map(|c| c.message.body.as_str())
            .collect::<Vec<_>>(),
        ["first", "second"]
    );
    assert!(
        store.claim_due(t0, 10, lease).await.unwrap().is_empty(),
        "leased texts are not claimed twice"
    );
    assert!(claimed.iter().all(|c| !c.maybe_sent));
    // A sender that died: after the lease, the texts are claimed again, marked as maybe sent.
    let later = t0 + SignedDuration::from_secs(31);
    let again = store.claim_due(later, 10, lease).await.unwrap();
    assert_eq!(again.len(), 2);
    assert!(again.iter().all(|c| c.maybe_sent));

    store.mark_sent(a.id, "SMa", later).await.unwrap();
    store
        .mark_retry(c.id, later + SignedDuration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(store.outbox_depth().await.unwrap(), 1);
    assert!(
        store.claim_due(later, 10, lease).await.unwrap().is_empty(),
        "not due before its retry time"
    );
    let retried = store
        .claim_due(later + SignedDuration::from_secs(5), 10, lease)
        .await
        .unwrap();
    assert_eq!((retried.len(), retried[0].attempts), (1, 1));
    store.mark_failed(c.id, "21610", true, later).await.unwrap();
    assert_eq!(store.outbox_depth().await.unwrap(), 0);
    let mut tx = store.begin().await.unwrap();
    assert!(
        tx.opted_out("barber", &caller).await.unwrap(),
        "an unsubscribed recipient is opted out"
    );
    // Delivery reports find the text by the carrier's id.
    tx.update_status("SMa", "delivered", None).await.unwrap();
    tx.commit().await.unwrap();
}
contract!(outbox_lifecycle);

async fn opting_out_drops_pending_texts<S: Store>(store: S) {
    let (store, list) = seeded(store).await;
    let b = &list[0];
    let (caller, other) = (n("+16175550123"), n("+16175550124"));
    let t0 = ts("2026-06-09T14:00:00Z");
    let mut tx = store.begin().await.unwrap();
    tx.enqueue(&text(b, &caller, "text-back", t0))
        .await
        .unwrap();
    tx.enqueue(&text(b, &other, "someone else", t0))
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let mut tx = store.begin().await.unwrap();
    assert!(!tx.opted_out("barber", &caller).await.unwrap());
    tx.set_opted_out("barber", &caller, true, t0).await.unwrap();
    tx.enqueue(&text(b, &caller, "confirmation", t0))
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let to_caller: Vec<String> = store
        .texts_to(&caller)
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.body)
        .collect();
    assert_eq!(
        to_caller,
        ["confirmation"],
        "nothing queued before the opt-out goes out after it"
    );
    assert_eq!(store.outbox_depth().await.unwrap(), 2);
    let mut tx = store.begin().await.unwrap();
    assert!(tx.opted_out("barber", &caller).await.unwrap());
    assert!(
        !tx.opted_out("hvac", &caller).await.unwrap(),
        "opt-outs are per business"
    );
    tx.set_opted_out("barber", &caller, false, t0)
        .await
        .unwrap();
    assert!(!tx.opted_out("barber", &caller).await.unwrap());
}
contract!(opting_out_drops_pending_texts);

#[tokio::test]
async fn memory_store_type_is_usable_directly() {
    // The embedded default needs nothing: a store, a business, a transaction.
    let (store, _) = seeded(MemoryStore::new()).await;
    let mut tx = store.begin().await.unwrap();
    assert!(tx
        .business_by_number(&n("+16175550100"))
        .await
        .unwrap()
        .is_some());
}
