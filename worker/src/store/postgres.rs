//! The PostgreSQL store: production's system of record.
//!
//! One transaction per event on a pooled connection (deadpool-postgres). The business row is locked
//! (`FOR NO KEY UPDATE`) as the transaction reads it, so everything that happens to one business —
//! bookings above all — is serialised; capacity is checked against that stable calendar, and the
//! `no_double_booking` exclusion constraint backs it where capacity is 1. Parsed business profiles
//! are cached by id and `updated_at`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use deadpool_postgres::{Manager, ManagerConfig, Object, Pool, RecyclingMethod};
use jiff::{SignedDuration, Timestamp};
use textback_schemas::{Carrier, PhoneNumber, SQL_MIGRATIONS};
use tokio_postgres::error::SqlState;
use tokio_postgres::types::Json;
use tokio_postgres::{Config, NoTls, Row};
use uuid::Uuid;

use super::{
    busy_until, exceeds, Claimed, Conversation, Inbound, NewAppointment, OutKind, Outgoing, Result,
    SlotTaken, Store, StoreError, Tx,
};
use crate::assistant::{Appointment, State};
use crate::profile::{Business, Profile};

type Cache = Arc<Mutex<HashMap<String, (Timestamp, Arc<Business>)>>>;

#[derive(Clone)]
pub struct PgStore {
    pool: Pool,
    businesses: Cache,
}

pub struct PgTx {
    client: Option<Object>,
    businesses: Cache,
}

impl From<tokio_postgres::Error> for StoreError {
    fn from(e: tokio_postgres::Error) -> Self {
        if e.is_closed() || e.as_db_error().is_none() {
            StoreError::Unavailable(e.to_string())
        } else {
            StoreError::Other(e.to_string())
        }
    }
}

impl From<deadpool_postgres::PoolError> for StoreError {
    fn from(e: deadpool_postgres::PoolError) -> Self {
        StoreError::Unavailable(e.to_string())
    }
}

fn phone(s: String) -> Result<PhoneNumber> {
    PhoneNumber::parse(&s).map_err(|e| StoreError::Other(format!("stored number {s:?}: {e}")))
}

