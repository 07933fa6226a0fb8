-- wabill store, SQLite schema v4: budget alerts (issue #4 point 5, decisions.md D42). Each
-- tenant's alert settings (thresholds, webhook URL, and the signing secret, kept because the
-- service signs with it; the API never returns it), and every alert emitted with its delivery
-- state. An alert is one row per (tenant, month, threshold): inserted before it is sent, never
-- inserted twice, so that each threshold is emitted once per month even across restarts. The
-- payload is kept as signed, so that every attempt sends the same bytes.

CREATE TABLE alert_settings (
    tenant        TEXT    PRIMARY KEY CHECK (tenant <> ''),
    thresholds    TEXT    NOT NULL,
    url           TEXT    NOT NULL,
    secret        TEXT    NOT NULL,
    updated_at_ms INTEGER NOT NULL
) STRICT;

CREATE TABLE alerts (
    tenant             TEXT    NOT NULL,
    month              TEXT    NOT NULL,
    threshold          TEXT    NOT NULL,
    payload            TEXT    NOT NULL,
    created_at_ms      INTEGER NOT NULL,
    attempts           INTEGER NOT NULL DEFAULT 0,
    -- NULL once delivered or given up.
    next_attempt_at_ms INTEGER,
    delivered_at_ms    INTEGER,
    last_error         TEXT,
    PRIMARY KEY (tenant, month, threshold)
) STRICT;

CREATE INDEX alerts_due ON alerts (next_attempt_at_ms) WHERE next_attempt_at_ms IS NOT NULL;
