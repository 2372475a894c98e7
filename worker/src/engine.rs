//! One event, one transaction: claim the event id, decide (the text-back policy for a missed call,
//! the assistant for a text), write state, appointments and outgoing texts, commit. A redelivered
//! event finds its id claimed and changes nothing, so Kafka's at-least-once delivery gives each caller
//! exactly one text per decision.

use jiff::{SignedDuration, Timestamp};
use textback_schemas::{Detail, Event, InboundSms};
use uuid::Uuid;

use crate::assistant::{self, Action, Input, State};
use crate::profile::Business;
use crate::store::{Conversation, Inbound, NewAppointment, OutKind, Outgoing, Result, Store, Tx};

use crate::sender::UNSUBSCRIBED;

#[derive(Debug, Clone)]
pub struct Policy {
    /// No second text-back to the same caller within this window: repeat calls must not spam.
    pub cooldown: SignedDuration,
    /// A conversation quiet for longer than this starts afresh on the next missed call.
    pub conversation_idle: SignedDuration,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            cooldown: SignedDuration::from_mins(15),
            conversation_idle: SignedDuration::from_hours(24),
        }
    }
}

/// What handling an event did: for metrics and tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Handled {
    Duplicate,
    UnknownNumber,
    TextBackQueued,
    SuppressedOptedOut,
    SuppressedCooldown,
    Replied {
        texts: usize,
        booked: bool,
        handed_off: bool,
        opted_out: bool,
    },
    Recorded,
}

/// What handling an event did, with what metrics need: the business, and what a booking was worth.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    pub handled: Handled,
    pub business_id: Option<String>,
    pub booked_cents: i64,
}

pub async fn handle<S: Store>(
    store: &S,
    policy: &Policy,
    event: &Event,
    now: Timestamp,
) -> Result<Handled> {
    Ok(handle_reported(store, policy, event, now).await?.handled)
}

pub async fn handle_reported<S: Store>(
    store: &S,
    policy: &Policy,
    event: &Event,
    now: Timestamp,
) -> Result<Report> {
    let mut tx = store.begin().await?;
    if !tx.claim_event(event.id).await? {
        return Ok(Report {
            handled: Handled::Duplicate,
            business_id: None,
            booked_cents: 0,
        });
    }
    let Some(business) = tx.business_by_number(&event.business_number).await? else {
        tx.commit().await?;
        return Ok(Report {
            handled: Handled::UnknownNumber,
            business_id: None,
            booked_cents: 0,
        });
    };
    let mut booked_cents = 0;
    let handled = match &event.detail {
        Detail::MissedCall(_) => missed_call(&mut tx, policy, &business, event, now).await?,
        Detail::InboundSms(sms) if event.caller_number == business.owner_phone => {
            owner_command(&mut tx, &business, event, sms, now).await?
        }
        Detail::InboundSms(sms) => {
            let (handled, cents) = inbound(&mut tx, policy, &business, event, sms, now).await?;
            booked_cents = cents;
            handled
        }
        Detail::CallAnswered(_) => Handled::Recorded,
        Detail::MessageStatus(status) => {
            let state = serde_json::to_value(status.status).ok();
            let state = state
                .as_ref()
                .and_then(|v| v.as_str())
                .unwrap_or("sent")
                .to_string();
            tx.update_status(&status.message_id, &state, status.error_code.as_deref())
                .await?;
            if status
                .error_code
                .as_deref()
                .is_some_and(|c| UNSUBSCRIBED.contains(&c))
            {
                tx.set_opted_out(&business.id, &event.caller_number, true, now)
                    .await?;
            }
            Handled::Recorded
        }
    };
    tx.commit().await?;
    Ok(Report {
        handled,
        business_id: Some(business.id.clone()),
        booked_cents,
    })
}

