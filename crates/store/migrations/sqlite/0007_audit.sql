-- wabill store, SQLite schema v7: the audit log of admin actions (decisions.md D88). One row per
-- action that changed something: who (the API key's id and name, or the command line and its
-- user), what (a stable action name and its target), when. Rows are never updated or deleted.

CREATE TABLE audit_log (
    id     INTEGER PRIMARY KEY AUTOINCREMENT,
    at_ms  INTEGER NOT NULL,
    actor  TEXT    NOT NULL CHECK (actor <> ''),
    action TEXT    NOT NULL CHECK (action <> ''),
    target TEXT    NOT NULL
) STRICT;

CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'the audit log is append-only');
END;

CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'the audit log is append-only');
END;
