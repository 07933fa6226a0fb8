-- wabill store, PostgreSQL schema v6: the audit log of admin actions (decisions.md D88). One row
-- per action that changed something: who (the API key's id and name, or the command line and
-- its user), what (a stable action name and its target), when. Rows are never updated or deleted.

CREATE TABLE audit_log (
    id     BIGSERIAL PRIMARY KEY,
    at_ms  BIGINT NOT NULL,
    actor  TEXT   NOT NULL CHECK (actor <> ''),
    action TEXT   NOT NULL CHECK (action <> ''),
    target TEXT   NOT NULL
);

CREATE FUNCTION audit_log_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'the audit log is append-only';
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_append_only();
