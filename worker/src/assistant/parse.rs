//! What a caller's text says, as far as booking goes. A small grammar over tokens: each construction
//! (a day, a date, a clock time, a part of the day, a pick from an offer list, a count, a service, an
//! intent) is one function, tried at each position. Days are resolved against `today`; everything
//! that depends on the conversation (is "2" a pick or 2pm? which Wednesday?) is left to the dialogue.

use jiff::civil::{Date, Time, Weekday};
use serde::{Deserialize, Serialize};

use super::text::{tokenize, within_one_edit, Meridiem, Tok};
use crate::profile::Business;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DaySpec {
    Date(Date),
    /// Inclusive range: "this weekend", "next week".
    Range(Date, Date),
    /// A bare weekday: the first such day after today, or inside a stated week, that week's.
    Weekday(Weekday),
}

/// Start times allowed by a part of the day or by "after"/"before": `from <= t < until`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Window {
    pub from: Option<Time>,
    pub until: Option<Time>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pick {
    Nth(usize),
    Last,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Intents {
    pub opt_out: bool,
    pub opt_in: bool,
    pub help: bool,
    pub urgent: bool,
    pub human: bool,
    pub cancel: bool,
    pub change: bool,
    pub price: bool,
    pub hours: bool,
    pub address: bool,
    pub close: bool,
    pub greeting: bool,
    pub thanks: bool,
    pub yes: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Parsed {
    /// Index into the business's services.
    pub service: Option<usize>,
    pub day: Option<DaySpec>,
    /// A clock time that names a start ("at 3", "3:30", "noon").
    pub time: Option<Time>,
    pub window: Option<Window>,
    /// "earliest", "asap", "first available".
    pub earliest: bool,
    /// An explicit pick: "the first one", "option 2", "#3", "the last one".
    pub pick: Option<Pick>,
    /// A bare number that is a pick right after an offer list and a time otherwise.
    pub bare_number: Option<u32>,
    /// An ordinal ("the 2nd") that is a pick right after an offer list and a date otherwise.
    pub ordinal_date: Option<(u32, Date)>,
    pub intents: Intents,
}

impl Parsed {
    /// Whether anything in the text was understood.
    pub fn understood(&self) -> bool {
        let i = &self.intents;
        self.service.is_some()
            || self.day.is_some()
            || self.time.is_some()
            || self.window.is_some()
            || self.earliest
            || self.pick.is_some()
            || self.bare_number.is_some()
            || self.ordinal_date.is_some()
            || i.opt_out
            || i.opt_in
            || i.help
            || i.urgent
            || i.human
            || i.cancel
            || i.change
            || i.price
            || i.hours
            || i.address
            || i.close
            || i.greeting
            || i.thanks
            || i.yes
    }
}

const WEEKDAYS: [(&[&str], Weekday); 7] = [
    (&["monday", "mon", "mondays"], Weekday::Monday),
    (&["tuesday", "tue", "tues", "tuesdays"], Weekday::Tuesday),
    (
        &["wednesday", "wed", "weds", "wednesdays"],
        Weekday::Wednesday,
    ),
    (
        &["thursday", "thu", "thur", "thurs", "thursdays"],
        Weekday::Thursday,
    ),
    (&["friday", "fri", "fridays"], Weekday::Friday),
    (&["saturday", "sat", "saturdays"], Weekday::Saturday),
    (&["sunday", "sun", "sundays"], Weekday::Sunday),
];

const MONTHS: [&[&str]; 12] = [
    &["january", "jan"],
    &["february", "feb"],
    &["march", "mar"],
    &["april", "apr"],
    &["may"],
    &["june", "jun"],
    &["july", "jul"],
    &["august", "aug"],
    &["september", "sep", "sept"],
    &["october", "oct"],
    &["november", "nov"],
    &["december", "dec"],
];

const TOMORROW: [&str; 8] = [
    "tomorrow",
    "tmrw",
    "tmr",
    "tmrow",
    "tomorow",
    "tommorow",
    "tommorrow",
    "2morrow",
];

/// Words after a bare number that still leave it a time ("11 works", "3 then", "2 tomorrow").
const AFTER_TIME: [&str; 28] = [
    "works", "work", "then", "ok", "okay", "pls", "please", "is", "would", "could", "sounds",
    "good", "fine", "for", "on", "this", "today", "tomorrow", "tmrw", "tonight", "and", "or", "if",
    "instead", "ish", "thanks", "thx", "oclock",
];

/// Words before a number that make it a clock time.
const TIME_CUES: [&str; 9] = [
    "at", "around", "about", "by", "til", "till", "until", "it", "say",
];

/// Common words never read as a one-letter typo of a service word.
const NOT_TYPOS: [&str; 24] = [
    "quite", "quiet", "there", "their", "where", "which", "about", "after", "could", "would",
    "should", "today", "hours", "later", "maybe", "great", "thanks", "sorry", "works", "texts",
    "right", "water", "price", "times",
];

fn weekday(w: &str) -> Option<Weekday> {
    WEEKDAYS
        .iter()
        .find(|(names, _)| names.contains(&w))
        .map(|(_, d)| *d)
}

fn month(w: &str) -> Option<u32> {
    MONTHS
        .iter()
        .position(|names| names.contains(&w))
        .map(|i| i as u32 + 1)
}

/// Resolves an hour and minute as callers mean them: without am/pm, 1–7 is afternoon, 8–11 morning,
/// 12 noon; 13–23 is a 24-hour clock.
pub fn clock(hour: u32, minute: u32, meridiem: Option<Meridiem>) -> Option<Time> {
    if minute > 59 {
        return None;
    }
    let h = match meridiem {
        Some(Meridiem::Am) if (1..=12).contains(&hour) => hour % 12,
        Some(Meridiem::Pm) if (1..=12).contains(&hour) => hour % 12 + 12,
        Some(_) => return None,
        None => match hour {
            0 => 0,
            1..=7 => hour + 12,
            8..=12 => hour,
            13..=23 => hour,
            _ => return None,
        },
    };
    Time::new(h as i8, minute as i8, 0, 0).ok()
}

/// The next `month/day` on or after `today`.
fn next_date(today: Date, month: u32, day: u32) -> Option<Date> {
    let this_year = Date::new(today.year(), month as i8, day as i8).ok();
    match this_year {
        Some(d) if d >= today => Some(d),
        _ => Date::new(today.year() + 1, month as i8, day as i8).ok(),
    }
}

/// The next date with this day of the month, on or after `today`.
fn next_day_of_month(today: Date, day: u32) -> Option<Date> {
    let mut first = today.first_of_month();
    for _ in 0..3 {
        if let Ok(d) = Date::new(first.year(), first.month(), day as i8) {
            if d >= today {
                return Some(d);
            }
        }
        first = first.last_of_month().tomorrow().ok()?;
    }
    None
}

/// The first `weekday` strictly after `today`.
pub fn next_weekday(today: Date, weekday: Weekday) -> Date {
    today.nth_weekday(1, weekday).unwrap_or(today)
}

fn next_monday(today: Date) -> Date {
    next_weekday(today, Weekday::Monday)
}

struct Cursor<'a> {
    toks: &'a [Tok],
    words: Vec<String>,
    today: Date,
    out: Parsed,
}

pub fn parse(text: &str, business: &Business, today: Date) -> Parsed {
    let toks = tokenize(text);
    let words: Vec<String> = toks
        .iter()
        .map(|t| match t {
            Tok::Word(w) => w.clone(),
            Tok::Num(n) | Tok::Hash(n) | Tok::Ordinal(n) => n.to_string(),
            _ => String::new(),
        })
        .collect();
    let mut c = Cursor {
        toks: &toks,
        words,
        today,
        out: Parsed::default(),
    };
    c.intents(business);
    c.out.service = match_service(business, &c.words);
    let mut i = 0;
    while i < toks.len() {
        i += c.construction(i);
    }
    c.out
}

impl Cursor<'_> {
    fn w(&self, i: usize) -> &str {
        self.words.get(i).map_or("", String::as_str)
    }

    fn has(&self, phrase: &[&str]) -> bool {
        self.words
            .windows(phrase.len())
            .any(|win| win.iter().zip(phrase).all(|(a, b)| a == b))
    }

    fn only(&self, options: &[&str]) -> bool {
        let joined: String = self.words.concat();
        options.contains(&joined.as_str())
    }

    fn intents(&mut self, business: &Business) {
        let any = |c: &Self, words: &[&str]| words.iter().any(|w| c.words.iter().any(|x| x == w));
        let phrases = |c: &Self, ps: &[&[&str]]| ps.iter().any(|p| c.has(p));
        let i = Intents {
            opt_out: self.only(&[
                "stop",
                "stopall",
                "unsubscribe",
                "cancel",
                "end",
                "quit",
                "revoke",
                "optout",
            ]) || phrases(
                self,
                &[
                    &["stop", "texting"],
                    &["stop", "messaging"],
                    &["stop", "sending"],
                    &["stop", "contacting"],
                    &["dont", "text"],
                    &["do", "not", "text"],
                    &["dont", "message"],
                    &["remove", "me"],
                    &["take", "me", "off"],
                    &["unsubscribe"],
                    &["opt", "out"],
                    &["no", "more", "texts"],
                    &["leave", "me", "alone"],
                ],
            ),
            opt_in: self.only(&["start", "unstop", "yes"]),
            help: self.only(&["help", "info"]),
            urgent: business.urgent.iter().any(|p| {
                let p: Vec<&str> = p.iter().map(String::as_str).collect();
                self.has(&p)
                    || (p.len() == 1 && self.words.iter().any(|w| *w == format!("{}s", p[0])))
            }),
            human: phrases(
                self,
                &[
                    &["call", "me"],
                    &["call", "back"],
                    &["callback"],
                    &["real", "person"],
                    &["a", "person"],
                    &["human"],
                    &["speak", "to"],
                    &["talk", "to"],
                    &["representative"],
                    &["someone", "call"],
                    &["give", "me", "a", "call"],
                    &["the", "owner"],
                    &["a", "manager"],
                ],
            ),
            cancel: any(self, &["cancel", "cancellation"]),
            change: any(
                self,
                &[
                    "reschedule",
                    "move",
                    "change",
                    "switch",
                    "push",
                    "instead",
                    "actually",
                    "rather",
                ],
            ) || self.has(&["make", "it"]),
            price: any(
                self,
                &[
                    "price", "prices", "pricing", "cost", "costs", "charge", "rates", "fee",
                ],
            ) || self.has(&["how", "much"]),
            hours: any(
                self,
                &["hours", "open", "opens", "close", "closes", "closing"],
            ),
            address: any(
                self,
                &["where", "address", "located", "location", "directions"],
            ),
            close: phrases(
                self,
                &[
                    &["wrong", "number"],
                    &["no", "thanks"],
                    &["no", "thank"],
                    &["not", "interested"],
                    &["never", "mind"],
                    &["nevermind"],
                    &["nvm"],
                    &["all", "set"],
                    &["already", "got"],
                    &["found", "someone"],
                    &["dont", "need"],
                ],
            ),
            greeting: any(self, &["hi", "hello", "hey", "hiya", "howdy", "yo"])
                || phrases(
                    self,
                    &[
                        &["good", "morning"],
                        &["good", "afternoon"],
                        &["good", "evening"],
                    ],
                ),
            thanks: any(self, &["thanks", "thank", "thx", "ty", "appreciate"]),
            yes: any(
                self,
                &[
                    "yes", "yeah", "yep", "sure", "ok", "okay", "great", "cool", "perfect",
                ],
            ),
        };
        self.out.intents = i;
    }

    /// Tries each construction at `i`; returns how many tokens it used (at least 1).
    fn construction(&mut self, i: usize) -> usize {
        let w = self.w(i).to_string();
        // "since this morning", "since yesterday": when the problem started, not when to come.
        if w == "since" || w == "ago" {
            return 3.min(self.toks.len() - i);
        }
        if let Some(n) = self.day(i) {
            return n;
        }
        if let Some(n) = self.time(i) {
            return n;
        }
        if let Some(n) = self.part_of_day(i) {
            return n;
        }
        self.pick_or_earliest(i).unwrap_or(1)
    }

    fn set_day(&mut self, day: DaySpec) {
        // A date is more specific than a weekday said with it ("saturday the 4th").
        if matches!(
            (self.out.day, day),
            (Some(DaySpec::Date(_)), DaySpec::Weekday(_))
        ) {
            return;
        }
        self.out.day = Some(day);
    }

    fn day(&mut self, i: usize) -> Option<usize> {
        let today = self.today;
        let w = self.w(i).to_string();
        let next = self.w(i + 1).to_string();
        if w == "today" {
            self.set_day(DaySpec::Date(today));
            return Some(1);
        }
        if w == "tonight" {
            self.set_day(DaySpec::Date(today));
            self.out.window = Some(Window {
                from: Some(Time::constant(17, 0, 0, 0)),
                until: None,
            });
            return Some(1);
        }
        if TOMORROW.contains(&w.as_str()) {
            self.set_day(DaySpec::Date(today.tomorrow().ok()?));
            return Some(1);
        }
        if w == "this" && ["morning", "afternoon", "evening"].contains(&next.as_str()) {
            self.set_day(DaySpec::Date(today));
            return None; // the part of the day is read next
        }
        if (w == "this" || w == "the") && (next == "weekend" || next == "wknd")
            || (w == "weekend" && i == 0)
        {
            let sat = if today.weekday() == Weekday::Saturday {
                today
            } else {
                next_weekday(today, Weekday::Saturday)
            };
            let sun = if today.weekday() == Weekday::Sunday {
                today
            } else {
                sat.tomorrow().ok()?
            };
            self.set_day(DaySpec::Range(sat.min(sun), sun));
            return Some(if w == "weekend" { 1 } else { 2 });
        }
        if w == "next" && next == "week" {
            let mon = next_monday(today);
            self.set_day(DaySpec::Range(
                mon,
                mon.checked_add(jiff::Span::new().days(6)).ok()?,
            ));
            return Some(2);
        }
        if w == "next" {
            if let Some(wd) = weekday(&next) {
                let mon = next_monday(today);
                let d = if wd == Weekday::Sunday {
                    mon.checked_add(jiff::Span::new().days(6)).ok()?
                } else {
                    next_weekday(mon.yesterday().ok()?, wd)
                };
                self.set_day(DaySpec::Date(d));
                return Some(2);
            }
        }
        if let Some(wd) = weekday(&w) {
            // "sat" and "sun" are words too; a weekday followed by another day word is still a weekday.
            self.set_day(DaySpec::Weekday(wd));
            return Some(1);
        }
        // Month and day: "june 12", "jun 12th", "12 june", "the 12th of june".
        if let Some(m) = month(&w) {
            let day = match self.toks.get(i + 1) {
                Some(Tok::Num(d)) | Some(Tok::Ordinal(d)) => Some(*d),
                _ => None,
            };
            if let Some(d) = day.filter(|d| (1..=31).contains(d)) {
                self.set_day(DaySpec::Date(next_date(today, m, d)?));
                self.out.ordinal_date = None;
                return Some(2);
            }
            if w == "may" {
                return None;
            }
        }
        match self.toks.get(i) {
            Some(Tok::Slash { month, day }) => {
                if let Some(d) = next_date(today, *month, *day) {
                    self.set_day(DaySpec::Date(d));
                }
                Some(1)
            }
            Some(Tok::Num(d)) | Some(Tok::Ordinal(d))
                if self.words.get(i + 1).and_then(|m| month(m)).is_some() =>
            {
                let m = month(self.w(i + 1))?;
                self.set_day(DaySpec::Date(next_date(today, m, *d)?));
                Some(2)
            }
            Some(Tok::Num(d)) | Some(Tok::Ordinal(d))
                if self.w(i + 1) == "of" && month(self.w(i + 2)).is_some() =>
            {
                let m = month(self.w(i + 2))?;
                self.set_day(DaySpec::Date(next_date(today, m, *d)?));
                Some(3)
            }
            Some(Tok::Ordinal(d)) if (1..=31).contains(d) => {
                // "the 12th": a date, unless it picks from an offer list (decided by the dialogue).
                if let Some(date) = next_day_of_month(today, *d) {
                    self.out.ordinal_date = Some((*d, date));
                }
                Some(1)
            }
            _ => None,
        }
    }

    fn time(&mut self, i: usize) -> Option<usize> {
        let prev = if i > 0 {
            self.w(i - 1).to_string()
        } else {
            String::new()
        };
        let mut used = 1;
        let time = match self.toks.get(i)? {
            Tok::Clock {
                hour,
                minute,
                meridiem,
            } => clock(*hour, *minute, *meridiem),
            Tok::Num(n) => {
                let after = self.w(i + 1).to_string();
                let meridiem = match after.as_str() {
                    "am" | "a" => Some(Meridiem::Am),
                    "pm" | "p" => Some(Meridiem::Pm),
                    _ => None,
                };
                if meridiem.is_some() {
                    used = 2;
                    clock(*n, 0, meridiem)
                } else if after == "oclock" || (after == "o" && self.w(i + 2) == "clock") {
                    used = if after == "o" { 3 } else { 2 };
                    clock(*n, 0, None)
                } else if TIME_CUES.contains(&prev.as_str()) || prev == "after" || prev == "before"
                {
                    clock(*n, 0, None)
                } else if prev == "option" || prev == "number" || prev == "choice" {
                    self.out.pick = Some(Pick::Nth(*n as usize));
                    return Some(1);
                } else if after.is_empty()
                    || AFTER_TIME.contains(&after.as_str())
                    || weekday(&after).is_some()
                {
                    // Pick or time: the dialogue knows whether an offer list is open.
                    self.out.bare_number = Some(*n);
                    return Some(1);
                } else {
                    // "2 sinks": a count, not a time.
                    return Some(1);
                }
            }
            Tok::Word(w) if w == "noon" || w == "midday" => Some(Time::constant(12, 0, 0, 0)),
            Tok::Word(w) if w == "midnight" => Some(Time::constant(0, 0, 0, 0)),
            Tok::Hash(n) => {
                self.out.pick = Some(Pick::Nth(*n as usize));
                return Some(1);
            }
            _ => return None,
        };
        let time = time?;
        match prev.as_str() {
            "after" => {
                self.out.window = Some(Window {
                    from: Some(time),
                    ..self.out.window.unwrap_or_default()
                })
            }
            "before" => {
                self.out.window = Some(Window {
                    until: Some(time),
                    ..self.out.window.unwrap_or_default()
                })
            }
            _ => self.out.time = Some(time),
        }
        Some(used)
    }

    fn part_of_day(&mut self, i: usize) -> Option<usize> {
        let w = self.w(i).to_string();
        let prev = if i > 0 {
            self.w(i - 1).to_string()
        } else {
            String::new()
        };
        let (w, prev) = (w.as_str(), prev.as_str());
        if prev == "good" {
            return None; // "good morning" is a greeting
        }
        let window = match w {
            "morning" | "mornings" | "am" => Window {
                from: None,
                until: Some(Time::constant(12, 0, 0, 0)),
            },
            "afternoon" | "afternoons" => Window {
                from: Some(Time::constant(12, 0, 0, 0)),
                until: Some(Time::constant(17, 0, 0, 0)),
            },
            "evening" | "evenings" | "night" => Window {
                from: Some(Time::constant(17, 0, 0, 0)),
                until: None,
            },
            _ => return None,
        };
        self.out.window = Some(window);
        Some(1)
    }

    fn pick_or_earliest(&mut self, i: usize) -> Option<usize> {
        let w = self.w(i).to_string();
        let next = self.w(i + 1).to_string();
        let (w, next) = (w.as_str(), next.as_str());
        let nth = match w {
            "first" | "1st" => Some(1),
            "second" | "2nd" => Some(2),
            "third" | "3rd" => Some(3),
            _ => None,
        };
        if ["earliest", "soonest", "asap"].contains(&w)
            || (w == "first" && next == "available")
            || (w == "next" && next == "available")
            || (w == "as" && next == "soon")
        {
            self.out.earliest = true;
            // "first" alone may still pick the first offer; "earliest" too.
            if w == "first" || w == "earliest" {
                self.out.pick.get_or_insert(Pick::Nth(1));
            }
            return Some(if w == "as" { 4 } else { 1 });
        }
        if let Some(n) = nth {
            self.out.pick = Some(Pick::Nth(n));
            // "first" with no offer list open asks for the earliest start.
            self.out.earliest |= n == 1 && w == "first";
            return Some(1);
        }
        if w == "last" && !["week", "time", "night"].contains(&next) {
            self.out.pick = Some(Pick::Last);
            return Some(1);
        }
        None
    }
}

