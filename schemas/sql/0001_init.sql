-- textback: the system of record. Applied by `textback migrate` (tracked in schema_migrations).
--
-- Double booking is impossible by construction: every booking transaction first locks its business's
-- row (so bookings for one business are serialised and capacity is checked against a stable
-- calendar), and where a business has capacity 1 the exclusion constraint below refuses any two
-- overlapping active appointments even if a transaction forgot the lock.

CREATE EXTENSION IF NOT EXISTS btree_gist WITH SCHEMA public;

CREATE TABLE businesses (
    id           text PRIMARY KEY,
    phone_number text NOT NULL UNIQUE,
    -- The profile as the owner configured it (the corpus's businesses.json shape).
    profile      jsonb NOT NULL,
    capacity     integer NOT NULL CHECK (capacity > 0),
    updated_at   timestamptz NOT NULL DEFAULT clock_timestamp()
);

-- Every event the worker has handled: a redelivered event finds its id here and changes nothing.
CREATE TABLE processed_events (
    id           uuid PRIMARY KEY,
    processed_at timestamptz NOT NULL DEFAULT clock_timestamp()
);

-- The current conversation between a business and a caller, with the assistant's state.
CREATE TABLE conversations (
    id               uuid PRIMARY KEY,
    business_id      text NOT NULL REFERENCES businesses (id),
    caller           text NOT NULL,
    state            jsonb NOT NULL,
    started_at       timestamptz NOT NULL,
    last_activity_at timestamptz NOT NULL,
    last_textback_at timestamptz,
    UNIQUE (business_id, caller)
);

-- Every text, both ways. Outbound ones carry their delivery status.
CREATE TABLE messages (
    id                 uuid PRIMARY KEY,
    -- Order of writing: several texts written in one transaction share created_at.
    seq                bigint GENERATED ALWAYS AS IDENTITY,
    business_id        text NOT NULL REFERENCES businesses (id),
    conversation_id    uuid,
    direction          text NOT NULL CHECK (direction IN ('inbound', 'outbound')),
    carrier            text NOT NULL CHECK (carrier IN ('twilio', 'telnyx')),
    kind               text NOT NULL, -- inbound | text_back | reply | owner_alert
    from_number        text NOT NULL,
    to_number          text NOT NULL,
    body               text NOT NULL,
    carrier_message_id text,
    status             text NOT NULL, -- received | queued | sent | delivered | undelivered | failed | suppressed
    error_code         text,
    created_at         timestamptz NOT NULL,
    -- When the gateway received the event that caused this text: the service-level clock.
    event_received_at  timestamptz,
    sent_at            timestamptz
);
CREATE INDEX messages_to ON messages (to_number, seq);
CREATE UNIQUE INDEX messages_carrier_id ON messages (carrier_message_id) WHERE carrier_message_id IS NOT NULL;

-- Outbound texts not yet accepted by the carrier. The sender claims due rows with SKIP LOCKED.
CREATE TABLE outbox (
    message_id      uuid PRIMARY KEY REFERENCES messages (id),
    from_number     text NOT NULL,
    attempts        integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL,
    lease_until     timestamptz
);
CREATE INDEX outbox_due ON outbox (next_attempt_at);

CREATE TABLE appointments (
    id              uuid PRIMARY KEY,
    business_id     text NOT NULL REFERENCES businesses (id),
    service_id      text NOT NULL,
    caller          text NOT NULL,
    starts_at       timestamptz NOT NULL,
    -- Busy until: start + duration + buffer.
    busy_until      timestamptz NOT NULL CHECK (busy_until > starts_at),
    price_cents     bigint NOT NULL DEFAULT 0,
    conversation_id uuid,
    status          text NOT NULL DEFAULT 'booked' CHECK (status IN ('booked', 'cancelled')),
    -- Whether the business had one chair/truck when this was booked: then no overlap at all.
    single_capacity boolean NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT clock_timestamp(),
    cancelled_at    timestamptz,
    CONSTRAINT no_double_booking EXCLUDE USING gist (
        business_id WITH =, tstzrange(starts_at, busy_until) WITH &&
    ) WHERE (status = 'booked' AND single_capacity)
);
CREATE INDEX appointments_business_time ON appointments (business_id, busy_until) WHERE status = 'booked';
CREATE INDEX appointments_caller ON appointments (business_id, caller) WHERE status = 'booked';

-- Opt-outs are per business number and caller, for good until START.
CREATE TABLE opt_outs (
    business_id text NOT NULL REFERENCES businesses (id),
    caller      text NOT NULL,
    opted_out   boolean NOT NULL,
    changed_at  timestamptz NOT NULL,
    PRIMARY KEY (business_id, caller)
);