impl PgStore {
    /// A pool for `url` (`postgres://user@host:port/db`). With `schema`, every connection works in
    /// that schema (tests give each test its own).
    pub fn new(url: &str, schema: Option<&str>, max_connections: usize) -> Result<Self> {
        let mut config: Config = url
            .parse()
            .map_err(|e| StoreError::Other(format!("database url: {e}")))?;
        if let Some(schema) = schema {
            config.options(format!("-c search_path={schema},public"));
        }
        config.application_name("textback");
        let manager = Manager::from_config(
            config,
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(max_connections)
            .build()
            .map_err(|e| StoreError::Other(format!("connection pool: {e}")))?;
        Ok(PgStore {
            pool,
            businesses: Arc::default(),
        })
    }

    /// Applies the migrations not yet applied (in `schema`, created if missing). Returns the versions
    /// applied now. Safe to run from several processes at once: they take turns.
    pub async fn migrate(&self, schema: Option<&str>) -> Result<Vec<i32>> {
        let client = self.pool.get().await?;
        client
            .batch_execute("SELECT pg_advisory_lock(748201)")
            .await?;
        let result = async {
            if let Some(schema) = schema {
                client.batch_execute(&format!("CREATE SCHEMA IF NOT EXISTS \"{}\"", schema.replace('"', ""))).await?;
            }
            client
                .batch_execute(
                    "CREATE TABLE IF NOT EXISTS schema_migrations (version integer PRIMARY KEY, name text NOT NULL, \
                     applied_at timestamptz NOT NULL DEFAULT clock_timestamp())",
                )
                .await?;
            let done: Vec<i32> = client.query("SELECT version FROM schema_migrations", &[]).await?.iter().map(|r| r.get(0)).collect();
            let mut applied = Vec::new();
            for (version, name, sql) in SQL_MIGRATIONS {
                if done.contains(version) {
                    continue;
                }
                client.batch_execute("BEGIN").await?;
                let step = async {
                    client.batch_execute(sql).await?;
                    client.execute("INSERT INTO schema_migrations (version, name) VALUES ($1, $2)", &[version, name]).await?;
                    client.batch_execute("COMMIT").await
                };
                if let Err(e) = step.await {
                    let _ = client.batch_execute("ROLLBACK").await;
                    return Err(StoreError::Other(format!("migration {name}: {e}")));
                }
                applied.push(*version);
            }
            Ok(applied)
        }
        .await;
        client
            .batch_execute("SELECT pg_advisory_unlock(748201)")
            .await?;
        result
    }

    pub fn pool(&self) -> &Pool {
        &self.pool
    }
}

fn outgoing(row: &Row) -> Result<Outgoing> {
    let kind: String = row.get("kind");
    let carrier: String = row.get("carrier");
    Ok(Outgoing {
        id: row.get("id"),
        carrier: if carrier == "telnyx" {
            Carrier::Telnyx
        } else {
            Carrier::Twilio
        },
        business_id: row.get("business_id"),
        conversation_id: row.get("conversation_id"),
        from: phone(row.get("from_number"))?,
        to: phone(row.get("to_number"))?,
        body: row.get("body"),
        kind: OutKind::parse(&kind)
            .ok_or_else(|| StoreError::Other(format!("unknown message kind {kind:?}")))?,
        queued_at: row.get("created_at"),
        event_received_at: row
            .get::<_, Option<Timestamp>>("event_received_at")
            .unwrap_or(row.get("created_at")),
    })
}

const OUTGOING_COLUMNS: &str =
    "m.id, m.carrier, m.business_id, m.conversation_id, m.from_number, m.to_number, m.body, m.kind, m.created_at, m.event_received_at";

/// Drops texts to `caller` still waiting in the outbox.
const SUPPRESS_PENDING: &str = "WITH dropped AS (DELETE FROM outbox o USING messages m \
     WHERE o.message_id = m.id AND m.business_id = $1 AND m.to_number = $2 RETURNING m.id) \
     UPDATE messages SET status = 'suppressed' WHERE id IN (SELECT id FROM dropped)";

const UPSERT_OPT_OUT: &str = "INSERT INTO opt_outs (business_id, caller, opted_out, changed_at) VALUES ($1, $2, $3, $4) \
     ON CONFLICT (business_id, caller) DO UPDATE SET opted_out = EXCLUDED.opted_out, changed_at = EXCLUDED.changed_at";

impl Store for PgStore {
    type Tx = PgTx;

    async fn begin(&self) -> Result<PgTx> {
        let client = self.pool.get().await?;
        client.batch_execute("BEGIN").await?;
        Ok(PgTx {
            client: Some(client),
            businesses: self.businesses.clone(),
        })
    }

    async fn upsert_business(&self, business: &Business) -> Result<()> {
        let client = self.pool.get().await?;
        client
            .execute(
                "INSERT INTO businesses (id, phone_number, profile, capacity) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (id) DO UPDATE SET phone_number = EXCLUDED.phone_number, profile = EXCLUDED.profile, \
                 capacity = EXCLUDED.capacity, updated_at = clock_timestamp()",
                &[&business.id, &business.phone.as_str(), &Json(&business.profile), &(business.rules.capacity as i32)],
            )
            .await?;
        Ok(())
    }

    async fn resume(&self, business_id: &str, caller: &PhoneNumber) -> Result<bool> {
        let client = self.pool.get().await?;
        let n = client
            .execute(
                "UPDATE conversations SET state = state || '{\"handed_off\": false, \"unclear\": 0}'::jsonb \
                 WHERE business_id = $1 AND caller = $2 AND (state->>'handed_off')::boolean",
                &[&business_id, &caller.as_str()],
            )
            .await?;
        Ok(n == 1)
    }

