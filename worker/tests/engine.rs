//! The engine's policies, end to end on the in-memory store: the text-back policy (cooldown, opening
//! hours, unknown numbers), hand-offs that keep the assistant quiet until the owner resumes them.

use jiff::{SignedDuration, Timestamp};
use textback_schemas::{Call, Carrier, Detail, Event, InboundSms, PhoneNumber};
use textback_worker::engine::{handle, Handled, Policy};
use textback_worker::profile::load_file;
use textback_worker::store::memory::MemoryStore;
use textback_worker::store::Store;

const BUSINESS: &str = r#"{"businesses": [{"id": "barber", "name": "Fade & Co", "phone_number": "+16175550100",
  "owner_phone": "+16175550199", "timezone": "America/New_York", "address": "41 Elm St",
  "hours": {"tue": [["09:00", "18:00"]], "wed": [["09:00", "18:00"]], "thu": [["09:00", "18:00"]]},
  "booking": {"slot_interval_min": 15, "min_notice_min": 60, "horizon_days": 30, "capacity": 1},
  "services": [{"id": "haircut", "name": "Haircut", "duration_min": 30, "price_cents": 3500}]}]}"#;

const CALLER: &str = "+16175550123";
const OWNER: &str = "+16175550199";

fn n(s: &str) -> PhoneNumber {
    PhoneNumber::parse(s).unwrap()
}

fn event(id: &str, from: &str, to: &str, detail: Detail, at: Timestamp) -> Event {
    Event {
        id: Event::derive_id(Carrier::Twilio, detail.kind(), id, ""),
        carrier: Carrier::Twilio,
        account: "AC".into(),
        business_number: n(to),
        caller_number: n(from),
        occurred_at: at,
        received_at: at,
        detail,
    }
}

fn call(id: &str, at: Timestamp) -> Event {
    let detail = Detail::MissedCall(Call {
        call_id: id.into(),
        call_status: "no-answer".into(),
        duration_secs: 0,
    });
    event(id, CALLER, "+16175550100", detail, at)
}

fn sms(id: &str, from: &str, body: &str, at: Timestamp) -> Event {
    let detail = Detail::InboundSms(InboundSms {
        message_id: id.into(),
        body: body.into(),
        media_count: 0,
    });
    event(id, from, "+16175550100", detail, at)
}

async fn store() -> MemoryStore {
    let store = MemoryStore::new();
    store
        .upsert_business(&load_file(BUSINESS).unwrap()[0])
        .await
        .unwrap();
    store
}

async fn texts(store: &MemoryStore, to: &str) -> Vec<String> {
    store
        .texts_to(&n(to))
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.body)
        .collect()
}

/// Tuesday June 9 2026, 10:00 in Boston.
fn open() -> Timestamp {
    "2026-06-09T14:00:00Z".parse().unwrap()
}

#[tokio::test]
async fn cooldown_then_texting_again() {
    let s = store().await;
    let p = Policy::default();
    assert_eq!(
        handle(&s, &p, &call("CA1", open()), open()).await.unwrap(),
        Handled::TextBackQueued
    );
    let later = open() + SignedDuration::from_mins(10);
    assert_eq!(
        handle(&s, &p, &call("CA2", later), later).await.unwrap(),
        Handled::SuppressedCooldown
    );
    let after = open() + SignedDuration::from_mins(16);
    assert_eq!(
        handle(&s, &p, &call("CA3", after), after).await.unwrap(),
        Handled::TextBackQueued
    );
    // The same event twice is a no-op.
    assert_eq!(
        handle(&s, &p, &call("CA3", after), after).await.unwrap(),
        Handled::Duplicate
    );
    assert_eq!(texts(&s, CALLER).await.len(), 2);
}

#[tokio::test]
async fn after_hours_the_text_back_says_when_we_open() {
    let s = store().await;
    // Tuesday 20:00 in Boston: closed; opens Wednesday 9am.
    let evening: Timestamp = "2026-06-10T00:00:00Z".parse().unwrap();
    handle(&s, &Policy::default(), &call("CA1", evening), evening)
        .await
        .unwrap();
    let t = texts(&s, CALLER).await;
    assert!(
        t[0].contains("closed right now and open tomorrow at 9am"),
        "{}",
        t[0]
    );
    assert!(t[0].ends_with("Reply STOP to opt out."), "{}", t[0]);
    // During hours, no such line.
    let s = store().await;
    handle(&s, &Policy::default(), &call("CA1", open()), open())
        .await
        .unwrap();
    assert!(!texts(&s, CALLER).await[0].contains("closed"));
}

#[tokio::test]
async fn unknown_business_numbers_change_nothing() {
    let s = store().await;
    let mut e = call("CA1", open());
    e.business_number = n("+19995550000");
    assert_eq!(
        handle(&s, &Policy::default(), &e, open()).await.unwrap(),
        Handled::UnknownNumber
    );
    assert!(texts(&s, CALLER).await.is_empty());
    assert_eq!(s.outbox_depth().await.unwrap(), 0);
}

#[tokio::test]
async fn a_hand_off_is_quiet_until_the_owner_resumes_it() {
    let s = store().await;
    let p = Policy::default();
    let at = |m: i64| open() + SignedDuration::from_mins(m);
    handle(&s, &p, &call("CA1", at(0)), at(0)).await.unwrap();
    handle(
        &s,
        &p,
        &sms("SM1", CALLER, "can someone call me back", at(1)),
        at(1),
    )
    .await
    .unwrap();
    let alerts = texts(&s, OWNER).await;
    assert_eq!(alerts.len(), 1);
    assert!(
        alerts[0].contains(CALLER),
        "the owner needs the number to call back: {}",
        alerts[0]
    );
    // Quiet while handed off.
    handle(&s, &p, &sms("SM2", CALLER, "hello?", at(2)), at(2))
        .await
        .unwrap();
    assert_eq!(
        texts(&s, CALLER).await.len(),
        2,
        "text-back and the hand-off reply only"
    );
    // The owner resumes it by text.
    handle(
        &s,
        &p,
        &sms("SM3", OWNER, &format!("resume {CALLER}"), at(3)),
        at(3),
    )
    .await
    .unwrap();
    assert!(
        texts(&s, OWNER).await[1].contains("back on"),
        "{:?}",
        texts(&s, OWNER).await
    );
    handle(
        &s,
        &p,
        &sms("SM4", CALLER, "haircut tomorrow at 2", at(4)),
        at(4),
    )
    .await
    .unwrap();
    let t = texts(&s, CALLER).await;
    assert!(t.last().unwrap().contains("You're booked"), "{t:?}");
    // Resuming again: nothing to resume.
    assert!(!s.resume("barber", &n(CALLER)).await.unwrap());
}

#[tokio::test]
async fn every_text_fits_two_segments() {
    let s = store().await;
    let p = Policy::default();
    handle(&s, &p, &call("CA1", open()), open()).await.unwrap();
    for (i, body) in [
        "hi",
        "how much is a haircut, what are your hours and where are you?",
        "asdf",
        "qwerty",
    ]
    .iter()
    .enumerate()
    {
        let at = open() + SignedDuration::from_mins(i as i64 + 1);
        handle(&s, &p, &sms(&format!("SM{i}"), CALLER, body, at), at)
            .await
            .unwrap();
    }
    for t in texts(&s, CALLER)
        .await
        .iter()
        .chain(texts(&s, OWNER).await.iter())
    {
        let (gsm, segments) = textback_worker::sms::segments(t);
        assert!(gsm && segments <= 2, "{segments} segments, gsm {gsm}: {t}");
    }
}
