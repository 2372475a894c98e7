//! The in-memory store: the embedded default for a first run, `eval` and tests of pure logic.
//!
//! One mutex over all tables, held for a whole transaction, so transactions are serial; a
//! transaction works on a copy of the tables and `commit` swaps it in, so an abandoned transaction
//! changes nothing. Fine for a first look and for tests; PostgreSQL is what production runs.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use jiff::{Timestamp, ToSpan};
use textback_schemas::PhoneNumber;
use tokio::sync::{Mutex, OwnedMutexGuard};
use uuid::Uuid;

use super::{Conversation, NewAppointment, Outgoing, Result, SlotTaken, Store, Tx};
use crate::assistant::Appointment;
use crate::profile::Business;

#[derive(Debug, Clone)]
pub struct StoredAppointment {
    pub business_id: String,
    pub appointment: Appointment,
    /// Busy until (buffer included).
    pub end: Timestamp,
    pub cancelled_at: Option<Timestamp>,
}

#[derive(Default, Clone)]
pub struct Tables {
    pub businesses: HashMap<String, Arc<Business>>,
    pub numbers: HashMap<PhoneNumber, String>,
    pub events: HashSet<Uuid>,
    pub opt_outs: HashMap<(String, PhoneNumber), bool>,
    pub conversations: HashMap<(String, PhoneNumber), Conversation>,
    pub appointments: Vec<StoredAppointment>,
    pub inbound: Vec<(Uuid, String, String, Timestamp)>,
    pub outbox: Vec<Outgoing>,
}

#[derive(Clone, Default)]
pub struct MemoryStore {
    tables: Arc<Mutex<Tables>>,
}

pub struct MemoryTx {
    guard: OwnedMutexGuard<Tables>,
    work: Tables,
}

impl MemoryStore {
    pub fn new() -> Self {
        Self::default()
    }

    /// A read-only look at the tables, for tests, `eval` and the demo.
    pub async fn snapshot(&self) -> Tables {
        self.tables.lock().await.clone()
    }
}

impl Store for MemoryStore {
    type Tx = MemoryTx;

    async fn begin(&self) -> Result<MemoryTx> {
        let guard = self.tables.clone().lock_owned().await;
        let work = guard.clone();
        Ok(MemoryTx { guard, work })
    }

    async fn texts_to(&self, to: &PhoneNumber) -> Result<Vec<Outgoing>> {
        Ok(self
            .tables
            .lock()
            .await
            .outbox
            .iter()
            .filter(|m| m.to == *to)
            .cloned()
            .collect())
    }

    async fn upsert_business(&self, business: &Business) -> Result<()> {
        let mut t = self.tables.lock().await;
        t.numbers.retain(|_, id| *id != business.id);
        t.numbers
            .insert(business.phone.clone(), business.id.clone());
        t.businesses
            .insert(business.id.clone(), Arc::new(business.clone()));
        Ok(())
    }
}

fn end_of(business: &Business, service_id: &str, start: Timestamp) -> Timestamp {
    let minutes = business
        .service(service_id)
        .map_or(0, |s| s.duration_min + s.buffer_min);
    start + minutes.minutes()
}

/// Whether adding `[start, end)` would put `capacity` or more appointments at some instant.
fn exceeds(
    existing: &[&StoredAppointment],
    capacity: u32,
    start: Timestamp,
    end: Timestamp,
) -> bool {
    let overlapping: Vec<&&StoredAppointment> = existing
        .iter()
        .filter(|a| a.appointment.start < end && a.end > start)
        .collect();
    std::iter::once(start)
        .chain(
            overlapping
                .iter()
                .map(|a| a.appointment.start)
                .filter(|s| *s > start),
        )
        .any(|p| {
            overlapping
                .iter()
                .filter(|a| a.appointment.start <= p && p < a.end)
                .count() as u32
                >= capacity
        })
}

impl MemoryTx {
    fn fits(
        &self,
        business: &Business,
        skip: Option<Uuid>,
        start: Timestamp,
        end: Timestamp,
    ) -> bool {
        let active: Vec<&StoredAppointment> = self
            .work
            .appointments
            .iter()
            .filter(|a| {
                a.business_id == business.id
                    && a.cancelled_at.is_none()
                    && Some(a.appointment.id) != skip
            })
            .collect();
        !exceeds(&active, business.rules.capacity, start, end)
    }
}