    async fn texts_to(&self, to: &PhoneNumber) -> Result<Vec<Outgoing>> {
        let client = self.pool.get().await?;
        let sql = format!(
            "SELECT {OUTGOING_COLUMNS} FROM messages m WHERE m.direction = 'outbound' AND m.to_number = $1 \
             AND m.status <> 'suppressed' ORDER BY m.seq"
        );
        client
            .query(&sql, &[&to.as_str()])
            .await?
            .iter()
            .map(outgoing)
            .collect()
    }

    async fn claim_due(
        &self,
        now: Timestamp,
        limit: usize,
        lease: SignedDuration,
    ) -> Result<Vec<Claimed>> {
        let client = self.pool.get().await?;
        let sql = format!(
            "WITH due AS (SELECT message_id, lease_until IS NOT NULL AS maybe_sent FROM outbox \
               WHERE next_attempt_at <= $1 AND (lease_until IS NULL OR lease_until <= $1) \
               ORDER BY next_attempt_at LIMIT $3 FOR UPDATE SKIP LOCKED), \
             claimed AS (UPDATE outbox o SET lease_until = $2 FROM due WHERE o.message_id = due.message_id \
               RETURNING o.message_id, o.attempts, due.maybe_sent) \
             SELECT {OUTGOING_COLUMNS}, c.attempts, c.maybe_sent FROM claimed c JOIN messages m ON m.id = c.message_id ORDER BY m.seq"
        );
        let stmt = client.prepare_cached(&sql).await?;
        let rows = client
            .query(&stmt, &[&now, &(now + lease), &(limit as i64)])
            .await?;
        rows.iter()
            .map(|r| {
                Ok(Claimed {
                    message: outgoing(r)?,
                    attempts: r.get::<_, i32>("attempts") as u32,
                    maybe_sent: r.get("maybe_sent"),
                })
            })
            .collect()
    }

    async fn mark_sent(&self, id: Uuid, carrier_message_id: &str, at: Timestamp) -> Result<()> {
        let client = self.pool.get().await?;
        let stmt = client
            .prepare_cached(
                "WITH done AS (DELETE FROM outbox WHERE message_id = $1) \
                 UPDATE messages SET status = 'sent', carrier_message_id = $2, sent_at = $3 WHERE id = $1",
            )
            .await?;
        client
            .execute(&stmt, &[&id, &carrier_message_id, &at])
            .await?;
        Ok(())
    }

    async fn postpone(&self, id: Uuid, next_at: Timestamp) -> Result<()> {
        let client = self.pool.get().await?;
        client
            .execute(
                "UPDATE outbox SET next_attempt_at = $2, lease_until = NULL WHERE message_id = $1",
                &[&id, &next_at],
            )
            .await?;
        Ok(())
    }

    async fn mark_retry(&self, id: Uuid, next_at: Timestamp) -> Result<()> {
        let client = self.pool.get().await?;
        client
            .execute(
                "UPDATE outbox SET attempts = attempts + 1, next_attempt_at = $2, lease_until = NULL WHERE message_id = $1",
                &[&id, &next_at],
            )
            .await?;
        Ok(())
    }

