//! The in-memory store: the embedded default for a first run, `eval` and tests of pure logic.
//!
//! One mutex over all tables, held for a whole transaction, so transactions are serial; a
//! transaction works on a copy of the tables and `commit` swaps it in, so an abandoned transaction
//! changes nothing. Fine for a first look and for tests; PostgreSQL is what production runs.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use jiff::{SignedDuration, Timestamp};
use textback_schemas::PhoneNumber;
use tokio::sync::{Mutex, OwnedMutexGuard};
use uuid::Uuid;

use super::{
    busy_until, exceeds, Claimed, Conversation, Inbound, NewAppointment, Outgoing, Result,
    SlotTaken, Store, Tx,
};
use crate::assistant::Appointment;
use crate::profile::Business;

#[derive(Debug, Clone)]
pub struct StoredAppointment {
    pub business_id: String,
    pub appointment: Appointment,
    pub busy_until: Timestamp,
    pub cancelled_at: Option<Timestamp>,
}

/// An outgoing text and where it stands.
#[derive(Debug, Clone)]
pub struct OutRecord {
    pub message: Outgoing,
    /// queued | sent | delivered | undelivered | failed | suppressed
    pub status: String,
    pub carrier_message_id: Option<String>,
    pub error_code: Option<String>,
    /// Still in the outbox (not yet accepted by the carrier, not failed, not suppressed).
    pub pending: bool,
    pub attempts: u32,
    pub next_attempt_at: Timestamp,
    pub lease_until: Option<Timestamp>,
}

#[derive(Default, Clone)]
pub struct Tables {
    pub businesses: HashMap<String, Arc<Business>>,
    pub numbers: HashMap<PhoneNumber, String>,
    pub events: HashSet<Uuid>,
    pub opt_outs: HashMap<(String, PhoneNumber), bool>,
    pub conversations: HashMap<(String, PhoneNumber), Conversation>,
    pub appointments: Vec<StoredAppointment>,
    pub inbound: Vec<Inbound>,
    pub outbox: Vec<OutRecord>,
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

    /// A copy of the tables, for tests, `eval` and the demo.
    pub async fn snapshot(&self) -> Tables {
        self.tables.lock().await.clone()
    }

    async fn with_record(&self, id: Uuid, f: impl FnOnce(&mut OutRecord)) {
        let mut t = self.tables.lock().await;
        if let Some(r) = t.outbox.iter_mut().find(|r| r.message.id == id) {
            f(r);
        }
    }
}

impl Store for MemoryStore {
    type Tx = MemoryTx;

