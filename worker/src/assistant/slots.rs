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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::profile::fixtures::{barber, plumber};
    use jiff::civil::date;
    use proptest::prelude::*;

    fn at(y: i16, m: i8, d: i8, h: i8, min: i8) -> DateTime {
        date(y, m, d).at(h, min, 0, 0)
    }

    /// Tuesday June 9 2026, 8:00.
    fn now() -> DateTime {
        at(2026, 6, 9, 8, 0)
    }

    #[test]
    fn each_availability_rule() {
        let b = barber();
        let cut = b.service("haircut").unwrap();
        let ok = |t| check(&b, cut, &[], now(), t);
        assert_eq!(ok(at(2026, 6, 10, 14, 0)), Ok(()));
        // On the grid of the opening interval: 15 minutes from 9:00.
        assert_eq!(ok(at(2026, 6, 10, 14, 10)), Err(Unavailable::OffGrid));
        // The service must end by closing (18:00): 17:30 fits, 17:45 does not.
        assert_eq!(ok(at(2026, 6, 10, 17, 30)), Ok(()));
        assert_eq!(ok(at(2026, 6, 10, 17, 45)), Err(Unavailable::OutsideHours));
        assert_eq!(ok(at(2026, 6, 10, 8, 45)), Err(Unavailable::OutsideHours));
        // Closed weekday, closed date.
        assert_eq!(ok(at(2026, 6, 14, 10, 0)), Err(Unavailable::ClosedDay));
        assert_eq!(ok(at(2026, 7, 4, 10, 0)), Err(Unavailable::ClosedDay));
        // Minimum notice: 60 minutes.
        let late = at(2026, 6, 10, 13, 5);
        assert_eq!(
            check(&b, cut, &[], late, at(2026, 6, 10, 14, 0)),
            Err(Unavailable::TooSoon)
        );
        assert_eq!(check(&b, cut, &[], late, at(2026, 6, 10, 14, 15)), Ok(()));
        // Horizon: 30 days; a start at now + 30 days is out.
        assert_eq!(
            check(&b, cut, &[], at(2026, 6, 10, 9, 0), at(2026, 7, 10, 9, 0)),
            Err(Unavailable::TooFar)
        );
        assert_eq!(
            check(&b, cut, &[], at(2026, 6, 10, 9, 0), at(2026, 7, 9, 17, 30)),
            Ok(())
        );
        // Capacity 1: an appointment 14:00–14:30 blocks 13:45 and 14:15, not 13:30 or 14:30.
        let busy = [Busy::of(cut, at(2026, 6, 10, 14, 0))];
        let c = |t| check(&b, cut, &busy, now(), t);
        assert_eq!(c(at(2026, 6, 10, 13, 45)), Err(Unavailable::Taken));
        assert_eq!(c(at(2026, 6, 10, 14, 15)), Err(Unavailable::Taken));
        assert_eq!(c(at(2026, 6, 10, 13, 30)), Ok(()));
        assert_eq!(c(at(2026, 6, 10, 14, 30)), Ok(()));
    }

    #[test]
    fn buffers_and_capacity_counted_at_every_instant() {
        let b = plumber(); // capacity 2
        let drain = b.service("drain").unwrap(); // 90 min + 30 buffer
        let leak = b.service("leak").unwrap(); // 60 min + 30 buffer
                                               // The buffer may run past closing: a drain at 15:30 ends 17:00, buffer to 17:30.
        assert_eq!(
            check(&b, drain, &[], now(), at(2026, 6, 10, 15, 30)),
            Ok(())
        );
        // Two trucks busy 8:00–10:00 and 9:00–11:00 (buffers included): 9:00–10:00 is full.
        let busy = [
            Busy::of(drain, at(2026, 6, 10, 8, 0)),
            Busy::of(leak, at(2026, 6, 10, 9, 30)),
        ];
        assert_eq!(busy[1].end, at(2026, 6, 10, 11, 0));
        // A leak 8:30–10:00 overlaps both only from 9:30: full then.
        assert_eq!(
            check(&b, leak, &busy, now(), at(2026, 6, 10, 8, 30)),
            Err(Unavailable::Taken)
        );
        // Two appointments that never overlap each other leave room for a third everywhere.
        let apart = [
            Busy::of(leak, at(2026, 6, 10, 8, 0)),
            Busy::of(leak, at(2026, 6, 10, 9, 30)),
        ];
        assert_eq!(
            check(&b, drain, &apart, now(), at(2026, 6, 10, 8, 0)),
            Ok(())
        );
        // Friday's lunch break splits the grid: 11:30 does not fit a leak, 13:00 does.
        assert_eq!(
            check(&b, leak, &[], now(), at(2026, 6, 12, 11, 30)),
            Err(Unavailable::OutsideHours)
        );
        assert_eq!(check(&b, leak, &[], now(), at(2026, 6, 12, 13, 0)), Ok(()));
    }

    #[test]
    fn offers_are_the_earliest_then_an_hour_apart() {
        let b = barber();
        let cut = b.service("haircut").unwrap();
        let busy = [
            Busy::of(cut, at(2026, 6, 10, 12, 0)),
            Busy::of(cut, at(2026, 6, 10, 13, 15)),
        ];
        let afternoon = Window {
            from: Some(Time::constant(12, 0, 0, 0)),
            until: Some(Time::constant(17, 0, 0, 0)),
        };
        let day = date(2026, 6, 10);
        let offers = spread(free_starts(&b, cut, &busy, now(), day, day, afternoon), 3);
        assert_eq!(
            offers,
            [
                at(2026, 6, 10, 12, 30),
                at(2026, 6, 10, 13, 45),
                at(2026, 6, 10, 14, 45)
            ]
        );
        // Nothing free → empty, never an invalid offer.
        let closed = date(2026, 6, 14);
        assert!(spread(
            free_starts(&b, cut, &[], now(), closed, closed, Window::default()),
            3
        )
        .is_empty());
    }

    /// Independent of the engine: minute by minute.
    fn brute_free(b: &Business, s: &Service, busy: &[Busy], now: DateTime, t: DateTime) -> bool {
        let m = minute_of_day(t.time());
        let in_interval = b.hours_on(t.date()).iter().any(|(o, c)| {
            let (o, c) = (minute_of_day(*o), minute_of_day(*c));
            m >= o && m + s.duration_min <= c && (m - o) % b.rules.slot_interval_min == 0
        });
        let notice = t >= now + b.rules.min_notice_min.minutes();
        let horizon = t < now + b.rules.horizon_days.days();
        let room = (0..s.duration_min + s.buffer_min).all(|k| {
            let instant = t + k.minutes();
            (busy
                .iter()
                .filter(|x| x.start <= instant && instant < x.end)
                .count() as u32)
                < b.rules.capacity
        });
        in_interval && notice && horizon && room
    }

    fn scenario() -> impl Strategy<Value = (bool, u32, i64, Vec<(usize, i64, i64)>)> {
        (
            any::<bool>(),
            1u32..=3,
            0i64..(14 * 24 * 60),
            prop::collection::vec((0usize..4, 0i64..10, 0i64..(14 * 4)), 0..25),
        )
    }

    fn setup(
        plumber_not_barber: bool,
        capacity: u32,
        now_min: i64,
        raw: &[(usize, i64, i64)],
    ) -> (Business, DateTime, Vec<Busy>) {
        let mut b = if plumber_not_barber {
            plumber()
        } else {
            barber()
        };
        b.rules.capacity = capacity;
        let now = at(2026, 6, 8, 0, 0) + now_min.minutes();
        let mut busy: Vec<Busy> = Vec::new();
        for (si, day, quarter) in raw {
            let s = &b.services[*si];
            let start = date(2026, 6, 8).at(7, 0, 0, 0) + day.days() + (quarter * 15).minutes();
            let candidate = Busy::of(s, start);
            let mut with = busy.clone();
            with.push(candidate);
            // Only calendars that respect capacity, as the store guarantees.
            let ok = (0..(s.duration_min + s.buffer_min)).all(|k| {
                let i = start + k.minutes();
                with.iter().filter(|x| x.start <= i && i < x.end).count() as u32 <= capacity
            });
            if ok {
                busy = with;
            }
        }
        (b, now, busy)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// No offered start ever violates a rule, and no free start is missed.
        #[test]
        fn free_starts_are_exactly_the_free_grid_points((which, capacity, now_min, raw) in scenario()) {
            let (b, now, busy) = setup(which, capacity, now_min, &raw);
            let first = now.date();
            let last = first + 12.days();
            for s in &b.services {
                let engine: Vec<DateTime> = free_starts(&b, s, &busy, now, first, last, Window::default()).collect();
                for t in &engine {
                    prop_assert!(brute_free(&b, s, &busy, now, *t), "offered {t} for {} breaks a rule", s.id);
                }
                // Every minute of the period on which brute force says a start is free is offered.
                let mut d = first;
                while d <= last {
                    for m in (0..24 * 60).step_by(15) {
                        let t = d.at((m / 60) as i8, (m % 60) as i8, 0, 0);
                        if brute_free(&b, s, &busy, now, t) {
                            prop_assert!(engine.contains(&t), "missed free start {t} for {}", s.id);
                        }
                    }
                    d = d.tomorrow().unwrap();
                }
            }
        }

        /// Booking the first free start again and again never puts more than `capacity` at any instant.
        #[test]
        fn capacity_is_never_exceeded((which, capacity, now_min, raw) in scenario(), picks in prop::collection::vec(0usize..4, 1..20)) {
            let (b, now, mut busy) = setup(which, capacity, now_min, &raw);
            for si in picks {
                let s = &b.services[si];
                let next = free_starts(&b, s, &busy, now, now.date(), now.date() + 5.days(), Window::default()).next();
                let Some(t) = next else { continue };
                busy.push(Busy::of(s, t));
                let lo = busy.iter().map(|x| x.start).min().unwrap();
                let hi = busy.iter().map(|x| x.end).max().unwrap();
                let mut i = lo;
                while i < hi {
                    let n = busy.iter().filter(|x| x.start <= i && i < x.end).count() as u32;
                    prop_assert!(n <= b.rules.capacity, "{n} appointments at {i}");
                    i += 5.minutes();
                }
            }
        }

        /// Offers are in order, at most three, and at least an hour apart.
        #[test]
        fn offers_follow_the_policy((which, capacity, now_min, raw) in scenario()) {
            let (b, now, busy) = setup(which, capacity, now_min, &raw);
            for s in &b.services {
                let offers = spread(free_starts(&b, s, &busy, now, now.date(), now.date() + 10.days(), Window::default()), 3);
                prop_assert!(offers.len() <= 3);
                for pair in offers.windows(2) {
                    prop_assert!(pair[1] >= pair[0] + 60.minutes());
                }
                if let Some(first) = offers.first() {
                    let earliest = free_starts(&b, s, &busy, now, now.date(), now.date() + 10.days(), Window::default()).next();
                    prop_assert_eq!(Some(*first), earliest);
                }
            }
        }
    }
}
