-- wabill store, SQLite schema v1. STRICT tables so that a value of the wrong type (a float
-- amount, a text instant) is an error instead of being stored as whatever it was.

-- Every event line received, append-only, including account versions. `seq` is the rowid:
-- assigned on insert as max + 1 under the single writer, so it is gap-free and increases in
-- commit order, which is what lets a re-rating worker follow `seq > cursor` without missing
-- anything.
CREATE TABLE events (
    seq            INTEGER PRIMARY KEY,
    kind           TEXT    NOT NULL CHECK (kind IN ('account', 'inbound', 'outbound', 'status')),
    id             TEXT    NOT NULL CHECK (id <> ''),
    -- '' for everything but statuses, so that the idempotency key below has no NULL in it
    -- (NULLs are all distinct in a unique index).
    status         TEXT    NOT NULL DEFAULT '',
    at_ms          INTEGER NOT NULL,
    waba           TEXT,
    phone          TEXT,
    user_phone     TEXT,
    raw            TEXT    NOT NULL,
    received_at_ms INTEGER NOT NULL,
    CHECK ((kind = 'status') = (status <> '')),
    CHECK ((kind = 'status') = (waba IS NULL)),
    CHECK ((kind IN ('inbound', 'outbound')) = (phone IS NOT NULL)),
    CHECK ((kind IN ('inbound', 'outbound')) = (user_phone IS NOT NULL))
) STRICT;

-- The idempotency key of docs/events.md: an inbound id, an outbound id, a status's (id, status)
-- pair each count once. Account versions are keyed by WABA in `accounts` instead. `id` comes
-- first so that "every event with this id" (statuses of an outbound) is an index range.
CREATE UNIQUE INDEX events_key ON events (id, kind, status) WHERE kind <> 'account';

-- Re-rating loads a WABA's messages over a time range.
CREATE INDEX events_waba_at ON events (waba, at_ms) WHERE waba IS NOT NULL;

-- Account versions: the event row (seq, raw, received_at_ms) holds the line as received; this
-- table holds the fields the service needs without parsing it. The latest seq per WABA wins.
CREATE TABLE accounts (
    seq       INTEGER PRIMARY KEY REFERENCES events (seq),
    waba      TEXT    NOT NULL CHECK (waba <> ''),
    portfolio TEXT    NOT NULL,
    timezone  TEXT    NOT NULL,
    currency  TEXT    NOT NULL
) STRICT;

CREATE INDEX accounts_waba ON accounts (waba, seq);

-- The rating result per outbound message, replaced wholesale when messages are re-rated.
-- Amounts are exact decimal text in wabill's shortest form ('0', '0.0618'), never REAL.
CREATE TABLE charges (
    id              TEXT    PRIMARY KEY,
    sent_at_ms      INTEGER NOT NULL,
    waba            TEXT    NOT NULL,
    phone           TEXT    NOT NULL,
    user_phone      TEXT    NOT NULL,
    country         TEXT    NOT NULL,
    market          TEXT    NOT NULL,
    pricing_model   TEXT    NOT NULL,
    category        TEXT    NOT NULL,
    pricing_type    TEXT    NOT NULL,
    billable        INTEGER NOT NULL CHECK (billable IN (0, 1)),
    tier            TEXT,
    rate            TEXT,
    amount          TEXT    NOT NULL,
    currency        TEXT    NOT NULL,
    billed_at_ms    INTEGER,
    conversation_id TEXT,
    -- ARCHITECTURE.md invariants, checked where they are stored: billable exactly when the
    -- amount is positive, and a rate exactly when the amount is not zero.
    CHECK (billable = (amount <> '0' AND substr(amount, 1, 1) <> '-')),
    CHECK ((rate IS NULL) = (amount = '0'))
) STRICT;

CREATE INDEX charges_sent ON charges (sent_at_ms, id);
CREATE INDEX charges_waba_sent ON charges (waba, sent_at_ms, id);

-- API keys, by the SHA-256 of the key: the raw key is never stored.
CREATE TABLE api_keys (
    id             INTEGER PRIMARY KEY,
    name           TEXT    NOT NULL,
    role           TEXT    NOT NULL CHECK (role IN ('admin', 'reader', 'sender')),
    key_hash       BLOB    NOT NULL UNIQUE CHECK (length(key_hash) = 32),
    created_at_ms  INTEGER NOT NULL,
    revoked_at_ms  INTEGER
) STRICT;

-- The WABAs a reader or sender key may see (an admin key has none: it sees everything).
CREATE TABLE api_key_wabas (
    key_id INTEGER NOT NULL REFERENCES api_keys (id),
    waba   TEXT    NOT NULL,
    PRIMARY KEY (key_id, waba)
) STRICT;
