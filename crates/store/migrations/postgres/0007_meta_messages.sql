-- wabill store, PostgreSQL schema v7: what Meta's status webhooks say of their message
-- (decisions.md D114), kept beside the status event as `meta_pricing` is. See the SQLite
-- migration 0008 for the reasons.

CREATE TABLE meta_messages (
    id             TEXT   COLLATE "C" NOT NULL CHECK (id <> ''),
    status         TEXT   NOT NULL CHECK (status <> ''),
    at_ms          BIGINT NOT NULL,
    waba           TEXT   COLLATE "C" NOT NULL CHECK (waba <> ''),
    phone          TEXT   NOT NULL CHECK (phone <> ''),
    user_phone     TEXT,
    user_id        TEXT,
    category       TEXT,
    received_at_ms BIGINT NOT NULL,
    PRIMARY KEY (id, status),
    CHECK (user_phone IS NOT NULL OR user_id IS NOT NULL)
);

CREATE INDEX meta_messages_waba_at ON meta_messages (waba, at_ms);

-- Meta's `conversation.expiration_timestamp` with the pricing of the status that carried it
-- (decisions.md D118), for reconciliation to compare with wabill's window end.
ALTER TABLE meta_pricing ADD COLUMN expires_at_ms BIGINT;