async fn open_conversation<T: Tx>(
    tx: &mut T,
    policy: &Policy,
    business: &Business,
    event: &Event,
    now: Timestamp,
) -> Result<Conversation> {
    let existing = tx.conversation(&business.id, &event.caller_number).await?;
    Ok(match existing {
        Some(c) if now.duration_since(c.last_activity_at) < policy.conversation_idle => c,
        _ => Conversation {
            id: Uuid::new_v4(),
            business_id: business.id.clone(),
            caller: event.caller_number.clone(),
            state: State::default(),
            started_at: now,
            last_activity_at: now,
            last_textback_at: None,
        },
    })
}

fn outgoing(
    business: &Business,
    conversation: &Conversation,
    event: &Event,
    kind: OutKind,
    body: String,
    now: Timestamp,
) -> Outgoing {
    let body = crate::sms::fit(&body);
    let to = match kind {
        OutKind::OwnerAlert => business.owner_phone.clone(),
        _ => conversation.caller.clone(),
    };
    Outgoing {
        id: Uuid::new_v4(),
        carrier: event.carrier,
        business_id: business.id.clone(),
        conversation_id: Some(conversation.id),
        from: business.phone.clone(),
        to,
        body,
        kind,
        queued_at: now,
        event_received_at: event.received_at,
    }
}

async fn missed_call<T: Tx>(
    tx: &mut T,
    policy: &Policy,
    business: &Business,
    event: &Event,
    now: Timestamp,
) -> Result<Handled> {
    if tx.opted_out(&business.id, &event.caller_number).await? {
        return Ok(Handled::SuppressedOptedOut);
    }
    let mut conversation = open_conversation(tx, policy, business, event, now).await?;
    if conversation
        .last_textback_at
        .is_some_and(|at| now.duration_since(at) < policy.cooldown)
    {
        return Ok(Handled::SuppressedCooldown);
    }
    let local = now.to_zoned(business.tz.clone()).datetime();
    let body = assistant::textback(business, local);
    tx.enqueue(&outgoing(
        business,
        &conversation,
        event,
        OutKind::TextBack,
        body,
        now,
    ))
    .await?;
    conversation.last_textback_at = Some(now);
    conversation.last_activity_at = now;
    tx.save_conversation(&conversation).await?;
    Ok(Handled::TextBackQueued)
}

async fn inbound<T: Tx>(
    tx: &mut T,
    policy: &Policy,
    business: &Business,
    event: &Event,
    sms: &InboundSms,
    now: Timestamp,
) -> Result<(Handled, i64)> {
    let mut conversation = open_conversation(tx, policy, business, event, now).await?;
    let record = Inbound {
        carrier: event.carrier,
        business_id: business.id.clone(),
        conversation_id: conversation.id,
        from: event.caller_number.clone(),
        to: event.business_number.clone(),
        carrier_message_id: sms.message_id.clone(),
        body: sms.body.clone(),
        at: now,
    };
    tx.record_inbound(&record).await?;
    let opted_out = tx.opted_out(&business.id, &event.caller_number).await?;
    // A slot can only be taken between reading the calendar and writing the booking if another
    // transaction got there first; then the assistant decides again on the fresh calendar, and the
    // caller gets the next offers instead of an error.
    let mut attempt = 0;
    let (outcome, booked) = loop {
        attempt += 1;
        let calendar = tx
            .appointments(business, now - SignedDuration::from_hours(24))
            .await?;
        let input = Input {
            business,
            caller: &event.caller_number,
            text: &sms.body,
            now,
            opted_out,
            calendar: &calendar,
        };
        let outcome = assistant::respond(&conversation.state, &input);
        match apply(tx, business, &conversation, &outcome.actions, now).await? {
            Ok(booked) => break (outcome, booked),
            Err(_) if attempt < 3 => continue,
            Err(_) => break (outcome, false),
        }
    };
    let mut texts = 0;
    for body in &outcome.replies {
        tx.enqueue(&outgoing(
            business,
            &conversation,
            event,
            OutKind::Reply,
            body.clone(),
            now,
        ))
        .await?;
        texts += 1;
    }
    for body in &outcome.owner_alerts {
        tx.enqueue(&outgoing(
            business,
            &conversation,
            event,
            OutKind::OwnerAlert,
            body.clone(),
            now,
        ))
        .await?;
    }
    let handed_off = outcome
        .actions
        .iter()
        .any(|a| matches!(a, Action::HandOff { .. }));
    let opted_out_now = outcome.actions.contains(&Action::OptOut);
    conversation.state = outcome.state;
    conversation.last_activity_at = now;
    tx.save_conversation(&conversation).await?;
    let booked_cents: i64 = outcome
        .actions
        .iter()
        .filter_map(|a| match a {
            Action::Book { service_id, .. } => business.service(service_id).map(|s| s.price_cents),
            _ => None,
        })
        .sum();
    Ok((
        Handled::Replied {
            texts,
            booked,
            handed_off,
            opted_out: opted_out_now,
        },
        booked_cents,
    ))
}

