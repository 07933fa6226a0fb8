-- wabill store, SQLite schema v8: what Meta's status webhooks say of their message (decisions.md
-- D114): its WABA (the envelope's entry id), business phone, recipient (number and/or BSUID) and
-- the category Meta bills it in. Kept beside the status event, as `meta_pricing` is, so that
-- Meta's status and the platform's plain one stay one event by (id, status); keyed likewise,
-- the first description of a (message, status) kept. Re-rating puts it back on the status.

CREATE TABLE meta_messages (
    id             TEXT    NOT NULL CHECK (id <> ''),
    status         TEXT    NOT NULL CHECK (status <> ''),
    at_ms          INTEGER NOT NULL,
    waba           TEXT    NOT NULL CHECK (waba <> ''),
    phone          TEXT    NOT NULL CHECK (phone <> ''),
    user_phone     TEXT,
    user_id        TEXT,
    category       TEXT,
    received_at_ms INTEGER NOT NULL,
    PRIMARY KEY (id, status),
    CHECK (user_phone IS NOT NULL OR user_id IS NOT NULL)
) STRICT;

CREATE INDEX meta_messages_waba_at ON meta_messages (waba, at_ms);

-- Meta's `conversation.expiration_timestamp` with the pricing of the status that carried it
-- (decisions.md D118), for reconciliation to compare with wabill's window end.
ALTER TABLE meta_pricing ADD COLUMN expires_at_ms INTEGER;
