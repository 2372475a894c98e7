//! `textback eval`: runs a corpus of scripted conversations through the real engine and assistant and
//! scores the outcomes, as the corpus README's harness describes:
//!
//! 1. load the businesses; set the clock to `now`; add `calendar` and `caller_appointments`;
//! 2. a call from `caller` goes unanswered at `now`: the text-back goes out;
//! 3. before caller turn i the clock moves to `now + (i+1)` minutes; the turn arrives as a text;
//! 4. check `expect` against what was stored and sent.
//!
//! Nothing here knows any dialog or phrasing: it works on any corpus in this format.

use std::path::Path;

use jiff::{Timestamp, ToSpan};
use serde::Deserialize;
use textback_schemas::{Call, Carrier, Detail, Event, InboundSms, PhoneNumber};
use uuid::Uuid;

use crate::engine::{self, Policy};
use crate::profile::{self, Business};
use crate::store::{NewAppointment, Store, Tx};

#[derive(Debug, Clone, Deserialize)]
pub struct Dialog {
    pub id: String,
    pub business: String,
    pub caller: String,
    pub now: String,
    #[serde(default)]
    pub calendar: Vec<Entry>,
    #[serde(default)]
    pub caller_appointments: Vec<Entry>,
    pub turns: Vec<String>,
    pub expect: Expect,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Entry {
    pub service: String,
    pub start: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct Expect {
    pub booked: Option<Entry>,
    #[serde(default)]
    pub none: bool,
    #[serde(default)]
    pub handoff: bool,
    pub opted_out: Option<bool>,
    #[serde(default)]
    pub replies_contain: Vec<(usize, String)>,
}

#[derive(Debug, Clone)]
pub struct DialogResult {
    pub id: String,
    /// What differed from the expectation; empty when the dialog passed.
    pub failures: Vec<String>,
    pub wrong_booking: bool,
    pub booking_dialog: bool,
    pub turns: usize,
    /// Replies to each turn (index 0: the text-back).
    pub transcript: Vec<(String, Vec<String>)>,
}

impl DialogResult {
    pub fn passed(&self) -> bool {
        self.failures.is_empty()
    }
}

#[derive(Debug, Clone)]
pub struct Report {
    pub results: Vec<DialogResult>,
}

impl Report {
    pub fn passed(&self) -> usize {
        self.results.iter().filter(|r| r.passed()).count()
    }

    pub fn failed(&self) -> usize {
        self.results.len() - self.passed()
    }

    pub fn wrong_bookings(&self) -> usize {
        self.results.iter().filter(|r| r.wrong_booking).count()
    }

    /// Mean caller turns over the passing dialogs that end in a booking.
    pub fn mean_turns(&self) -> f64 {
        let passing: Vec<usize> = self
            .results
            .iter()
            .filter(|r| r.passed() && r.booking_dialog)
            .map(|r| r.turns)
            .collect();
        if passing.is_empty() {
            return 0.0;
        }
        passing.iter().sum::<usize>() as f64 / passing.len() as f64
    }

    /// The lines `textback eval` prints: one per failing dialog, then the summary.
    pub fn lines(&self) -> Vec<String> {
        let mut out: Vec<String> = self
            .results
            .iter()
            .filter(|r| !r.passed())
            .map(|r| format!("FAIL {}: {}", r.id, r.failures.join("; ")))
            .collect();
        out.push(format!(
            "{} passed, {} failed",
            self.passed(),
            self.failed()
        ));
        out.push(format!("wrong bookings: {}", self.wrong_bookings()));
        out.push(format!("mean caller turns: {:.2}", self.mean_turns()));
        out
    }
}

#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{0}")]
    Corpus(String),
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
}

pub struct Corpus {
    pub businesses: Vec<Business>,
    pub dialogs: Vec<Dialog>,
}

impl Corpus {
    pub fn load(dir: &Path) -> Result<Self, EvalError> {
        let read = |name: &str| {
            let path = dir.join(name);
            std::fs::read_to_string(&path).map_err(|source| EvalError::Read {
                path: path.display().to_string(),
                source,
            })
        };
        let businesses =
            profile::load_file(&read("businesses.json")?).map_err(EvalError::Corpus)?;
        let dialogs = read("dialogs.jsonl")?
            .lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty())
            .map(|(n, l)| {
                serde_json::from_str(l)
                    .map_err(|e| EvalError::Corpus(format!("dialogs.jsonl line {}: {e}", n + 1)))
            })
            .collect::<Result<_, _>>()?;
        Ok(Corpus {
            businesses,
            dialogs,
        })
    }
}

