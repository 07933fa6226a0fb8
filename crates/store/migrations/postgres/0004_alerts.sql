-- wabill store, PostgreSQL schema v4: the same tables as the SQLite schema v4.

CREATE TABLE alert_settings (
    tenant        TEXT   COLLATE "C" PRIMARY KEY CHECK (tenant <> ''),
    thresholds    TEXT   NOT NULL,
    url           TEXT   NOT NULL,
    secret        TEXT   NOT NULL,
    updated_at_ms BIGINT NOT NULL
);

CREATE TABLE alerts (
    tenant             TEXT   COLLATE "C" NOT NULL,
    month              TEXT   COLLATE "C" NOT NULL,
    threshold          TEXT   COLLATE "C" NOT NULL,
    payload            TEXT   NOT NULL,
    created_at_ms      BIGINT NOT NULL,
    attempts           BIGINT NOT NULL DEFAULT 0,
    next_attempt_at_ms BIGINT,
    delivered_at_ms    BIGINT,
    last_error         TEXT,
    PRIMARY KEY (tenant, month, threshold)
);

CREATE INDEX alerts_due ON alerts (next_attempt_at_ms) WHERE next_attempt_at_ms IS NOT NULL;
