//! The words of every text the assistant sends: short, plain, GSM-7 only (no curly quotes or dashes),
//! at most two SMS segments, the business's name where it helps.

use jiff::civil::{Date, DateTime, Time};

use crate::profile::{Business, Service};

use super::slots::Unavailable;

/// "a Haircut", "an Estimate".
pub fn a(name: &str) -> String {
    let article = if name.starts_with(['A', 'E', 'I', 'O', 'U', 'a', 'e', 'i', 'o', 'u']) {
        "an"
    } else {
        "a"
    };
    format!("{article} {name}")
}

pub fn time(t: Time) -> String {
    let (h, m) = (t.hour(), t.minute());
    let suffix = if h < 12 { "am" } else { "pm" };
    let h12 = match h % 12 {
        0 => 12,
        h => h,
    };
    if m == 0 {
        format!("{h12}{suffix}")
    } else {
        format!("{h12}:{m:02}{suffix}")
    }
}

pub fn weekday_name(d: Date) -> &'static str {
    [
        "Monday",
        "Tuesday",
        "Wednesday",
        "Thursday",
        "Friday",
        "Saturday",
        "Sunday",
    ][d.weekday().to_monday_zero_offset() as usize]
}

pub fn month_name(d: Date) -> &'static str {
    [
        "January",
        "February",
        "March",
        "April",
        "May",
        "June",
        "July",
        "August",
        "September",
        "October",
        "November",
        "December",
    ][d.month() as usize - 1]
}

/// "Wednesday, June 10"
pub fn day(d: Date) -> String {
    format!("{}, {} {}", weekday_name(d), month_name(d), d.day())
}

/// "Wed 6/10 2pm": compact, for offer lists.
pub fn short(t: DateTime) -> String {
    format!(
        "{} {}/{} {}",
        &weekday_name(t.date())[..3],
        t.month(),
        t.day(),
        time(t.time())
    )
}

pub fn price(cents: i64) -> String {
    match cents {
        0 => "free".to_string(),
        c if c % 100 == 0 => format!("${}", c / 100),
        c => format!("${}.{:02}", c / 100, c % 100),
    }
}

pub fn services(b: &Business) -> String {
    let list: Vec<String> = b
        .services
        .iter()
        .map(|s| format!("{} ({})", s.name, price(s.price_cents)))
        .collect();
    list.join(", ")
}

pub fn ask_service(b: &Business) -> String {
    format!("What can we book for you? We offer {}.", services(b))
}

pub fn hours_on(b: &Business, d: Date) -> String {
    let intervals = b.hours_on(d);
    if intervals.is_empty() {
        return format!("We're closed on {}", day(d));
    }
    let spans: Vec<String> = intervals
        .iter()
        .map(|(o, c)| format!("{}-{}", time(*o), time(*c)))
        .collect();
    format!("On {} we're open {}", day(d), spans.join(" and "))
}

/// The week's hours, compact: "Tue-Fri 9am-6pm, Sat 9am-4pm".
pub fn week_hours(b: &Business) -> String {
    const NAMES: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
    let fmt = |i: usize| {
        b.hours[i]
            .iter()
            .map(|(o, c)| format!("{}-{}", time(*o), time(*c)))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut parts: Vec<String> = Vec::new();
    let mut i = 0;
    while i < 7 {
        if b.hours[i].is_empty() {
            i += 1;
            continue;
        }
        let mut j = i;
        while j + 1 < 7 && b.hours[j + 1] == b.hours[i] {
            j += 1;
        }
        let days = if i == j {
            NAMES[i].to_string()
        } else {
            format!("{}-{}", NAMES[i], NAMES[j])
        };
        parts.push(format!("{days} {}", fmt(i)));
        i = j + 1;
    }
    parts.join(", ")
}

pub fn offers(list: &[DateTime]) -> String {
    let items: Vec<String> = list
        .iter()
        .enumerate()
        .map(|(i, t)| format!("{}) {}", i + 1, short(*t)))
        .collect();
    if list.len() == 1 {
        format!("{}. Reply 1 to book it, or tell me another time.", items[0])
    } else {
        format!(
            "{}. Reply with a number, or tell me another time.",
            items.join(" ")
        )
    }
}

pub fn unavailable(b: &Business, s: &Service, t: DateTime, why: Unavailable) -> String {
    let when = format!("{} at {}", day(t.date()), time(t.time()));
    match why {
        Unavailable::ClosedDay => format!("Sorry, we're closed on {}.", day(t.date())),
        Unavailable::OutsideHours => {
            format!(
                "Sorry, {} on {when} is outside our hours. {}.",
                a(&s.name),
                hours_on(b, t.date())
            )
        }
        Unavailable::OffGrid => format!(
            "Sorry, we book on the {}-minute mark, so {} isn't a start time.",
            b.rules.slot_interval_min,
            time(t.time())
        ),
        Unavailable::TooSoon => format!("Sorry, {when} is too soon for us to get ready."),
        Unavailable::TooFar => format!("Sorry, we only book {} days ahead.", b.rules.horizon_days),
        Unavailable::Taken => format!("Sorry, {when} is taken."),
    }
}

pub fn confirmed(b: &Business, s: &Service, t: DateTime, moved: bool) -> String {
    let verb = if moved {
        "Done! Your appointment is moved:"
    } else {
        "You're booked:"
    };
    format!(
        "{verb} {} on {} at {} at {}. Reply here if you need to change it.",
        s.name,
        day(t.date()),
        time(t.time()),
        b.name
    )
}

/// The first text after a missed call: names the business, offers to book, says how to opt out, and
/// outside opening hours says when the business opens.
pub fn textback(b: &Business, now: DateTime) -> String {
    let mut text = format!(
        "Hi, this is {}. Sorry we missed your call! Want to book an appointment? Reply with what you need and when.",
        b.name
    );
    match next_opening(b, now) {
        Opening::Now => {}
        Opening::At(t) => {
            let when = if t.date() == now.date() {
                format!("today at {}", time(t.time()))
            } else if Some(t.date()) == now.date().tomorrow().ok() {
                format!("tomorrow at {}", time(t.time()))
            } else {
                format!("{} at {}", weekday_name(t.date()), time(t.time()))
            };
            text.push_str(&format!(" We're closed right now and open {when}."));
        }
        Opening::NotSoon => text.push_str(" We're closed right now."),
    }
    text.push_str(" Reply STOP to opt out.");
    text
}

pub enum Opening {
    Now,
    At(DateTime),
    NotSoon,
}

pub fn next_opening(b: &Business, now: DateTime) -> Opening {
    let mut d = now.date();
    for _ in 0..14 {
        for (open, close) in b.hours_on(d) {
            let (o, c) = (d.to_datetime(*open), d.to_datetime(*close));
            if o <= now && now < c {
                return Opening::Now;
            }
            if o > now {
                return Opening::At(o);
            }
        }
        d = match d.tomorrow() {
            Ok(n) => n,
            Err(_) => break,
        };
    }
    Opening::NotSoon
}