    async fn mark_failed(
        &self,
        id: Uuid,
        error_code: &str,
        opt_out: bool,
        at: Timestamp,
    ) -> Result<()> {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        tx.execute("DELETE FROM outbox WHERE message_id = $1", &[&id])
            .await?;
        let row = tx
            .query_opt(
                "UPDATE messages SET status = 'failed', error_code = $2 WHERE id = $1 RETURNING business_id, to_number",
                &[&id, &error_code],
            )
            .await?;
        if let (true, Some(row)) = (opt_out, row) {
            let (business_id, caller): (String, String) = (row.get(0), row.get(1));
            tx.execute(UPSERT_OPT_OUT, &[&business_id, &caller, &true, &at])
                .await?;
            tx.execute(SUPPRESS_PENDING, &[&business_id, &caller])
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn outbox_depth(&self) -> Result<u64> {
        let client = self.pool.get().await?;
        let n: i64 = client
            .query_one("SELECT count(*) FROM outbox", &[])
            .await?
            .get(0);
        Ok(n as u64)
    }
}

impl PgTx {
    fn client(&self) -> &Object {
        self.client
            .as_ref()
            .expect("a transaction is used only until commit")
    }

    /// Busy intervals overlapping `[start, end)`, other than `skip`.
    async fn overlapping(
        &self,
        business: &Business,
        start: Timestamp,
        end: Timestamp,
        skip: Option<Uuid>,
    ) -> Result<Vec<(Timestamp, Timestamp)>> {
        let c = self.client();
        let stmt = c
            .prepare_cached(
                "SELECT starts_at, busy_until FROM appointments WHERE business_id = $1 AND status = 'booked' \
                 AND starts_at < $3 AND busy_until > $2 AND ($4::uuid IS NULL OR id <> $4)",
            )
            .await?;
        Ok(c.query(&stmt, &[&business.id, &start, &end, &skip])
            .await?
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect())
    }

    /// Runs a write that the exclusion constraint may refuse, keeping the transaction usable.
    async fn guarded(
        &self,
        sql: &str,
        params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
    ) -> Result<std::result::Result<(), SlotTaken>> {
        let c = self.client();
        c.batch_execute("SAVEPOINT booking").await?;
        match c.execute(sql, params).await {
            Ok(_) => {
                c.batch_execute("RELEASE SAVEPOINT booking").await?;
                Ok(Ok(()))
            }
            Err(e) if e.code() == Some(&SqlState::EXCLUSION_VIOLATION) => {
                c.batch_execute("ROLLBACK TO SAVEPOINT booking").await?;
                Ok(Err(SlotTaken))
            }
            Err(e) => Err(e.into()),
        }
    }
}

impl Drop for PgTx {
    fn drop(&mut self) {
        // Not committed: roll back before the connection goes back to the pool, or close it.
        if let Some(client) = self.client.take() {
            match tokio::runtime::Handle::try_current() {
                Ok(handle) => {
                    handle.spawn(async move {
                        if client.batch_execute("ROLLBACK").await.is_err() {
                            drop(Object::take(client));
                        }
                    });
                }
                Err(_) => drop(Object::take(client)),
            }
        }
    }
}

impl Tx for PgTx {
    async fn claim_event(&mut self, id: Uuid) -> Result<bool> {
        let c = self.client();
        let stmt = c
            .prepare_cached("INSERT INTO processed_events (id) VALUES ($1) ON CONFLICT DO NOTHING")
            .await?;
        Ok(c.execute(&stmt, &[&id]).await? == 1)
    }

    async fn business_by_number(&mut self, number: &PhoneNumber) -> Result<Option<Arc<Business>>> {
        let c = self.client();
        let stmt = c
            .prepare_cached("SELECT id, updated_at, profile FROM businesses WHERE phone_number = $1 FOR NO KEY UPDATE")
            .await?;
        let Some(row) = c.query_opt(&stmt, &[&number.as_str()]).await? else {
            return Ok(None);
        };
        let id: String = row.get(0);
        let updated: Timestamp = row.get(1);
        if let Some((at, b)) = self.businesses.lock().expect("cache lock").get(&id) {
            if *at == updated {
                return Ok(Some(b.clone()));
            }
        }
        let Json(profile): Json<Profile> = row.get(2);
        let business = Arc::new(
            Business::from_profile(profile).map_err(|e| StoreError::Other(e.to_string()))?,
        );
        self.businesses
            .lock()
            .expect("cache lock")
            .insert(id, (updated, business.clone()));
        Ok(Some(business))
    }

    async fn opted_out(&mut self, business_id: &str, caller: &PhoneNumber) -> Result<bool> {
        let c = self.client();
        let stmt = c
            .prepare_cached("SELECT opted_out FROM opt_outs WHERE business_id = $1 AND caller = $2")
            .await?;
        Ok(c.query_opt(&stmt, &[&business_id, &caller.as_str()])
            .await?
            .is_some_and(|r| r.get(0)))
    }

    async fn set_opted_out(
        &mut self,
        business_id: &str,
        caller: &PhoneNumber,
        opted_out: bool,
        at: Timestamp,
    ) -> Result<()> {
        let c = self.client();
        c.execute(
            UPSERT_OPT_OUT,
            &[&business_id, &caller.as_str(), &opted_out, &at],
        )
        .await?;
        if opted_out {
            c.execute(SUPPRESS_PENDING, &[&business_id, &caller.as_str()])
                .await?;
        }
        Ok(())
    }

    async fn conversation(
        &mut self,
        business_id: &str,
        caller: &PhoneNumber,
    ) -> Result<Option<Conversation>> {
        let c = self.client();
        let stmt = c
            .prepare_cached(
                "SELECT id, state, started_at, last_activity_at, last_textback_at FROM conversations \
                 WHERE business_id = $1 AND caller = $2",
            )
            .await?;
        let Some(row) = c
            .query_opt(&stmt, &[&business_id, &caller.as_str()])
            .await?
        else {
            return Ok(None);
        };
        let Json(state): Json<State> = row.get(1);
        Ok(Some(Conversation {
            id: row.get(0),
            business_id: business_id.to_string(),
            caller: caller.clone(),
            state,
            started_at: row.get(2),
            last_activity_at: row.get(3),
            last_textback_at: row.get(4),
        }))
    }

    async fn save_conversation(&mut self, conv: &Conversation) -> Result<()> {
        let c = self.client();
        let stmt = c
            .prepare_cached(
                "INSERT INTO conversations (id, business_id, caller, state, started_at, last_activity_at, last_textback_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (business_id, caller) DO UPDATE SET id = EXCLUDED.id, \
                 state = EXCLUDED.state, started_at = EXCLUDED.started_at, last_activity_at = EXCLUDED.last_activity_at, \
                 last_textback_at = EXCLUDED.last_textback_at",
            )
            .await?;
        c.execute(
            &stmt,
            &[
                &conv.id,
                &conv.business_id,
                &conv.caller.as_str(),
                &Json(&conv.state),
                &conv.started_at,
                &conv.last_activity_at,
                &conv.last_textback_at,
            ],
        )
        .await?;
        Ok(())
    }

    async fn appointments(
        &mut self,
        business: &Business,
        from: Timestamp,
    ) -> Result<Vec<Appointment>> {
        let c = self.client();
        let stmt = c
            .prepare_cached(
                "SELECT id, service_id, caller, starts_at FROM appointments WHERE business_id = $1 AND status = 'booked' \
                 AND busy_until > $2 ORDER BY starts_at",
            )
            .await?;
        c.query(&stmt, &[&business.id, &from])
            .await?
            .into_iter()
            .map(|r| {
                Ok(Appointment {
                    id: r.get(0),
                    service_id: r.get(1),
                    caller: phone(r.get(2))?,
                    start: r.get(3),
                })
            })
            .collect()
    }

    async fn book(
        &mut self,
        new: NewAppointment<'_>,
    ) -> Result<std::result::Result<(), SlotTaken>> {
        let b = new.business;
        let end = busy_until(b, new.service_id, new.start);
        if exceeds(
            &self.overlapping(b, new.start, end, None).await?,
            b.rules.capacity,
            new.start,
            end,
        ) {
            return Ok(Err(SlotTaken));
        }
        let price = b.service(new.service_id).map_or(0, |s| s.price_cents);
        self.guarded(
            "INSERT INTO appointments (id, business_id, service_id, caller, starts_at, busy_until, price_cents, \
             conversation_id, single_capacity) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            &[
                &new.id,
                &b.id,
                &new.service_id,
                &new.caller.as_str(),
                &new.start,
                &end,
                &price,
                &new.conversation_id,
                &(b.rules.capacity == 1),
            ],
        )
        .await
    }

    async fn move_appointment(
        &mut self,
        business: &Business,
        id: Uuid,
        service_id: &str,
        start: Timestamp,
    ) -> Result<std::result::Result<(), SlotTaken>> {
        let end = busy_until(business, service_id, start);
        if exceeds(
            &self.overlapping(business, start, end, Some(id)).await?,
            business.rules.capacity,
            start,
            end,
        ) {
            return Ok(Err(SlotTaken));
        }
        let price = business.service(service_id).map_or(0, |s| s.price_cents);
        self.guarded(
            "UPDATE appointments SET service_id = $2, starts_at = $3, busy_until = $4, price_cents = $5 WHERE id = $1",
            &[&id, &service_id, &start, &end, &price],
        )
        .await
    }

    async fn cancel_appointment(&mut self, id: Uuid, at: Timestamp) -> Result<()> {
        self.client()
            .execute(
                "UPDATE appointments SET status = 'cancelled', cancelled_at = $2 WHERE id = $1",
                &[&id, &at],
            )
            .await?;
        Ok(())
    }

    async fn record_inbound(&mut self, m: &Inbound) -> Result<()> {
        let c = self.client();
        let stmt = c
            .prepare_cached(
                "INSERT INTO messages (id, business_id, conversation_id, direction, kind, from_number, to_number, body, \
                 carrier_message_id, status, created_at, carrier) \
                 VALUES ($1, $2, $3, 'inbound', 'inbound', $4, $5, $6, $7, 'received', $8, $9) \
                 ON CONFLICT (carrier_message_id) WHERE carrier_message_id IS NOT NULL DO NOTHING",
            )
            .await?;
        c.execute(
            &stmt,
            &[
                &Uuid::new_v4(),
                &m.business_id,
                &m.conversation_id,
                &m.from.as_str(),
                &m.to.as_str(),
                &m.body,
                &m.carrier_message_id,
                &m.at,
                &m.carrier.as_str(),
            ],
        )
        .await?;
        Ok(())
    }

    async fn update_status(
        &mut self,
        carrier_message_id: &str,
        status: &str,
        error_code: Option<&str>,
    ) -> Result<()> {
        self.client()
            .execute(
                "UPDATE messages SET status = $2, error_code = COALESCE($3, error_code) \
                 WHERE carrier_message_id = $1 AND direction = 'outbound'",
                &[&carrier_message_id, &status, &error_code],
            )
            .await?;
        Ok(())
    }

    async fn enqueue(&mut self, m: &Outgoing) -> Result<()> {
        let c = self.client();
        let stmt = c
            .prepare_cached(
                "WITH msg AS (INSERT INTO messages (id, business_id, conversation_id, direction, kind, from_number, to_number, \
                 body, status, created_at, event_received_at, carrier) \
                 VALUES ($1, $2, $3, 'outbound', $4, $5, $6, $7, 'queued', $8, $9, $10) \
                 RETURNING id) INSERT INTO outbox (message_id, from_number, next_attempt_at) SELECT id, $5, $8 FROM msg",
            )
            .await?;
        c.execute(
            &stmt,
            &[
                &m.id,
                &m.business_id,
                &m.conversation_id,
                &m.kind.as_str(),
                &m.from.as_str(),
                &m.to.as_str(),
                &m.body,
                &m.queued_at,
                &m.event_received_at,
                &m.carrier.as_str(),
            ],
        )
        .await?;
        Ok(())
    }

    async fn commit(mut self) -> Result<()> {
        let client = self.client.take().expect("commit once");
        client.batch_execute("COMMIT").await?;
        Ok(())
    }
}
