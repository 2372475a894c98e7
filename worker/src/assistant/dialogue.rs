//! The conversation: `(state, business, calendar, caller text, now) → (state, replies, actions)`.
//! No I/O and no clock of its own: the caller of `respond` owns both.
//!
//! Order of precedence, as the corpus README sets it: opt-out state and keywords, HELP, hand-offs
//! (urgent words, asking for a person), polite closes, cancellations; then booking. Booking keeps what
//! the caller said before (service, day, part of day) until they change it, books the moment a service
//! and a free start are both settled, offers up to three starts otherwise, and moves the caller's
//! existing appointment rather than ever leaving them with two.

use jiff::civil::{Date, DateTime, Time};
use jiff::{Timestamp, ToSpan};
use serde::{Deserialize, Serialize};
use textback_schemas::PhoneNumber;
use uuid::Uuid;

use super::parse::{clock, next_weekday, parse, DaySpec, Parsed, Pick, Window};
use super::reply;
use super::slots::{check, free_starts, nearest, spread, Busy};
use crate::profile::{Business, Service};

/// What the assistant remembers between texts; stored with the conversation.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct State {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub day: Option<Day>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window: Option<Window>,
    /// A start time named before the service was known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time: Option<Time>,
    /// The offer list of the last reply; a number in the next text picks from it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub offers: Vec<DateTime>,
    /// Texts in a row that could not be acted on.
    #[serde(default)]
    pub unclear: u8,
    /// Handed to a person: the assistant stays quiet until the owner resumes it.
    #[serde(default)]
    pub handed_off: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Day {
    Date(Date),
    Range(Date, Date),
}

/// An appointment as the assistant sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct Appointment {
    pub id: Uuid,
    pub service_id: String,
    pub start: Timestamp,
    pub caller: PhoneNumber,
}

pub struct Input<'a> {
    pub business: &'a Business,
    pub caller: &'a PhoneNumber,
    pub text: &'a str,
    pub now: Timestamp,
    pub opted_out: bool,
    /// The business's appointments from a day ago on, the caller's own included.
    pub calendar: &'a [Appointment],
}

#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    Book {
        service_id: String,
        start: Timestamp,
    },
    Move {
        appointment: Uuid,
        service_id: String,
        start: Timestamp,
    },
    Cancel {
        appointment: Uuid,
    },
    HandOff {
        reason: HandOff,
    },
    OptOut,
    OptIn,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HandOff {
    Urgent,
    AskedForPerson,
    NotUnderstood,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Outcome {
    pub state: State,
    /// Texts to the caller, in order.
    pub replies: Vec<String>,
    pub actions: Vec<Action>,
    /// Texts to the owner's phone.
    pub owner_alerts: Vec<String>,
}

impl Outcome {
    fn say(&mut self, text: impl Into<String>) {
        self.replies.push(text.into());
    }
}

/// Everything the dialogue needs while deciding one text.
struct Turn<'a> {
    b: &'a Business,
    input: &'a Input<'a>,
    now: DateTime,
    p: Parsed,
    /// The caller's next upcoming appointment: any booking moves it.
    mine: Option<&'a Appointment>,
    /// The offer list the caller is answering, if the last reply had one.
    offers: Vec<DateTime>,
    o: Outcome,
}

pub fn respond(state: &State, input: &Input<'_>) -> Outcome {
    let b = input.business;
    let now = input.now.to_zoned(b.tz.clone()).datetime();
    let p = parse(input.text, b, now.date());
    let mut o = Outcome {
        state: state.clone(),
        ..Outcome::default()
    };
    let offers = std::mem::take(&mut o.state.offers);
    let mine = input
        .calendar
        .iter()
        .filter(|a| a.caller == *input.caller && a.start >= input.now)
        .min_by_key(|a| a.start);
    Turn {
        b,
        input,
        now,
        p,
        mine,
        offers,
        o,
    }
    .run()
}