/// Writes the assistant's actions. Err when a booking lost its slot to another transaction.
async fn apply<T: Tx>(
    tx: &mut T,
    business: &Business,
    conversation: &Conversation,
    actions: &[Action],
    now: Timestamp,
) -> Result<std::result::Result<bool, crate::store::SlotTaken>> {
    let mut booked = false;
    for action in actions {
        match action {
            Action::Book { service_id, start } => {
                let new = NewAppointment {
                    id: Uuid::new_v4(),
                    business,
                    service_id,
                    caller: &conversation.caller,
                    start: *start,
                    conversation_id: conversation.id,
                };
                if let Err(taken) = tx.book(new).await? {
                    return Ok(Err(taken));
                }
                booked = true;
            }
            Action::Move {
                appointment,
                service_id,
                start,
            } => {
                if let Err(taken) = tx
                    .move_appointment(business, *appointment, service_id, *start)
                    .await?
                {
                    return Ok(Err(taken));
                }
                booked = true;
            }
            Action::Cancel { appointment } => tx.cancel_appointment(*appointment, now).await?,
            Action::OptOut => {
                tx.set_opted_out(&business.id, &conversation.caller, true, now)
                    .await?
            }
            Action::OptIn => {
                tx.set_opted_out(&business.id, &conversation.caller, false, now)
                    .await?
            }
            Action::HandOff { .. } => {}
        }
    }
    Ok(Ok(booked))
}

/// A text from the owner's phone to the business number: `RESUME +16175550123` gives that caller's
/// conversation back to the assistant. Anything else from the owner is recorded and answered with
/// how to use it.
async fn owner_command<T: Tx>(
    tx: &mut T,
    business: &Business,
    event: &Event,
    sms: &InboundSms,
    now: Timestamp,
) -> Result<Handled> {
    let mut words = sms.body.split_whitespace();
    let command = words.next().unwrap_or("").to_ascii_uppercase();
    let target = words
        .next()
        .and_then(|n| textback_schemas::PhoneNumber::parse(n).ok());
    let reply = match (command.as_str(), target) {
        ("RESUME", Some(caller)) => match tx.conversation(&business.id, &caller).await? {
            Some(mut c) if c.state.handed_off => {
                c.state.handed_off = false;
                c.state.unclear = 0;
                tx.save_conversation(&c).await?;
                format!("textback: the assistant is back on for {caller}.")
            }
            _ => format!("textback: no handed-off conversation with {caller}."),
        },
        _ => "textback: to give a conversation back to the assistant, text RESUME and the caller's number.".to_string(),
    };
    let owner = Conversation {
        id: uuid::Uuid::nil(),
        business_id: business.id.clone(),
        caller: business.owner_phone.clone(),
        state: State::default(),
        started_at: now,
        last_activity_at: now,
        last_textback_at: None,
    };
    tx.enqueue(&outgoing(
        business,
        &owner,
        event,
        OutKind::OwnerAlert,
        reply,
        now,
    ))
    .await?;
    Ok(Handled::Replied {
        texts: 1,
        booked: false,
        handed_off: false,
        opted_out: false,
    })
}