    async fn begin(&self) -> Result<MemoryTx> {
        let guard = self.tables.clone().lock_owned().await;
        let work = guard.clone();
        Ok(MemoryTx { guard, work })
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

    async fn resume(&self, business_id: &str, caller: &PhoneNumber) -> Result<bool> {
        let mut t = self.tables.lock().await;
        match t
            .conversations
            .get_mut(&(business_id.to_string(), caller.clone()))
        {
            Some(c) if c.state.handed_off => {
                c.state.handed_off = false;
                c.state.unclear = 0;
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn texts_to(&self, to: &PhoneNumber) -> Result<Vec<Outgoing>> {
        let t = self.tables.lock().await;
        Ok(t.outbox
            .iter()
            .filter(|r| r.message.to == *to && r.status != "suppressed")
            .map(|r| r.message.clone())
            .collect())
    }

    async fn claim_due(
        &self,
        now: Timestamp,
        limit: usize,
        lease: SignedDuration,
    ) -> Result<Vec<Claimed>> {
        let mut t = self.tables.lock().await;
        let mut due: Vec<&mut OutRecord> = t
            .outbox
            .iter_mut()
            .filter(|r| {
                r.pending && r.next_attempt_at <= now && r.lease_until.is_none_or(|l| l <= now)
            })
            .collect();
        due.sort_by_key(|r| (r.next_attempt_at, r.message.queued_at));
        Ok(due
            .into_iter()
            .take(limit)
            .map(|r| {
                let maybe_sent = r.lease_until.is_some();
                r.lease_until = Some(now + lease);
                Claimed {
                    message: r.message.clone(),
                    attempts: r.attempts,
                    maybe_sent,
                }
            })
            .collect())
    }

    async fn mark_sent(&self, id: Uuid, carrier_message_id: &str, _at: Timestamp) -> Result<()> {
        self.with_record(id, |r| {
            r.pending = false;
            r.status = "sent".into();
            r.carrier_message_id = Some(carrier_message_id.to_string());
            r.attempts += 1;
        })
        .await;
        Ok(())
    }

    async fn postpone(&self, id: Uuid, next_at: Timestamp) -> Result<()> {
        self.with_record(id, |r| {
            r.next_attempt_at = next_at;
            r.lease_until = None;
        })
        .await;
        Ok(())
    }

    async fn mark_retry(&self, id: Uuid, next_at: Timestamp) -> Result<()> {
        self.with_record(id, |r| {
            r.attempts += 1;
            r.next_attempt_at = next_at;
            r.lease_until = None;
        })
        .await;
        Ok(())
    }

    async fn mark_failed(
        &self,
        id: Uuid,
        error_code: &str,
        opt_out: bool,
        at: Timestamp,
    ) -> Result<()> {
        let mut recipient = None;
        self.with_record(id, |r| {
            r.pending = false;
            r.status = "failed".into();
            r.error_code = Some(error_code.to_string());
            r.attempts += 1;
            recipient = Some((r.message.business_id.clone(), r.message.to.clone()));
        })
        .await;
        if let (true, Some((business_id, caller))) = (opt_out, recipient) {
            let mut tx = self.begin().await?;
            tx.set_opted_out(&business_id, &caller, true, at).await?;
            tx.commit().await?;
        }
        Ok(())
    }

    async fn outbox_depth(&self) -> Result<u64> {
        Ok(self
            .tables
            .lock()
            .await
            .outbox
            .iter()
            .filter(|r| r.pending)
            .count() as u64)
    }
}

impl MemoryTx {
    fn fits(
        &self,
        business: &Business,
        skip: Option<Uuid>,
        start: Timestamp,
        end: Timestamp,
    ) -> bool {
        let active: Vec<(Timestamp, Timestamp)> = self
            .work
            .appointments
            .iter()
            .filter(|a| {
                a.business_id == business.id
                    && a.cancelled_at.is_none()
                    && Some(a.appointment.id) != skip
            })
            .map(|a| (a.appointment.start, a.busy_until))
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
        if opted_out {
            for r in self.work.outbox.iter_mut().filter(|r| {
                r.pending && r.message.business_id == business_id && r.message.to == *caller
            }) {
                r.pending = false;
                r.status = "suppressed".into();
            }
        }
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
            .filter(|a| {
                a.business_id == business.id && a.cancelled_at.is_none() && a.busy_until > from
            })
            .map(|a| a.appointment.clone())
            .collect();
        list.sort_by_key(|a| a.start);
        Ok(list)
    }

    async fn book(
        &mut self,
        new: NewAppointment<'_>,
    ) -> Result<std::result::Result<(), SlotTaken>> {
        let end = busy_until(new.business, new.service_id, new.start);
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
            busy_until: end,
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
        let end = busy_until(business, service_id, start);
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
            a.busy_until = end;
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

    async fn record_inbound(&mut self, message: &Inbound) -> Result<()> {
        self.work.inbound.push(message.clone());
        Ok(())
    }

    async fn update_status(
        &mut self,
        carrier_message_id: &str,
        status: &str,
        error_code: Option<&str>,
    ) -> Result<()> {
        if let Some(r) = self
            .work
            .outbox
            .iter_mut()
            .find(|r| r.carrier_message_id.as_deref() == Some(carrier_message_id))
        {
            r.status = status.to_string();
            r.error_code = error_code.map(str::to_string);
        }
        Ok(())
    }

    async fn enqueue(&mut self, message: &Outgoing) -> Result<()> {
        self.work.outbox.push(OutRecord {
            message: message.clone(),
            status: "queued".into(),
            carrier_message_id: None,
            error_code: None,
            pending: true,
            attempts: 0,
            next_attempt_at: message.queued_at,
            lease_until: None,
        });
        Ok(())
    }

    async fn commit(mut self) -> Result<()> {
        *self.guard = std::mem::take(&mut self.work);
        Ok(())
    }
}
