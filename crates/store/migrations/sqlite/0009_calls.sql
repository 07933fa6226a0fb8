-- wabill store, SQLite schema v9: calls (WhatsApp Business Calling; docs/rules.md "Calls").
--
-- Call events are kept apart from message events: a call is one or more events of one call id
-- (a wabill `call` line, Meta's `connect` and `terminate` webhooks), merged when rated. The
-- idempotency key is (WABA, call id, phase), the phase being `terminate` for an event with an
-- outcome and `connect` for one without: the same key with the same canonical line is a
-- repeat, with another line a conflict (decisions.md D129). `raw` is the canonical `call` line.
-- `rated` is re-rating's bookkeeping: set once the charges of the call's month include the
-- event; what a crash left unrated is re-rated at start (D131).
CREATE TABLE call_events (
    seq            INTEGER PRIMARY KEY AUTOINCREMENT,
    waba           TEXT    NOT NULL CHECK (waba <> ''),
    id             TEXT    NOT NULL CHECK (id <> ''),
    phase          TEXT    NOT NULL CHECK (phase IN ('connect', 'terminate')),
    start_ms       INTEGER NOT NULL,
    raw            TEXT    NOT NULL,
    received_at_ms INTEGER NOT NULL,
    rated          INTEGER NOT NULL DEFAULT 0 CHECK (rated IN (0, 1)),
    UNIQUE (waba, id, phase)
) STRICT;

CREATE INDEX call_events_waba_start ON call_events (waba, start_ms);
CREATE INDEX call_events_unrated ON call_events (seq) WHERE rated = 0;

-- One row per call, as `wabill rate` prints its call line, replaced when the call's month is
-- re-rated. Amounts are exact decimal text, never REAL. A call to be charged that cannot be
-- priced (no calling rate, no number, ...) is stored with no amount and its `error` (D130).
CREATE TABLE call_charges (
    waba          TEXT    NOT NULL,
    id            TEXT    NOT NULL,
    start_ms      INTEGER NOT NULL,
    phone         TEXT    NOT NULL,
    user_phone    TEXT,
    user_id       TEXT,
    country       TEXT,
    market        TEXT,
    direction     TEXT    NOT NULL CHECK (direction IN ('business_initiated', 'user_initiated')),
    call_type     TEXT    NOT NULL,
    billable      INTEGER NOT NULL CHECK (billable IN (0, 1)),
    seconds       INTEGER NOT NULL CHECK (seconds >= 0),
    pulses        INTEGER NOT NULL CHECK (pulses >= 0),
    tier_minutes  TEXT,
    tier          TEXT,
    rate          TEXT,
    amount        TEXT,
    currency      TEXT    NOT NULL,
    recording     TEXT    NOT NULL,
    transcription TEXT    NOT NULL,
    agent         TEXT,
    error         TEXT,
    PRIMARY KEY (waba, id),
    CHECK ((amount IS NULL) = (error IS NOT NULL)),
    CHECK (billable = (amount IS NOT NULL AND amount <> '0' AND substr(amount, 1, 1) <> '-'))
) STRICT;

CREATE INDEX call_charges_start ON call_charges (start_ms, waba, id);