impl Tx for MemoryTx {
    async fn claim_event(&mut self, id: Uuid) -> Result<bool> {
        Ok(self.work.events.insert(id))
    }

    async fn business_by_number(&mut self, number: &PhoneNumber) -> Result<Option<Arc<Business>>> {
        Ok(self
            .work
            .numbers
            .get(number)
            .and_then(|id| self.work.businesses.get(id))
            .cloned())
    }

    async fn opted_out(&mut self, business_id: &str, caller: &PhoneNumber) -> Result<bool> {
        Ok(self
            .work
            .opt_outs
            .get(&(business_id.to_string(), caller.clone()))
            .copied()
            .unwrap_or(false))
    }

    async fn set_opted_out(
        &mut self,
        business_id: &str,
        caller: &PhoneNumber,
        opted_out: bool,
        _at: Timestamp,
    ) -> Result<()> {
        self.work
            .opt_outs
            .insert((business_id.to_string(), caller.clone()), opted_out);
        Ok(())
    }

    async fn conversation(
        &mut self,
        business_id: &str,
        caller: &PhoneNumber,
    ) -> Result<Option<Conversation>> {
        Ok(self
            .work
            .conversations
            .get(&(business_id.to_string(), caller.clone()))
            .cloned())
    }

    async fn save_conversation(&mut self, c: &Conversation) -> Result<()> {
        self.work
            .conversations
            .insert((c.business_id.clone(), c.caller.clone()), c.clone());
        Ok(())
    }

    async fn appointments(
        &mut self,
        business: &Business,
        from: Timestamp,
    ) -> Result<Vec<Appointment>> {
        let mut list: Vec<Appointment> = self
            .work
            .appointments
            .iter()
            .filter(|a| a.business_id == business.id && a.cancelled_at.is_none() && a.end > from)
            .map(|a| a.appointment.clone())
            .collect();
        list.sort_by_key(|a| a.start);
        Ok(list)
    }

    async fn book(
        &mut self,
        new: NewAppointment<'_>,
    ) -> Result<std::result::Result<(), SlotTaken>> {
        let end = end_of(new.business, new.service_id, new.start);
        if !self.fits(new.business, None, new.start, end) {
            return Ok(Err(SlotTaken));
        }
        self.work.appointments.push(StoredAppointment {
            business_id: new.business.id.clone(),
            appointment: Appointment {
                id: new.id,
                service_id: new.service_id.to_string(),
                start: new.start,
                caller: new.caller.clone(),
            },
            end,
            cancelled_at: None,
        });
        Ok(Ok(()))
    }

    async fn move_appointment(
        &mut self,
        business: &Business,
        id: Uuid,
        service_id: &str,
        start: Timestamp,
    ) -> Result<std::result::Result<(), SlotTaken>> {
        let end = end_of(business, service_id, start);
        if !self.fits(business, Some(id), start, end) {
            return Ok(Err(SlotTaken));
        }
        if let Some(a) = self
            .work
            .appointments
            .iter_mut()
            .find(|a| a.appointment.id == id)
        {
            a.appointment.start = start;
            a.appointment.service_id = service_id.to_string();
            a.end = end;
        }
        Ok(Ok(()))
    }

    async fn cancel_appointment(&mut self, id: Uuid, at: Timestamp) -> Result<()> {
        if let Some(a) = self
            .work
            .appointments
            .iter_mut()
            .find(|a| a.appointment.id == id)
        {
            a.cancelled_at = Some(at);
        }
        Ok(())
    }

    async fn record_inbound(
        &mut self,
        conversation_id: Uuid,
        carrier_message_id: &str,
        body: &str,
        at: Timestamp,
    ) -> Result<()> {
        self.work.inbound.push((
            conversation_id,
            carrier_message_id.to_string(),
            body.to_string(),
            at,
        ));
        Ok(())
    }

    async fn enqueue(&mut self, message: &Outgoing) -> Result<()> {
        self.work.outbox.push(message.clone());
        Ok(())
    }

    async fn commit(mut self) -> Result<()> {
        *self.guard = std::mem::take(&mut self.work);
        Ok(())
    }
}