fn timestamp(s: &str, what: &str) -> Result<Timestamp, EvalError> {
    s.parse()
        .map_err(|e| EvalError::Corpus(format!("{what}: bad time {s:?}: {e}")))
}

fn number(s: &str, what: &str) -> Result<PhoneNumber, EvalError> {
    PhoneNumber::parse(s).map_err(|e| EvalError::Corpus(format!("{what}: {e}")))
}

/// Delivers every queued text at once, as the sender would between two caller texts.
async fn deliver_all<S: Store>(store: &S, now: Timestamp) -> Result<(), EvalError> {
    for claimed in store
        .claim_due(now, usize::MAX >> 1, jiff::SignedDuration::from_secs(60))
        .await?
    {
        let id = claimed.message.id;
        store.mark_sent(id, &format!("eval-{id}"), now).await?;
    }
    Ok(())
}

/// Runs one dialog on `store`, which should be fresh.
pub async fn run_dialog<S: Store>(
    store: &S,
    corpus: &Corpus,
    dialog: &Dialog,
) -> Result<DialogResult, EvalError> {
    let business = corpus
        .businesses
        .iter()
        .find(|b| b.id == dialog.business)
        .ok_or_else(|| {
            EvalError::Corpus(format!(
                "{}: unknown business {:?}",
                dialog.id, dialog.business
            ))
        })?;
    for b in &corpus.businesses {
        store.upsert_business(b).await?;
    }
    let now = timestamp(&dialog.now, &dialog.id)?;
    let caller = number(&dialog.caller, &dialog.id)?;
    let policy = Policy::default();

    // 1. The calendar: other customers' appointments, then the caller's own.
    let mut tx = store.begin().await?;
    let others = dialog
        .calendar
        .iter()
        .enumerate()
        .map(|(i, e)| (format!("+1555{:07}", 1_000_000 + i), e));
    let mine = dialog
        .caller_appointments
        .iter()
        .map(|e| (dialog.caller.clone(), e));
    for (who, entry) in others.chain(mine) {
        let who = number(&who, &dialog.id)?;
        let start = timestamp(&entry.start, &dialog.id)?;
        let new = NewAppointment {
            id: Uuid::new_v4(),
            business,
            service_id: &entry.service,
            caller: &who,
            start,
            conversation_id: Uuid::nil(),
        };
        if tx.book(new).await?.is_err() {
            return Err(EvalError::Corpus(format!(
                "{}: calendar entry at {} exceeds capacity",
                dialog.id, entry.start
            )));
        }
    }
    tx.commit().await?;

    let event = |i: usize, detail: Detail, at: Timestamp| {
        let kind = detail.kind();
        Event {
            id: Event::derive_id(Carrier::Twilio, kind, &format!("{}#{i}", dialog.id), ""),
            carrier: Carrier::Twilio,
            account: "eval".into(),
            business_number: business.phone.clone(),
            caller_number: caller.clone(),
            occurred_at: at,
            received_at: at,
            detail,
        }
    };
    let mut transcript: Vec<(String, Vec<String>)> = Vec::new();
    let mut seen = 0;
    let mut opted_out_at: Option<usize> = None;

    // 2. The missed call.
    let call = Call {
        call_id: format!("eval-{}", dialog.id),
        call_status: "no-answer".into(),
        duration_secs: 0,
    };
    engine::handle(
        store,
        &policy,
        &event(0, Detail::MissedCall(call), now),
        now,
    )
    .await?;
    deliver_all(store, now).await?;
    let texts = store.texts_to(&caller).await?;
    transcript.push((
        "(missed call)".to_string(),
        texts[seen..].iter().map(|m| m.body.clone()).collect(),
    ));
    seen = texts.len();

    // 3. The caller's turns.
    let mut clock = now;
    for (i, turn) in dialog.turns.iter().enumerate() {
        clock = now + ((i as i64) + 1).minutes();
        let sms = InboundSms {
            message_id: format!("eval-{}-{i}", dialog.id),
            body: turn.clone(),
            media_count: 0,
        };
        let handled = engine::handle(
            store,
            &policy,
            &event(i + 1, Detail::InboundSms(sms), clock),
            clock,
        )
        .await?;
        deliver_all(store, clock).await?;
        let texts = store.texts_to(&caller).await?;
        transcript.push((
            turn.clone(),
            texts[seen..].iter().map(|m| m.body.clone()).collect(),
        ));
        seen = texts.len();
        if matches!(
            handled,
            engine::Handled::Replied {
                opted_out: true,
                ..
            }
        ) && opted_out_at.is_none()
        {
            opted_out_at = Some(seen);
        }
    }

    // 4. Check.
    let mut tx = store.begin().await?;
    let upcoming: Vec<_> = tx
        .appointments(business, clock)
        .await?
        .into_iter()
        .filter(|a| a.caller == caller && a.start >= clock)
        .collect();
    let opted_out = tx.opted_out(&business.id, &caller).await?;
    let conversation = tx.conversation(&business.id, &caller).await?;
    drop(tx);
    let owner_alerted = !store.texts_to(&business.owner_phone).await?.is_empty();
    let texts = store.texts_to(&caller).await?;

    let e = &dialog.expect;
    let mut failures = Vec::new();
    let show = |list: &[crate::assistant::Appointment]| {
        let items: Vec<String> = list
            .iter()
            .map(|a| {
                format!(
                    "{} at {}",
                    a.service_id,
                    a.start
                        .to_zoned(business.tz.clone())
                        .strftime("%Y-%m-%dT%H:%M")
                )
            })
            .collect();
        if items.is_empty() {
            "no appointment".to_string()
        } else {
            items.join(", ")
        }
    };
    let mut wrong_booking = false;
    if let Some(want) = &e.booked {
        let start = timestamp(&want.start, &dialog.id)?;
        let ok = upcoming.len() == 1
            && upcoming[0].service_id == want.service
            && upcoming[0].start == start;
        if !ok {
            failures.push(format!(
                "expected {} at {}, got {}",
                want.service,
                want.start,
                show(&upcoming)
            ));
            wrong_booking = upcoming
                .iter()
                .any(|a| a.service_id != want.service || a.start != start);
        }
    } else if !upcoming.is_empty() {
        wrong_booking = true;
    }
    if e.none && !upcoming.is_empty() {
        failures.push(format!("expected no appointment, got {}", show(&upcoming)));
    }
    if e.handoff {
        let handed_off = conversation.as_ref().is_some_and(|c| c.state.handed_off);
        if !(handed_off && owner_alerted) {
            failures.push(format!(
                "expected a hand-off (handed off: {handed_off}, owner alerted: {owner_alerted})"
            ));
        }
    }
    if let Some(want) = e.opted_out {
        if opted_out != want {
            failures.push(format!("expected opted_out {want}, got {opted_out}"));
        }
        if want {
            if let Some(at) = opted_out_at {
                if texts.len() > at {
                    failures.push(format!(
                        "{} text(s) sent after the opt-out confirmation",
                        texts.len() - at
                    ));
                }
            }
        }
    }
    for (i, needle) in &e.replies_contain {
        let replies = transcript
            .get(i + 1)
            .map(|(_, r)| r.join(" "))
            .unwrap_or_default();
        if !replies.to_lowercase().contains(&needle.to_lowercase()) {
            failures.push(format!("reply to turn {i} lacks {needle:?}: {replies:?}"));
        }
    }
    Ok(DialogResult {
        id: dialog.id.clone(),
        failures,
        wrong_booking,
        booking_dialog: e.booked.is_some(),
        turns: dialog.turns.len(),
        transcript,
    })
}

/// Runs every dialog, each on a fresh store from `new_store`.
pub async fn run<S, F, Fut>(corpus: &Corpus, mut new_store: F) -> Result<Report, EvalError>
where
    S: Store,
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<S, EvalError>>,
{
    let mut results = Vec::with_capacity(corpus.dialogs.len());
    for dialog in &corpus.dialogs {
        results.push(run_dialog(&new_store().await?, corpus, dialog).await?);
    }
    Ok(Report { results })
}
