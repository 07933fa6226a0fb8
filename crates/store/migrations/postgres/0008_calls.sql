-- wabill store, PostgreSQL schema v8: calls (see the SQLite schema v9 for the why of each
-- column). Money is NUMERIC; ids and WABAs sort by bytes (COLLATE "C").
CREATE TABLE call_events (
    seq            BIGSERIAL PRIMARY KEY,
    waba           TEXT    COLLATE "C" NOT NULL CHECK (waba <> ''),
    id             TEXT    COLLATE "C" NOT NULL CHECK (id <> ''),
    phase          TEXT    NOT NULL CHECK (phase IN ('connect', 'terminate')),
    start_ms       BIGINT  NOT NULL,
    raw            TEXT    NOT NULL,
    received_at_ms BIGINT  NOT NULL,
    rated          BOOLEAN NOT NULL DEFAULT FALSE,
    UNIQUE (waba, id, phase)
);

CREATE INDEX call_events_waba_start ON call_events (waba, start_ms);
CREATE INDEX call_events_unrated ON call_events (seq) WHERE NOT rated;

CREATE TABLE call_charges (
    waba          TEXT    COLLATE "C" NOT NULL,
    id            TEXT    COLLATE "C" NOT NULL,
    start_ms      BIGINT  NOT NULL,
    phone         TEXT    NOT NULL,
    user_phone    TEXT,
    user_id       TEXT,
    country       TEXT,
    market        TEXT,
    direction     TEXT    NOT NULL CHECK (direction IN ('business_initiated', 'user_initiated')),
    call_type     TEXT    NOT NULL,
    billable      BOOLEAN NOT NULL,
    seconds       BIGINT  NOT NULL CHECK (seconds >= 0),
    pulses        BIGINT  NOT NULL CHECK (pulses >= 0),
    tier_minutes  NUMERIC,
    tier          TEXT,
    rate          NUMERIC,
    amount        NUMERIC,
    currency      TEXT    NOT NULL,
    recording     NUMERIC NOT NULL,
    transcription NUMERIC NOT NULL,
    agent         TEXT,
    error         TEXT,
    PRIMARY KEY (waba, id),
    CHECK ((amount IS NULL) = (error IS NOT NULL)),
    CHECK (billable = (amount IS NOT NULL AND amount > 0))
);

CREATE INDEX call_charges_start ON call_charges (start_ms, waba, id);