/// The service the words name: by name or alias, ignoring case and punctuation, allowing plurals and
/// one-letter typos in words of five letters or more; the longest matched phrase wins.
pub fn match_service(business: &Business, words: &[String]) -> Option<usize> {
    let word_matches = |text: &str, alias: &str| {
        text == alias
            || text.strip_suffix('s') == Some(alias)
            || text.strip_suffix("es") == Some(alias)
            || (alias.chars().count() >= 5
                && text.chars().count() >= 5
                && !NOT_TYPOS.contains(&text)
                && within_one_edit(text, alias))
    };
    let mut best: Option<(usize, usize)> = None; // (phrase length, service index)
    for (si, service) in business.services.iter().enumerate() {
        for phrase in &service.phrases {
            let n = phrase.len();
            if n == 0 || n > words.len() {
                continue;
            }
            let found = words
                .windows(n)
                .any(|win| win.iter().zip(phrase).all(|(t, a)| word_matches(t, a)));
            let len = phrase.iter().map(|w| w.len()).sum::<usize>() + n - 1;
            if found && best.is_none_or(|(l, _)| len > l) {
                best = Some((len, si));
            }
        }
    }
    best.map(|(_, si)| si)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::profile::fixtures::{barber, plumber};

    /// Tuesday, June 9 2026.
    fn today() -> Date {
        Date::constant(2026, 6, 9)
    }

    fn p(text: &str) -> Parsed {
        parse(text, &barber(), today())
    }

    fn t(h: i8, m: i8) -> Option<Time> {
        Some(Time::constant(h, m, 0, 0))
    }

    fn date(m: i8, d: i8) -> Option<DaySpec> {
        Some(DaySpec::Date(Date::constant(2026, m, d)))
    }

    fn service(text: &str) -> Option<String> {
        let b = barber();
        parse(text, &b, today())
            .service
            .map(|i| b.services[i].id.clone())
    }

    #[test]
    fn clock_times_with_and_without_am_pm() {
        assert_eq!(p("3pm").time, t(15, 0));
        assert_eq!(p("3 pm").time, t(15, 0));
        assert_eq!(p("8 a.m.").time, t(8, 0));
        assert_eq!(p("at 3:30").time, t(15, 30));
        assert_eq!(p("15:00").time, t(15, 0));
        assert_eq!(p("noon").time, t(12, 0));
        assert_eq!(p("midnight").time, t(0, 0));
        assert_eq!(p("12am").time, t(0, 0));
        assert_eq!(p("12pm").time, t(12, 0));
        // Without am/pm: 1–7 afternoon, 8–11 morning, 12 noon.
        assert_eq!(p("at 7").time, t(19, 0));
        assert_eq!(p("at 8").time, t(8, 0));
        assert_eq!(p("at 11:45").time, t(11, 45));
        assert_eq!(p("at 12").time, t(12, 0));
        assert_eq!(p("around 2").time, t(14, 0));
        assert_eq!(p("make it 4").time, t(16, 0));
        assert_eq!(p("at 25").time, None);
        assert_eq!(p("13pm").time, None);
    }

    #[test]
    fn bare_numbers_counts_and_picks() {
        assert_eq!(p("2").bare_number, Some(2));
        assert_eq!(p("11 works").bare_number, Some(11));
        assert_eq!(p("2 please").bare_number, Some(2));
        let count = p("I have 2 sinks clogged");
        assert_eq!((count.bare_number, count.time), (None, None));
        assert_eq!(p("option 2").pick, Some(Pick::Nth(2)));
        assert_eq!(p("#3").pick, Some(Pick::Nth(3)));
        assert_eq!(p("the second one").pick, Some(Pick::Nth(2)));
        assert_eq!(p("2nd").ordinal_date.map(|(n, _)| n), Some(2));
        assert_eq!(p("the last one").pick, Some(Pick::Last));
        let first = p("first");
        assert_eq!((first.pick, first.earliest), (Some(Pick::Nth(1)), true));
        let asap = p("asap please");
        assert!(asap.earliest);
        assert!(p("first available").earliest);
        assert_eq!(p("last week was great").pick, None);
    }

    #[test]
    fn days_relative_and_named() {
        assert_eq!(p("today").day, date(6, 9));
        for tomorrow in ["tomorrow", "tmrw", "tmr", "tomorow"] {
            assert_eq!(p(tomorrow).day, date(6, 10), "{tomorrow}");
        }
        assert_eq!(p("saturday").day, Some(DaySpec::Weekday(Weekday::Saturday)));
        assert_eq!(p("thurs").day, Some(DaySpec::Weekday(Weekday::Thursday)));
        assert_eq!(
            p("sat 11:30").day,
            Some(DaySpec::Weekday(Weekday::Saturday))
        );
        // Bare weekdays resolve to the first such day after today (the dialogue does it).
        assert_eq!(
            next_weekday(today(), Weekday::Tuesday),
            Date::constant(2026, 6, 16)
        );
        assert_eq!(p("next friday").day, date(6, 19));
        assert_eq!(
            p("this weekend").day,
            Some(DaySpec::Range(
                Date::constant(2026, 6, 13),
                Date::constant(2026, 6, 14)
            ))
        );
        assert_eq!(
            p("sometime next week").day,
            Some(DaySpec::Range(
                Date::constant(2026, 6, 15),
                Date::constant(2026, 6, 21)
            ))
        );
        let tonight = p("tonight");
        assert_eq!(tonight.day, date(6, 9));
        assert_eq!(tonight.window.and_then(|w| w.from), t(17, 0));
        let this_morning = p("this morning");
        assert_eq!(this_morning.day, date(6, 9));
        assert_eq!(this_morning.window.and_then(|w| w.until), t(12, 0));
    }

    #[test]
    fn dates() {
        assert_eq!(p("June 12").day, date(6, 12));
        assert_eq!(p("jun 12th").day, date(6, 12));
        assert_eq!(p("12 june").day, date(6, 12));
        assert_eq!(p("the 12th of june").day, date(6, 12));
        assert_eq!(p("on 6/12").day, date(6, 12));
        // Dates already past this year are next year's.
        assert_eq!(
            p("6/1").day,
            Some(DaySpec::Date(Date::constant(2027, 6, 1)))
        );
        // "the 12th" is June 12 unless it picks from an offer list; "the 4th" is next month's.
        assert_eq!(
            p("the 12th").ordinal_date,
            Some((12, Date::constant(2026, 6, 12)))
        );
        assert_eq!(
            p("the 4th").ordinal_date,
            Some((4, Date::constant(2026, 7, 4)))
        );
        // A date beats the weekday said with it.
        assert_eq!(
            p("saturday july 4").day,
            Some(DaySpec::Date(Date::constant(2026, 7, 4)))
        );
        // "may" is a verb unless a day follows.
        assert_eq!(p("may I come in").day, None);
        assert_eq!(
            p("may 3").day,
            Some(DaySpec::Date(Date::constant(2027, 5, 3)))
        );
    }

    #[test]
    fn parts_of_day_after_and_before() {
        let w = |text: &str| p(text).window.unwrap();
        assert_eq!(
            w("tomorrow morning"),
            Window {
                from: None,
                until: t(12, 0)
            }
        );
        assert_eq!(
            w("friday afternoon"),
            Window {
                from: t(12, 0),
                until: t(17, 0)
            }
        );
        assert_eq!(
            w("thursday evening"),
            Window {
                from: t(17, 0),
                until: None
            }
        );
        assert_eq!(
            w("after 3"),
            Window {
                from: t(15, 0),
                until: None
            }
        );
        assert_eq!(
            w("before noon"),
            Window {
                from: None,
                until: t(12, 0)
            }
        );
        assert_eq!(p("after 3").time, None);
        assert_eq!(p("good morning!").window, None);
        assert!(p("good morning!").intents.greeting);
        // When the trouble started is not when to come.
        let since = p("no hot water since this morning");
        assert_eq!((since.day, since.window), (None, None));
    }

    #[test]
    fn services_by_name_alias_plural_typo_longest() {
        assert_eq!(service("Haircut please"), Some("haircut".into()));
        assert_eq!(service("need a fade"), Some("haircut".into()));
        assert_eq!(service("two haircuts"), Some("haircut".into()));
        assert_eq!(service("can i get a hiarcut"), Some("haircut".into()));
        assert_eq!(service("a haicut"), Some("haircut".into()));
        assert_eq!(service("beard trim"), Some("beard".into()));
        assert_eq!(service("haircut and beard"), Some("combo".into()));
        assert_eq!(service("HAIRCUT & BEARD"), Some("combo".into()));
        assert_eq!(service("can my son get a cut"), Some("kids".into()));
        assert_eq!(service("hello there"), None);
        // Short words need an exact match: "cat" is not "cut".
        assert_eq!(service("my cat"), None);
        let b = plumber();
        let s = |text: &str| {
            parse(text, &b, today())
                .service
                .map(|i| b.services[i].id.clone())
        };
        assert_eq!(s("water heater leaking"), Some("heater".into()));
        assert_eq!(s("kitchen sink is clogged"), Some("drain".into()));
        assert_eq!(s("not quite right"), None);
    }

    #[test]
    fn keywords_and_intents() {
        for stop in [
            "STOP",
            "stop.",
            "Unsubscribe",
            "CANCEL",
            "end",
            "quit",
            "opt out",
            "stopall",
            "Revoke",
        ] {
            assert!(p(stop).intents.opt_out, "{stop}");
        }
        for plain in [
            "stop texting me",
            "please remove me from this list",
            "don't text me",
            "do not text me again",
        ] {
            assert!(p(plain).intents.opt_out, "{plain}");
        }
        let cancel = p("I need to cancel my appointment");
        assert!(cancel.intents.cancel && !cancel.intents.opt_out);
        assert!(!p("can you stop by at 3").intents.opt_out);
        assert!(p("START").intents.opt_in && p("unstop").intents.opt_in && p("Yes").intents.opt_in);
        assert!(
            p("HELP").intents.help && p("info").intents.help && !p("help me book").intents.help
        );
        assert!(p("can someone call me back").intents.human);
        assert!(p("I want to talk to a real person").intents.human);
        assert!(!p("can someone come tomorrow").intents.human);
        let b = plumber();
        assert!(
            parse("pipe burst in the basement", &b, today())
                .intents
                .urgent
        );
        assert!(
            !parse("pipe burst in the basement", &barber(), today())
                .intents
                .urgent
        );
        assert!(p("how much is a beard trim?").intents.price);
        assert!(p("what time do you open saturday?").intents.hours);
        assert!(p("where are you located").intents.address);
        assert!(p("sorry wrong number").intents.close);
        assert!(p("no thanks").intents.close);
        assert!(p("actually make it 4").intents.change);
        assert!(!p("asdfgh").understood());
        assert!(!p("????").understood());
    }
}
