//! The whole pipeline on real Kafka and PostgreSQL: a missed call becomes exactly one text at the
//! carrier, whatever the carrier retries, the caller repeats or the carrier API answers.

mod common;

use common::stack::{Stack, OWNER};
use common::BUSINESS;
use textback_worker::simulator::Fault;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missed_call_gets_exactly_one_text_whatever_is_repeated() {
    let stack = Stack::start("one_text").await;
    let caller = "+16175550123";
    // The same webhook five times (carrier retries), then two more calls within the cooldown.
    for _ in 0..5 {
        assert_eq!(stack.missed_call("CA-1", caller).await, 200);
    }
    assert_eq!(stack.missed_call("CA-2", caller).await, 200);
    assert_eq!(stack.missed_call("CA-3", caller).await, 200);
    // The gateway drops four retries; the worker sees three calls and texts once.
    stack.settle(3).await;
    let texts = stack.texts_to(caller);
    assert_eq!(texts.len(), 1, "{texts:?}");
    assert!(texts[0].contains("Fade & Co Barbershop"), "{}", texts[0]);
    assert!(texts[0].contains("Reply STOP to opt out"), "{}", texts[0]);
    let received = stack.sim.received();
    assert_eq!(
        received[0].from, BUSINESS,
        "sent from the business's number"
    );
    assert_eq!(
        stack
            .counts
            .suppressed
            .load(std::sync::atomic::Ordering::SeqCst),
        2
    );
    // Another caller is not affected by the first one's cooldown.
    stack.missed_call("CA-4", "+16175550124").await;
    stack.settle(4).await;
    assert_eq!(stack.texts_to("+16175550124").len(), 1);
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_silences_everything_until_start() {
    let stack = Stack::start("stop_start").await;
    let caller = "+16175550130";
    stack.missed_call("CA-10", caller).await;
    stack.settle(1).await;
    stack.text("SM-10", caller, "STOP").await;
    stack.settle(2).await;
    // After the confirmation: another call and another text get nothing.
    stack.missed_call("CA-11", caller).await;
    stack.text("SM-11", caller, "haircut tomorrow at 2").await;
    stack.settle(4).await;
    let texts = stack.texts_to(caller);
    assert_eq!(texts.len(), 2, "{texts:?}");
    assert!(texts[1].contains("unsubscribed"), "{}", texts[1]);
    // START restores texting.
    stack.text("SM-12", caller, "START").await;
    stack.text("SM-13", caller, "haircut tomorrow at 2").await;
    stack.settle(6).await;
    let texts = stack.texts_to(caller);
    assert_eq!(texts.len(), 4, "{texts:?}");
    assert!(texts[2].contains("opted back in"), "{}", texts[2]);
    assert!(texts[3].contains("You're booked"), "{}", texts[3]);
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn carrier_errors_are_retried_or_recorded() {
    let stack = Stack::start("carrier_errors").await;
    // Two 500s and two 429s, then success: one text, five requests.
    stack.sim.fail_next(2, Fault::ServerError);
    stack.sim.fail_next(2, Fault::RateLimited);
    let caller = "+16175550140";
    stack.missed_call("CA-20", caller).await;
    stack.settle(1).await;
    assert_eq!(stack.texts_to(caller).len(), 1);
    assert_eq!(stack.sim.requests(), 5);

    // A permanent error (invalid number) is recorded and not retried.
    stack.sim.fail_next(1, Fault::Permanent("21211".into()));
    stack.missed_call("CA-21", "+16175550141").await;
    stack.settle(2).await;
    assert_eq!(
        stack.sim.requests(),
        6,
        "a permanent error must not be retried"
    );
    assert!(stack.texts_to("+16175550141").is_empty());
    let failed = stack
        .scalar_i64("SELECT count(*) FROM messages WHERE to_number = '+16175550141' AND status = 'failed' AND error_code = '21211'")
        .await;
    assert_eq!(failed, 1);

    // "Unsubscribed recipient" also opts the caller out: the next call gets nothing.
    stack.sim.fail_next(1, Fault::Permanent("21610".into()));
    stack.missed_call("CA-22", "+16175550142").await;
    stack.settle(3).await;
    let opted_out = stack
        .scalar_i64("SELECT count(*) FROM opt_outs WHERE caller = '+16175550142' AND opted_out")
        .await;
    assert_eq!(opted_out, 1);
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_conversation_ends_in_one_booking_and_an_owner_alert() {
    let stack = Stack::start("booking").await;
    let caller = "+16175550150";
    stack.missed_call("CA-30", caller).await;
    stack.settle(1).await;
    stack
        .text("SM-30", caller, "Hi! can I get a haircut tomorrow at 2?")
        .await;
    stack.settle(2).await;
    let texts = stack.texts_to(caller);
    assert_eq!(texts.len(), 2, "{texts:?}");
    assert!(
        texts[1].contains("You're booked: Haircut")
            && texts[1].contains("2pm")
            && texts[1].contains("Fade & Co"),
        "{}",
        texts[1]
    );
    let alerts = stack.texts_to(OWNER);
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    assert!(alerts[0].contains("New booking: Haircut"), "{}", alerts[0]);
    let booked = stack
        .scalar_i64(&format!(
            "SELECT count(*) FROM appointments WHERE caller = '{caller}' AND status = 'booked'"
        ))
        .await;
    assert_eq!(booked, 1);
    stack.stop().await;
}
