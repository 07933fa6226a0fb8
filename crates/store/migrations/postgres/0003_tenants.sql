-- wabill store, PostgreSQL schema v3: the same tables as the SQLite schema v3.

CREATE TABLE tenant_setups (
    version        BIGSERIAL PRIMARY KEY,
    tenant         TEXT   COLLATE "C" NOT NULL CHECK (tenant <> ''),
    setup          TEXT   NOT NULL,
    recorded_at_ms BIGINT NOT NULL
);

CREATE INDEX tenant_setups_tenant ON tenant_setups (tenant, version);

CREATE TABLE tenant_wabas (
    waba   TEXT COLLATE "C" PRIMARY KEY CHECK (waba <> ''),
    tenant TEXT COLLATE "C" NOT NULL
);

CREATE INDEX tenant_wabas_tenant ON tenant_wabas (tenant);

CREATE TABLE tenant_invoices (
    tenant          TEXT   COLLATE "C" NOT NULL,
    month           TEXT   COLLATE "C" NOT NULL,
    invoice         TEXT   NOT NULL,
    finalized_at_ms BIGINT NOT NULL,
    PRIMARY KEY (tenant, month)
);

CREATE FUNCTION wabill_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '%: rows are never changed or removed', TG_TABLE_NAME;
END
$$;

CREATE TRIGGER tenant_invoices_never_change BEFORE UPDATE OR DELETE ON tenant_invoices
    FOR EACH ROW EXECUTE FUNCTION wabill_refuse_change();
CREATE TRIGGER tenant_setups_never_change BEFORE UPDATE ON tenant_setups
    FOR EACH ROW EXECUTE FUNCTION wabill_refuse_change();
