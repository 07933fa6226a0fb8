-- wabill store, PostgreSQL schema v2: the same tables and indexes as the SQLite schema v2.

CREATE INDEX events_pair ON events (phone, user_phone, at_ms) WHERE phone IS NOT NULL;
CREATE INDEX charges_waba_billed ON charges (waba, billed_at_ms) WHERE billed_at_ms IS NOT NULL;

CREATE TABLE meta_pricing (
    id              TEXT    COLLATE "C" NOT NULL CHECK (id <> ''),
    status          TEXT    NOT NULL CHECK (status <> ''),
    at_ms           BIGINT  NOT NULL,
    waba            TEXT    COLLATE "C",
    billable        BOOLEAN,
    pricing_model   TEXT,
    category        TEXT,
    pricing_type    TEXT,
    conversation_id TEXT,
    received_at_ms  BIGINT  NOT NULL,
    PRIMARY KEY (id, status)
);

CREATE INDEX meta_pricing_waba_at ON meta_pricing (waba, at_ms) WHERE waba IS NOT NULL;

CREATE TABLE engine_state (
    name  TEXT   PRIMARY KEY,
    value BIGINT NOT NULL
);
