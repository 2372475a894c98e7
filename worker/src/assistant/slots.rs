//! Free start times, by the corpus README's availability rules, and the offer policy.
//!
//! A start `t` is free for a service when: it lies on the slot grid of an opening interval of that
//! day; `t + duration` is within that interval (the buffer may run past closing); the date is not
//! closed; `t >= now + min_notice`; `t < now + horizon`; and at every instant of
//! `[t, t + duration + buffer)` fewer than `capacity` existing appointments are busy. All times are
//! civil times in the business's zone.

use jiff::civil::{Date, DateTime, Time};
use jiff::ToSpan;

use super::parse::Window;
use crate::profile::{Business, Service};

/// An existing appointment's busy time, buffer included: `[start, end)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Busy {
    pub start: DateTime,
    pub end: DateTime,
}

/// Why a start is not free; the reply explains it in these terms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unavailable {
    /// Closed all day (a closed date or a weekday without hours).
    ClosedDay,
    /// The day is open, but the service would not fit in an opening interval at that time.
    OutsideHours,
    /// Within hours but not on the booking grid (e.g. 10:10 with a 15-minute grid).
    OffGrid,
    TooSoon,
    TooFar,
    Taken,
}

/// Minutes from midnight.
fn minute_of_day(t: Time) -> i64 {
    i64::from(t.hour()) * 60 + i64::from(t.minute())
}

fn at_minute(date: Date, minute: i64) -> DateTime {
    date.at((minute / 60) as i8, (minute % 60) as i8, 0, 0)
}

impl Busy {
    /// The time an appointment of `service` starting at `start` keeps the business busy.
    pub fn of(service: &Service, start: DateTime) -> Busy {
        Busy {
            start,
            end: start + (service.duration_min + service.buffer_min).minutes(),
        }
    }
}

/// Whether `capacity` is reached at some instant of `[from, to)`.
fn full(busy: &[Busy], capacity: u32, from: DateTime, to: DateTime) -> bool {
    // The count of overlapping appointments only rises at `from` or at a start inside the window.
    let points = std::iter::once(from).chain(
        busy.iter()
            .map(|b| b.start)
            .filter(|s| *s > from && *s < to),
    );
    points
        .into_iter()
        .any(|p| busy.iter().filter(|b| b.start <= p && p < b.end).count() as u32 >= capacity)
}

pub fn check(
    business: &Business,
    service: &Service,
    busy: &[Busy],
    now: DateTime,
    t: DateTime,
) -> Result<(), Unavailable> {
    let intervals = business.hours_on(t.date());
    if intervals.is_empty() {
        return Err(Unavailable::ClosedDay);
    }
    let m = minute_of_day(t.time());
    let grid = business.rules.slot_interval_min;
    let interval = intervals
        .iter()
        .find(|(open, close)| {
            m >= minute_of_day(*open) && m + service.duration_min <= minute_of_day(*close)
        })
        .ok_or(Unavailable::OutsideHours)?;
    if (m - minute_of_day(interval.0)) % grid != 0 || t.second() != 0 {
        return Err(Unavailable::OffGrid);
    }
    if t < now + business.rules.min_notice_min.minutes() {
        return Err(Unavailable::TooSoon);
    }
    if t >= now + business.rules.horizon_days.days() {
        return Err(Unavailable::TooFar);
    }
    let end = t + (service.duration_min + service.buffer_min).minutes();
    if full(busy, business.rules.capacity, t, end) {
        return Err(Unavailable::Taken);
    }
    Ok(())
}

/// Every free start from `first_day` to `last_day` (inclusive) whose time lies in `window`, in order.
pub fn free_starts<'a>(
    business: &'a Business,
    service: &'a Service,
    busy: &'a [Busy],
    now: DateTime,
    first_day: Date,
    last_day: Date,
    window: Window,
) -> impl Iterator<Item = DateTime> + 'a {
    let horizon_end = (now + business.rules.horizon_days.days()).date();
    let first = first_day.max(now.date());
    let last = last_day.min(horizon_end);
    let days = std::iter::successors(Some(first), move |d| {
        d.tomorrow().ok().filter(|n| *n <= last)
    })
    .filter(move |_| first <= last);
    days.flat_map(move |date| {
        business
            .hours_on(date)
            .iter()
            .flat_map(move |(open, close)| {
                let (open, close) = (minute_of_day(*open), minute_of_day(*close));
                let grid = business.rules.slot_interval_min;
                (0..)
                    .map(move |k| open + k * grid)
                    .take_while(move |m| m + service.duration_min <= close)
                    .map(move |m| at_minute(date, m))
            })
    })
    .filter(move |t| {
        window.from.is_none_or(|f| t.time() >= f) && window.until.is_none_or(|u| t.time() < u)
    })
    .filter(move |t| check(business, service, busy, now, *t).is_ok())
}

/// Up to `n` offers: the earliest, then each next the earliest at least 60 minutes after the last.
pub fn spread(starts: impl Iterator<Item = DateTime>, n: usize) -> Vec<DateTime> {
    let mut offers: Vec<DateTime> = Vec::with_capacity(n);
    for t in starts {
        if offers.len() == n {
            break;
        }
        if offers.last().is_none_or(|last| t >= *last + 60.minutes()) {
            offers.push(t);
        }
    }
    offers
}

/// The free starts nearest to `target`, before or after it, spaced as offers are, in order. Looks at
/// the target's day first, then a week either side.
pub fn nearest(
    business: &Business,
    service: &Service,
    busy: &[Busy],
    now: DateTime,
    target: DateTime,
    n: usize,
) -> Vec<DateTime> {
    let day = target.date();
    let mut candidates: Vec<DateTime> =
        free_starts(business, service, busy, now, day, day, Window::default()).collect();
    if candidates.is_empty() {
        let from = day.checked_sub(7.days()).unwrap_or(day);
        let to = day.checked_add(7.days()).unwrap_or(day);
        candidates =
            free_starts(business, service, busy, now, from, to, Window::default()).collect();
    }
    let distance = |t: &DateTime| t.duration_since(target).as_secs().abs();
    candidates.sort_by_key(distance);
    let mut chosen: Vec<DateTime> = Vec::with_capacity(n);
    for t in candidates {
        if chosen.len() == n {
            break;
        }
        if chosen
            .iter()
            .all(|c| c.duration_since(t).as_secs().abs() >= 3600)
        {
            chosen.push(t);
        }
    }
    chosen.sort();
    chosen
}
