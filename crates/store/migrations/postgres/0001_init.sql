-- wabill store, PostgreSQL schema v1. Same tables and rules as the SQLite schema; money is
-- NUMERIC (exact), instants are BIGINT Unix milliseconds. Ids and WABAs are COLLATE "C": they
-- sort by bytes, as in SQLite and in the rater's "ties by id", whatever the database's locale.

-- Every event line received, append-only, including account versions. `seq` is assigned by
-- the store as max + 1 while it holds an EXCLUSIVE lock on this table, so it is gap-free and
-- increases in commit order (a SEQUENCE would leave gaps and, worse, hand out numbers in an
-- order that concurrent commits do not follow).
CREATE TABLE events (
    seq            BIGINT  PRIMARY KEY,
    kind           TEXT    NOT NULL CHECK (kind IN ('account', 'inbound', 'outbound', 'status')),
    id             TEXT    COLLATE "C" NOT NULL CHECK (id <> ''),
    -- '' for everything but statuses, so that the idempotency key has no NULL in it.
    status         TEXT    NOT NULL DEFAULT '',
    at_ms          BIGINT  NOT NULL,
    waba           TEXT    COLLATE "C",
    phone          TEXT,
    user_phone     TEXT,
    raw            TEXT    NOT NULL,
    received_at_ms BIGINT  NOT NULL,
    CHECK ((kind = 'status') = (status <> '')),
    CHECK ((kind = 'status') = (waba IS NULL)),
    CHECK ((kind IN ('inbound', 'outbound')) = (phone IS NOT NULL)),
    CHECK ((kind IN ('inbound', 'outbound')) = (user_phone IS NOT NULL))
);

-- The idempotency key of docs/events.md (see the SQLite schema).
CREATE UNIQUE INDEX events_key ON events (id, kind, status) WHERE kind <> 'account';
CREATE INDEX events_waba_at ON events (waba, at_ms) WHERE waba IS NOT NULL;

CREATE TABLE accounts (
    seq       BIGINT PRIMARY KEY REFERENCES events (seq),
    waba      TEXT   COLLATE "C" NOT NULL CHECK (waba <> ''),
    portfolio TEXT   NOT NULL,
    timezone  TEXT   NOT NULL,
    currency  TEXT   NOT NULL
);

CREATE INDEX accounts_waba ON accounts (waba, seq);

CREATE TABLE charges (
    id              TEXT    COLLATE "C" PRIMARY KEY,
    sent_at_ms      BIGINT  NOT NULL,
    waba            TEXT    COLLATE "C" NOT NULL,
    phone           TEXT    NOT NULL,
    user_phone      TEXT    NOT NULL,
    country         TEXT    NOT NULL,
    market          TEXT    NOT NULL,
    pricing_model   TEXT    NOT NULL,
    category        TEXT    NOT NULL,
    pricing_type    TEXT    NOT NULL,
    billable        BOOLEAN NOT NULL,
    tier            TEXT,
    -- Unconstrained NUMERIC: NUMERIC(p, s) would silently round a value with more decimals.
    rate            NUMERIC,
    amount          NUMERIC NOT NULL,
    currency        TEXT    NOT NULL,
    billed_at_ms    BIGINT,
    conversation_id TEXT,
    CHECK (billable = (amount > 0)),
    CHECK ((rate IS NULL) = (amount = 0))
);

CREATE INDEX charges_sent ON charges (sent_at_ms, id);
CREATE INDEX charges_waba_sent ON charges (waba, sent_at_ms, id);

CREATE TABLE api_keys (
    id             BIGINT  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name           TEXT    NOT NULL,
    role           TEXT    NOT NULL CHECK (role IN ('admin', 'reader', 'sender')),
    key_hash       BYTEA   NOT NULL UNIQUE CHECK (octet_length(key_hash) = 32),
    created_at_ms  BIGINT  NOT NULL,
    revoked_at_ms  BIGINT
);

CREATE TABLE api_key_wabas (
    key_id BIGINT NOT NULL REFERENCES api_keys (id),
    waba   TEXT   NOT NULL,
    PRIMARY KEY (key_id, waba)
);
