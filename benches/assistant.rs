//! Micro-benchmarks of the assistant: understanding a caller's text, searching free slots over a busy
//! 30-day calendar, and deciding one whole caller message (target: under 100 µs).
//! Run: `cargo bench --bench assistant`.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use jiff::civil::{date, Time};
use jiff::{Timestamp, ToSpan};
use textback_schemas::PhoneNumber;
use textback_worker::assistant::parse::{parse, Window};
use textback_worker::assistant::slots::{free_starts, spread, Busy};
use textback_worker::assistant::{respond, Appointment, Input, State};
use textback_worker::profile::{load_file, Business};

const BUSINESS: &str = r#"{"businesses": [{"id": "northside", "name": "Northside Plumbing", "phone_number": "+13125550142",
  "owner_phone": "+13125550143", "timezone": "America/Chicago", "address": "2210 N Halsted St, Chicago, IL",
  "hours": {"mon": [["08:00", "17:00"]], "tue": [["08:00", "17:00"]], "wed": [["08:00", "17:00"]], "thu": [["08:00", "17:00"]],
            "fri": [["08:00", "17:00"]], "sat": [["09:00", "13:00"]], "sun": []},
  "booking": {"slot_interval_min": 30, "min_notice_min": 120, "horizon_days": 30, "capacity": 2},
  "services": [
    {"id": "drain", "name": "Drain Cleaning", "duration_min": 90, "buffer_after_min": 30, "price_cents": 18900,
     "aliases": ["drain", "clog", "clogged", "slow drain", "backed up", "backing up", "unclog"]},
    {"id": "heater", "name": "Water Heater Repair", "duration_min": 120, "buffer_after_min": 30, "price_cents": 24900,
     "aliases": ["water heater", "no hot water", "hot water", "heater"]},
    {"id": "leak", "name": "Leak Repair", "duration_min": 60, "buffer_after_min": 30, "price_cents": 14900,
     "aliases": ["leak", "leaking", "leaky", "drip", "dripping"]},
    {"id": "estimate", "name": "Estimate", "duration_min": 30, "buffer_after_min": 30, "price_cents": 0,
     "aliases": ["estimate", "quote", "bid", "remodel"]}],
  "urgent_keywords": ["burst", "flooding", "flooded", "sewage", "emergency"]}]}"#;

const TEXTS: [&str; 6] = [
    "my kitchen sink is clogged, can someone come tomorrow at 10?",
    "no hot water since this morning",
    "do you have anything tomorrow afternoon?",
    "need a quote for a bathroom remodel sometime next week",
    "hey I need to reschedule, can we do friday morning instead",
    "2",
];

fn business() -> Business {
    load_file(BUSINESS).unwrap().remove(0)
}

/// A calendar about three-quarters full for 30 days: two trucks, appointments back to back.
fn busy_calendar(b: &Business) -> Vec<Appointment> {
    let mut list = Vec::new();
    let mut d = date(2026, 6, 8);
    for day in 0..30 {
        for (k, start) in ["08:00", "09:30", "11:00", "13:00", "14:30"]
            .iter()
            .enumerate()
        {
            if (day + k) % 4 == 3 {
                continue;
            }
            let t: Time = start.parse().unwrap();
            let service = &b.services[(day + k) % b.services.len()];
            let start = d.to_datetime(t).to_zoned(b.tz.clone()).unwrap().timestamp();
            list.push(Appointment {
                id: uuid::Uuid::new_v4(),
                service_id: service.id.clone(),
                start,
                caller: PhoneNumber::parse(&format!("+1312555{:04}", day * 10 + k)).unwrap(),
            });
        }
        d = d.tomorrow().unwrap();
    }
    list
}

fn benches(c: &mut Criterion) {
    let b = business();
    let today = date(2026, 6, 8);
    let mut g = c.benchmark_group("assistant");
    g.throughput(Throughput::Elements(TEXTS.len() as u64));
    g.bench_function("parse_6_texts", |bench| {
        bench.iter(|| {
            TEXTS
                .iter()
                .map(|t| parse(t, &b, today))
                .filter(|p| p.service.is_some())
                .count()
        })
    });
    g.throughput(Throughput::Elements(1));

    let calendar = busy_calendar(&b);
    let busy: Vec<Busy> = calendar
        .iter()
        .map(|a| {
            Busy::of(
                b.service(&a.service_id).unwrap(),
                a.start.to_zoned(b.tz.clone()).datetime(),
            )
        })
        .collect();
    let now = date(2026, 6, 8).at(7, 0, 0, 0);
    let heater = b.service("heater").unwrap();
    g.bench_function("slot_search_30_days_earliest_3", |bench| {
        bench.iter(|| {
            spread(
                free_starts(
                    &b,
                    heater,
                    &busy,
                    now,
                    today,
                    today + 30.days(),
                    Window::default(),
                ),
                3,
            )
        })
    });
    g.bench_function("slot_search_all_free_starts_30_days", |bench| {
        bench.iter(|| {
            free_starts(
                &b,
                heater,
                &busy,
                now,
                today,
                today + 30.days(),
                Window::default(),
            )
            .count()
        })
    });

    let caller = PhoneNumber::parse("+13125559999").unwrap();
    let at: Timestamp = "2026-06-08T14:00:00Z".parse().unwrap();
    g.bench_function("respond_one_message_busy_calendar", |bench| {
        bench.iter(|| {
            let input = Input {
                business: &b,
                caller: &caller,
                text: "no hot water, do you have anything thursday afternoon?",
                now: at,
                opted_out: false,
                calendar: &calendar,
            };
            respond(&State::default(), &input)
        })
    });
    let booking = "my kitchen sink is clogged, can someone come tomorrow at 10?";
    g.bench_function("respond_one_message_books", |bench| {
        bench.iter(|| {
            let input = Input {
                business: &b,
                caller: &caller,
                text: booking,
                now: at,
                opted_out: false,
                calendar: &calendar,
            };
            respond(&State::default(), &input)
        })
    });
    g.finish();
}

criterion_group!(assistant, benches);
criterion_main!(assistant);
