//! Recently published event ids, so a carrier's retry is acknowledged without publishing again.
//!
//! Only ids that Kafka accepted are remembered: a webhook that got 503 is not a duplicate when the
//! carrier retries it. Two copies of one webhook arriving at once may both be published; they carry
//! the same id and the worker records each id once. This table saves work; it is not what makes
//! processing exactly-once.

use std::time::{Duration, Instant};

use dashmap::DashMap;
use uuid::Uuid;

pub struct Seen {
    ids: DashMap<Uuid, Instant>,
    ttl: Duration,
}

impl Seen {
    pub fn new(ttl: Duration) -> Self {
        Seen {
            ids: DashMap::new(),
            ttl,
        }
    }

    pub fn contains(&self, id: &Uuid, now: Instant) -> bool {
        self.ids
            .get(id)
            .is_some_and(|at| now.saturating_duration_since(*at) < self.ttl)
    }

    pub fn remember(&self, id: Uuid, now: Instant) {
        self.ids.insert(id, now);
    }

    /// Drops expired ids; run periodically off the request path.
    pub fn sweep(&self, now: Instant) {
        self.ids
            .retain(|_, at| now.saturating_duration_since(*at) < self.ttl);
    }

    pub fn len(&self) -> usize {
        self.ids.len()
    }

    pub fn ttl(&self) -> Duration {
        self.ttl
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remembers_until_the_ttl_passes() {
        let seen = Seen::new(Duration::from_secs(60));
        let t0 = Instant::now();
        let id = Uuid::from_u128(1);
        assert!(!seen.contains(&id, t0));
        seen.remember(id, t0);
        assert!(seen.contains(&id, t0 + Duration::from_secs(59)));
        assert!(!seen.contains(&id, t0 + Duration::from_secs(60)));
        assert!(!seen.contains(&Uuid::from_u128(2), t0));
        seen.sweep(t0 + Duration::from_secs(30));
        assert_eq!(seen.len(), 1);
        seen.sweep(t0 + Duration::from_secs(61));
        assert_eq!(seen.len(), 0);
    }
}
