//! Business profiles: what an owner configures once (hours, services, booking rules), in the JSON shape
//! of the corpus's `businesses.json`, parsed once into typed values the assistant can use directly.

use std::collections::{BTreeMap, BTreeSet};

use jiff::civil::{Date, Time};
use jiff::tz::TimeZone;
use serde::{Deserialize, Serialize};
use textback_schemas::PhoneNumber;

use crate::assistant::text::normalise_phrase;

/// A file of business profiles: `{"businesses": [...]}`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ProfileFile {
    pub businesses: Vec<Profile>,
}

/// One business as configured (and as stored: the worker keeps this JSON as the source of truth).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    pub id: String,
    pub name: String,
    pub phone_number: String,
    pub owner_phone: String,
    pub timezone: String,
    #[serde(default)]
    pub address: String,
    pub hours: BTreeMap<String, Vec<[String; 2]>>,
    #[serde(default)]
    pub closed_dates: Vec<String>,
    pub booking: BookingRules,
    pub services: Vec<ServiceProfile>,
    #[serde(default)]
    pub urgent_keywords: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BookingRules {
    pub slot_interval_min: i64,
    pub min_notice_min: i64,
    pub horizon_days: i64,
    pub capacity: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceProfile {
    pub id: String,
    pub name: String,
    pub duration_min: i64,
    pub price_cents: i64,
    #[serde(default)]
    pub buffer_after_min: i64,
    #[serde(default)]
    pub aliases: Vec<String>,
}

/// A business ready for the assistant: times parsed, phrases normalised.
#[derive(Debug, Clone)]
pub struct Business {
    pub id: String,
    pub name: String,
    pub phone: PhoneNumber,
    pub owner_phone: PhoneNumber,
    pub tz: TimeZone,
    pub address: String,
    /// Opening intervals per weekday, Monday first.
    pub hours: [Vec<(Time, Time)>; 7],
    pub closed: BTreeSet<Date>,
    pub rules: BookingRules,
    pub services: Vec<Service>,
    /// Normalised urgent phrases.
    pub urgent: Vec<Vec<String>>,
    pub profile: Profile,
}

#[derive(Debug, Clone)]
pub struct Service {
    pub id: String,
    pub name: String,
    pub duration_min: i64,
    pub buffer_min: i64,
    pub price_cents: i64,
    /// The name and every alias, normalised into words.
    pub phrases: Vec<Vec<String>>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("business {id:?}: {problem}")]
pub struct ProfileError {
    pub id: String,
    pub problem: String,
}

const DAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

impl Business {
    pub fn from_profile(p: Profile) -> Result<Self, ProfileError> {
        let err = |problem: String| ProfileError {
            id: p.id.clone(),
            problem,
        };
        let phone =
            PhoneNumber::parse(&p.phone_number).map_err(|e| err(format!("phone_number: {e}")))?;
        let owner_phone =
            PhoneNumber::parse(&p.owner_phone).map_err(|e| err(format!("owner_phone: {e}")))?;
        let tz = TimeZone::get(&p.timezone)
            .map_err(|_| err(format!("unknown timezone {:?}", p.timezone)))?;
        let mut hours: [Vec<(Time, Time)>; 7] = Default::default();
        for (day, intervals) in &p.hours {
            let i = DAYS
                .iter()
                .position(|d| d == day)
                .ok_or_else(|| err(format!("hours: unknown day {day:?}")))?;
            for [open, close] in intervals {
                let open: Time = open
                    .parse()
                    .map_err(|_| err(format!("hours.{day}: bad time {open:?}")))?;
                let close: Time = close
                    .parse()
                    .map_err(|_| err(format!("hours.{day}: bad time {close:?}")))?;
                if close <= open {
                    return Err(err(format!("hours.{day}: closes before it opens")));
                }
                hours[i].push((open, close));
            }
            hours[i].sort();
        }
        let closed = p
            .closed_dates
            .iter()
            .map(|d| {
                d.parse::<Date>()
                    .map_err(|_| err(format!("closed_dates: bad date {d:?}")))
            })
            .collect::<Result<_, _>>()?;
        let r = p.booking;
        if r.slot_interval_min <= 0
            || r.min_notice_min < 0
            || r.horizon_days <= 0
            || r.capacity == 0
        {
            return Err(err(
                "booking: interval, horizon and capacity must be positive".into(),
            ));
        }
        if p.services.is_empty() {
            return Err(err("no services".into()));
        }
        let services = p
            .services
            .iter()
            .map(|s| {
                if s.duration_min <= 0 || s.buffer_after_min < 0 || s.price_cents < 0 {
                    return Err(err(format!(
                        "service {:?}: duration, buffer or price out of range",
                        s.id
                    )));
                }
                let phrases = std::iter::once(&s.name)
                    .chain(&s.aliases)
                    .map(|a| normalise_phrase(a))
                    .filter(|w| !w.is_empty())
                    .collect();
                Ok(Service {
                    id: s.id.clone(),
                    name: s.name.clone(),
                    duration_min: s.duration_min,
                    buffer_min: s.buffer_after_min,
                    price_cents: s.price_cents,
                    phrases,
                })
            })
            .collect::<Result<_, _>>()?;
        let urgent = p
            .urgent_keywords
            .iter()
            .map(|k| normalise_phrase(k))
            .filter(|w| !w.is_empty())
            .collect();
        Ok(Business {
            id: p.id.clone(),
            name: p.name.clone(),
            phone,
            owner_phone,
            tz,
            address: p.address.clone(),
            hours,
            closed,
            rules: r,
            services,
            urgent,
            profile: p,
        })
    }

    pub fn service(&self, id: &str) -> Option<&Service> {
        self.services.iter().find(|s| s.id == id)
    }

    pub fn hours_on(&self, date: Date) -> &[(Time, Time)] {
        if self.closed.contains(&date) {
            return &[];
        }
        &self.hours[date.weekday().to_monday_zero_offset() as usize]
    }
}

pub fn load_file(json: &str) -> Result<Vec<Business>, String> {
    let file: ProfileFile =
        serde_json::from_str(json).map_err(|e| format!("not a businesses file: {e}"))?;
    file.businesses
        .into_iter()
        .map(|p| Business::from_profile(p).map_err(|e| e.to_string()))
        .collect()
}

/// Businesses for unit tests, in the profile format owners use.
#[cfg(test)]
pub mod fixtures {
    use super::*;

    /// A barber: Tue–Fri 9–18, Sat 9–16, closed Sun/Mon and on 2026-07-04; 15-minute grid,
    /// 60 minutes' notice, 30 days ahead, one chair.
    pub fn barber() -> Business {
        let json = r#"{"id": "barber", "name": "Fade & Co", "phone_number": "+16175550100",
            "owner_phone": "+16175550199", "timezone": "America/New_York", "address": "41 Elm Street",
            "hours": {"mon": [], "tue": [["09:00", "18:00"]], "wed": [["09:00", "18:00"]], "thu": [["09:00", "18:00"]],
                      "fri": [["09:00", "18:00"]], "sat": [["09:00", "16:00"]], "sun": []},
            "closed_dates": ["2026-07-04"],
            "booking": {"slot_interval_min": 15, "min_notice_min": 60, "horizon_days": 30, "capacity": 1},
            "services": [
              {"id": "haircut", "name": "Haircut", "duration_min": 30, "price_cents": 3500, "aliases": ["cut", "trim", "fade"]},
              {"id": "beard", "name": "Beard Trim", "duration_min": 15, "price_cents": 1500, "aliases": ["beard", "line up"]},
              {"id": "combo", "name": "Haircut & Beard", "duration_min": 45, "price_cents": 4500, "aliases": ["haircut and beard", "combo"]},
              {"id": "kids", "name": "Kids Cut", "duration_min": 30, "price_cents": 2500, "aliases": ["my son", "my daughter"]}
            ],
            "urgent_keywords": []}"#;
        Business::from_profile(serde_json::from_str(json).unwrap()).unwrap()
    }

    /// A plumber: Mon–Fri 8–17 with a lunch break 12–13 on Fridays, 30-minute grid, services with
    /// buffers, two trucks.
    pub fn plumber() -> Business {
        let json = r#"{"id": "plumber", "name": "Northside Plumbing", "phone_number": "+13125550142",
            "owner_phone": "+13125550143", "timezone": "America/Chicago", "address": "2210 N Halsted St",
            "hours": {"mon": [["08:00", "17:00"]], "tue": [["08:00", "17:00"]], "wed": [["08:00", "17:00"]],
                      "thu": [["08:00", "17:00"]], "fri": [["08:00", "12:00"], ["13:00", "17:00"]], "sat": [], "sun": []},
            "booking": {"slot_interval_min": 30, "min_notice_min": 120, "horizon_days": 21, "capacity": 2},
            "services": [
              {"id": "drain", "name": "Drain Cleaning", "duration_min": 90, "buffer_after_min": 30, "price_cents": 18900, "aliases": ["drain", "clogged", "clog"]},
              {"id": "heater", "name": "Water Heater Repair", "duration_min": 120, "buffer_after_min": 30, "price_cents": 24900, "aliases": ["water heater", "hot water"]},
              {"id": "leak", "name": "Leak Repair", "duration_min": 60, "buffer_after_min": 30, "price_cents": 14900, "aliases": ["leak", "leaking", "leaky"]},
              {"id": "estimate", "name": "Estimate", "duration_min": 30, "buffer_after_min": 30, "price_cents": 0, "aliases": ["quote", "estimate"]}
            ],
            "urgent_keywords": ["burst", "flooding", "emergency"]}"#;
        Business::from_profile(serde_json::from_str(json).unwrap()).unwrap()
    }
}