impl Turn<'_> {
    fn run(mut self) -> Outcome {
        let b = self.b;
        let i = self.p.intents.clone();
        if self.input.opted_out {
            if i.opt_in {
                self.o.actions.push(Action::OptIn);
                self.o.say(format!(
                    "You're opted back in to texts from {}. Reply STOP to opt out.",
                    b.name
                ));
            }
            return self.o;
        }
        if i.opt_out {
            self.o.actions.push(Action::OptOut);
            self.o.state = State::default();
            self.o.say(format!("You're unsubscribed from {} texts and won't get any more. Reply START to opt back in.", b.name));
            return self.o;
        }
        if i.help {
            self.o.state.offers = std::mem::take(&mut self.offers);
            self.o.say(format!(
                "{}: reply here to book an appointment, or call us at {}. Reply STOP to opt out.",
                b.name, b.phone
            ));
            return self.o;
        }
        if self.o.state.handed_off {
            return self.o;
        }
        if i.urgent {
            return self.hand_off(HandOff::Urgent);
        }
        if i.human {
            return self.hand_off(HandOff::AskedForPerson);
        }
        let booking_info = self.booking_info();
        if i.close && !booking_info {
            self.o.state = State::default();
            self.o
                .say("No problem, thanks for letting us know. Have a great day!");
            return self.o;
        }
        if i.cancel {
            return self.cancel();
        }
        if !self.p.understood() {
            self.o.state.unclear += 1;
            if self.o.state.unclear >= 2 {
                return self.hand_off(HandOff::NotUnderstood);
            }
            self.o.state.offers = std::mem::take(&mut self.offers);
            let example = &b.services[0].name;
            self.o.say(format!("Sorry, I didn't catch that. Tell me what you need and when, like \"{example} tomorrow at 2\"."));
            return self.o;
        }
        self.o.state.unclear = 0;
        self.book()
    }

    fn booking_info(&self) -> bool {
        let p = &self.p;
        p.service.is_some()
            || p.day.is_some()
            || p.time.is_some()
            || p.window.is_some()
            || p.earliest
            || p.pick.is_some()
            || p.bare_number.is_some()
            || p.ordinal_date.is_some()
            || (p.intents.change && self.mine.is_some())
    }

    fn hand_off(mut self, reason: HandOff) -> Outcome {
        let b = self.b;
        self.o.state = State {
            handed_off: true,
            ..State::default()
        };
        self.o.actions.push(Action::HandOff { reason });
        let (reply, why) = match reason {
            HandOff::Urgent => (
                format!("That sounds urgent. I'm alerting {} now and someone will call you right away. If anyone is in danger, call 911.", b.name),
                "urgent",
            ),
            HandOff::AskedForPerson => (format!("Sure, I've asked someone from {} to call you back shortly.", b.name), "asked for a person"),
            HandOff::NotUnderstood => (
                format!("Sorry, I'm having trouble understanding. I've asked someone from {} to call you back.", b.name),
                "assistant could not help",
            ),
        };
        self.o.say(reply);
        self.o.owner_alerts.push(format!(
            "textback: please call {} back ({why}). Their text: \"{}\"",
            self.input.caller,
            self.input.text.chars().take(120).collect::<String>()
        ));
        self.o
    }

    fn cancel(mut self) -> Outcome {
        let b = self.b;
        match self.mine {
            Some(a) => {
                let service = b
                    .service(&a.service_id)
                    .map_or(a.service_id.as_str(), |s| s.name.as_str());
                let at = a.start.to_zoned(b.tz.clone()).datetime();
                let when = format!("{} at {}", reply::day(at.date()), reply::time(at.time()));
                self.o.actions.push(Action::Cancel { appointment: a.id });
                self.o.state = State::default();
                self.o.say(format!(
                    "Your {service} on {when} is cancelled. Text us anytime to book again."
                ));
                self.o.owner_alerts.push(format!(
                    "textback: {service} on {when} cancelled by {}.",
                    self.input.caller
                ));
            }
            None => {
                self.o
                    .say("I don't see an upcoming appointment for this number. Want to book one?");
            }
        }
        self.o
    }

    /// Resolves a bare weekday: inside a stated week, that week's; otherwise the first after today.
    fn resolve_day(&self, d: DaySpec) -> Day {
        match d {
            DaySpec::Date(x) => Day::Date(x),
            DaySpec::Range(a, z) => Day::Range(a, z),
            DaySpec::Weekday(wd) => {
                if let Some(Day::Range(a, z)) = self.o.state.day {
                    let mut d = a;
                    while d <= z {
                        if d.weekday() == wd {
                            return Day::Date(d);
                        }
                        d = match d.tomorrow() {
                            Ok(n) => n,
                            Err(_) => break,
                        };
                    }
                }
                Day::Date(next_weekday(self.now.date(), wd))
            }
        }
    }

    fn pick(&self) -> Option<DateTime> {
        let offers = &self.offers;
        if offers.is_empty() || self.p.time.is_some() {
            return None;
        }
        let nth = |n: usize| (1..=offers.len()).contains(&n).then(|| offers[n - 1]);
        match self.p.pick {
            Some(Pick::Nth(n)) => return nth(n),
            Some(Pick::Last) => return offers.last().copied(),
            None => {}
        }
        if let Some(n) = self.p.bare_number {
            if let Some(t) = nth(n as usize) {
                return Some(t);
            }
        }
        self.p.ordinal_date.and_then(|(n, _)| nth(n as usize))
    }

    fn book(mut self) -> Outcome {
        let b = self.b;
        let picked = self.pick();
        let mut time = self.p.time;
        let mut day = self.p.day.map(|d| self.resolve_day(d));
        if picked.is_none() {
            if let Some(n) = self.p.bare_number {
                time = time.or_else(|| clock(n, 0, None));
            }
            if let Some((_, date)) = self.p.ordinal_date {
                // A date is more specific than a weekday said with it ("thursday the 10th").
                if day.is_none() || matches!(self.p.day, Some(DaySpec::Weekday(_))) {
                    day = Some(Day::Date(date));
                }
            }
        }
        if let Some(si) = self.p.service {
            self.o.state.service = Some(b.services[si].id.clone());
        }
        if let Some(d) = day {
            self.o.state.day = Some(d);
        }
        if let Some(w) = self.p.window {
            self.o.state.window = Some(w);
            self.o.state.time = None;
        }
        if let Some(t) = time {
            self.o.state.time = Some(t);
        }
        if self.p.earliest && picked.is_none() && day.is_none() {
            self.o.state.day = None;
            self.o.state.window = None;
            self.o.state.time = None;
        }
        let answers = self.answers();
        let service = self
            .o
            .state
            .service
            .as_deref()
            .and_then(|id| b.service(id))
            .or_else(|| self.mine.and_then(|a| b.service(&a.service_id)))
            .or_else(|| (b.services.len() == 1).then(|| &b.services[0]));
        let Some(service) = service else {
            let lead = if !answers.is_empty() {
                answers
            } else if self.p.intents.greeting && !self.booking_info() {
                format!("Hi! Thanks for texting {}.", b.name)
            } else {
                "Sure!".to_string()
            };
            self.o.say(format!("{lead} {}", reply::ask_service(b)));
            return self.o;
        };
        self.o.state.service = Some(service.id.clone());
        if !self.booking_info() && self.p.service.is_none() {
            // Questions, greetings and thanks: answer, and leave the booking where it was.
            let text = if !answers.is_empty() {
                format!("{answers} Want to book? Tell me a day and time that suits you.")
            } else if self.p.intents.thanks {
                "You're welcome!".to_string()
            } else {
                format!("Great! What day and time work for your {}?", service.name)
            };
            self.o.say(text);
            return self.o;
        }
        let busy = self.busy();
        let start = picked.or_else(|| {
            self.o
                .state
                .time
                .map(|t| self.date_for(t, service, &busy).to_datetime(t))
        });
        let lead = if answers.is_empty() {
            String::new()
        } else {
            format!("{answers} ")
        };
        if let Some(t) = start {
            return match check(b, service, &busy, self.now, t) {
                Ok(()) => self.confirm(service, t, &lead),
                Err(why) => {
                    let alternatives = nearest(b, service, &busy, self.now, t, 3);
                    self.o.state.time = None;
                    let mut text = format!("{lead}{}", reply::unavailable(b, service, t, why));
                    self.offer_or_none(&mut text, alternatives, "The closest I have:");
                    self.o.say(text);
                    self.o
                }
            };
        }
        let (first, last) = match self.o.state.day {
            Some(Day::Date(d)) => (d, d),
            Some(Day::Range(a, z)) => (a, z),
            None => (
                self.now.date(),
                (self.now + b.rules.horizon_days.days()).date(),
            ),
        };
        let window = self.o.state.window.unwrap_or_default();
        let list = spread(
            free_starts(b, service, &busy, self.now, first, last, window),
            3,
        );
        let wanted = self.describe(first, last, window);
        if !list.is_empty() {
            let mut text = if wanted.is_empty() {
                format!("{lead}For {}, the soonest I have:", reply::a(&service.name))
            } else {
                format!("{lead}For {} {wanted}, I have:", reply::a(&service.name))
            };
            self.offer_or_none(&mut text, list, "");
            self.o.say(text);
            return self.o;
        }
        // Nothing meets every constraint: say so, then the nearest alternatives, relaxing the part of
        // the day first and then the day.
        let closed = first == last && b.hours_on(first).is_empty();
        let mut text = if closed {
            format!("{lead}Sorry, we're closed on {}.", reply::day(first))
        } else {
            format!(
                "{lead}Sorry, nothing is free for {} {wanted}.",
                reply::a(&service.name)
            )
        };
        let mut alternatives = spread(
            free_starts(b, service, &busy, self.now, first, last, Window::default()),
            3,
        );
        if alternatives.is_empty() {
            let target = first.to_datetime(window.from.unwrap_or(Time::constant(9, 0, 0, 0)));
            alternatives = nearest(b, service, &busy, self.now, target, 3);
        }
        self.offer_or_none(&mut text, alternatives, "The closest I have:");
        self.o.say(text);
        self.o
    }

    fn offer_or_none(&mut self, text: &mut String, list: Vec<DateTime>, lead: &str) {
        if list.is_empty() {
            text.push_str(&format!(
                " Nothing is free in the next {} days, sorry.",
                self.b.rules.horizon_days
            ));
            return;
        }
        if !lead.is_empty() {
            text.push(' ');
            text.push_str(lead);
        }
        text.push(' ');
        text.push_str(&reply::offers(&list));
        self.o.state.offers = list;
    }

    fn confirm(mut self, service: &Service, t: DateTime, lead: &str) -> Outcome {
        let b = self.b;
        let Ok(zoned) = t.to_zoned(b.tz.clone()) else {
            self.o
                .say("Sorry, that time doesn't exist on the clock here. Another time?");
            return self.o;
        };
        let start = zoned.timestamp();
        let moved = self.mine.is_some();
        match self.mine {
            Some(a) => self.o.actions.push(Action::Move {
                appointment: a.id,
                service_id: service.id.clone(),
                start,
            }),
            None => self.o.actions.push(Action::Book {
                service_id: service.id.clone(),
                start,
            }),
        }
        self.o.state.time = None;
        self.o.state.offers.clear();
        self.o
            .say(format!("{lead}{}", reply::confirmed(b, service, t, moved)));
        let verb = if moved { "Moved" } else { "New booking" };
        self.o.owner_alerts.push(format!(
            "textback: {verb}: {} on {} at {}, caller {}.",
            service.name,
            reply::day(t.date()),
            reply::time(t.time()),
            self.input.caller
        ));
        self.o
    }

    /// Busy times of every appointment but the caller's own (which is being moved, if anything).
    fn busy(&self) -> Vec<Busy> {
        let b = self.b;
        self.input
            .calendar
            .iter()
            .filter(|a| self.mine.is_none_or(|m| m.id != a.id))
            .filter_map(|a| {
                let service = b.service(&a.service_id)?;
                Some(Busy::of(service, a.start.to_zoned(b.tz.clone()).datetime()))
            })
            .collect()
    }

    /// The day a time alone refers to.
    fn date_for(&self, t: Time, service: &Service, busy: &[Busy]) -> Date {
        let b = self.b;
        let today = self.now.date();
        match self.o.state.day {
            Some(Day::Date(d))
                if self.p.day.is_some()
                    || d >= today && !(self.p.intents.change && self.mine.is_some()) =>
            {
                d
            }
            Some(Day::Range(a, z)) if self.p.day.is_some() || z >= today => {
                // The first day of the range on which that time is free; else the range's first day.
                let first = a.max(today);
                std::iter::successors(Some(first), |d| d.tomorrow().ok())
                    .take_while(|d| *d <= z)
                    .find(|d| check(b, service, busy, self.now, d.to_datetime(t)).is_ok())
                    .unwrap_or(first)
            }
            _ => {
                if let Some(a) = self.mine {
                    return a.start.to_zoned(b.tz.clone()).date();
                }
                if let Some(first) = self.offers.first() {
                    return first.date();
                }
                // Today if that time is still ahead, else the next day the business is open.
                let mut d = today;
                if today.to_datetime(t) < self.now + b.rules.min_notice_min.minutes() {
                    d = today.tomorrow().unwrap_or(today);
                }
                for _ in 0..7 {
                    if !b.hours_on(d).is_empty() {
                        return d;
                    }
                    d = d.tomorrow().unwrap_or(d);
                }
                d
            }
        }
    }

    /// "on Wednesday, June 10 in the afternoon", "between Monday, June 15 and Sunday, June 21".
    fn describe(&self, first: Date, last: Date, window: Window) -> String {
        let today = self.now.date();
        let days = if self.o.state.day.is_none() {
            String::new()
        } else if first == last && first == today {
            "today".to_string()
        } else if first == last && Some(first) == today.tomorrow().ok() {
            "tomorrow".to_string()
        } else if first == last {
            format!("on {}", reply::day(first))
        } else {
            format!("between {} and {}", reply::day(first), reply::day(last))
        };
        let noon = Time::constant(12, 0, 0, 0);
        let five = Time::constant(17, 0, 0, 0);
        let part = match (window.from, window.until) {
            (None, None) => String::new(),
            (None, Some(u)) if u == noon => " in the morning".into(),
            (Some(f), Some(u)) if f == noon && u == five => " in the afternoon".into(),
            (Some(f), None) if f == five => " in the evening".into(),
            (Some(f), None) => format!(" after {}", reply::time(f)),
            (None, Some(u)) => format!(" before {}", reply::time(u)),
            (Some(f), Some(u)) => format!(" between {} and {}", reply::time(f), reply::time(u)),
        };
        format!("{days}{part}").trim().to_string()
    }

    /// Answers to price, hours and address questions, as one sentence each.
    fn answers(&self) -> String {
        let b = self.b;
        let i = &self.p.intents;
        let mut out: Vec<String> = Vec::new();
        if i.price {
            let named = self
                .p
                .service
                .map(|si| &b.services[si])
                .or_else(|| self.o.state.service.as_deref().and_then(|id| b.service(id)));
            out.push(match named {
                Some(s) => {
                    let mut sentence =
                        format!("{} is {}.", reply::a(&s.name), reply::price(s.price_cents));
                    sentence[..1].make_ascii_uppercase();
                    sentence
                }
                None => format!("Our prices: {}.", reply::services(b)),
            });
        }
        if i.hours {
            out.push(match self.o.state.day {
                Some(Day::Date(d)) if self.p.day.is_some() => format!("{}.", reply::hours_on(b, d)),
                _ => format!("Our hours: {}.", reply::week_hours(b)),
            });
        }
        if i.address && !b.address.is_empty() {
            out.push(format!("We're at {}.", b.address));
        }
        out.join(" ")
    }
}
