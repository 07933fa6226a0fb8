-- wabill store, SQLite schema v2: what the send check, usage, reconciliation and crash recovery
-- of `wabill serve` read.

-- The send check rates one (business phone, user) pair: its messages over a time range.
CREATE INDEX events_pair ON events (phone, user_phone, at_ms) WHERE phone IS NOT NULL;

-- Usage buckets charges by their delivery instant.
CREATE INDEX charges_waba_billed ON charges (waba, billed_at_ms) WHERE billed_at_ms IS NOT NULL;

-- What Meta's status webhooks said about pricing, per (message id, status), first one kept.
-- Kept apart from the status events so that a status with and without its pricing object is
-- one event (decisions.md D24, D25). Values are Meta's, unvalidated: they are compared, never
-- rated.
CREATE TABLE meta_pricing (
    id              TEXT    NOT NULL CHECK (id <> ''),
    status          TEXT    NOT NULL CHECK (status <> ''),
    at_ms           INTEGER NOT NULL,
    waba            TEXT,
    billable        INTEGER CHECK (billable IN (0, 1)),
    pricing_model   TEXT,
    category        TEXT,
    pricing_type    TEXT,
    conversation_id TEXT,
    received_at_ms  INTEGER NOT NULL,
    PRIMARY KEY (id, status)
) STRICT;

CREATE INDEX meta_pricing_waba_at ON meta_pricing (waba, at_ms) WHERE waba IS NOT NULL;

-- Named counters of the service; `rated_seq`: every event up to this seq is reflected in the
-- stored charges (events after it are re-rated at start).
CREATE TABLE engine_state (
    name  TEXT    PRIMARY KEY,
    value INTEGER NOT NULL
) STRICT;
