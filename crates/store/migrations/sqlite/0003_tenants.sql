-- wabill store, SQLite schema v3: tenant billing (issue #4). Each tenant's set-up is kept as
-- append-only versions (a JSON document; the newest is in force, none is overwritten, so any
-- past month can be recomputed); which tenant owns which WABA is indexed from the newest
-- version; finalized invoices are written once and never change (decisions.md D41).

CREATE TABLE tenant_setups (
    version        INTEGER PRIMARY KEY,
    tenant         TEXT    NOT NULL CHECK (tenant <> ''),
    setup          TEXT    NOT NULL,
    recorded_at_ms INTEGER NOT NULL
) STRICT;

CREATE INDEX tenant_setups_tenant ON tenant_setups (tenant, version);

-- A WABA belongs to at most one tenant: its charges are that tenant's usage.
CREATE TABLE tenant_wabas (
    waba   TEXT PRIMARY KEY CHECK (waba <> ''),
    tenant TEXT NOT NULL
) STRICT;

CREATE INDEX tenant_wabas_tenant ON tenant_wabas (tenant);

CREATE TABLE tenant_invoices (
    tenant          TEXT    NOT NULL,
    month           TEXT    NOT NULL,
    invoice         TEXT    NOT NULL,
    finalized_at_ms INTEGER NOT NULL,
    PRIMARY KEY (tenant, month)
) STRICT;

CREATE TRIGGER tenant_invoices_never_change BEFORE UPDATE ON tenant_invoices
BEGIN SELECT RAISE(ABORT, 'a finalized invoice never changes'); END;
CREATE TRIGGER tenant_invoices_never_go BEFORE DELETE ON tenant_invoices
BEGIN SELECT RAISE(ABORT, 'a finalized invoice never changes'); END;
CREATE TRIGGER tenant_setups_never_change BEFORE UPDATE ON tenant_setups
BEGIN SELECT RAISE(ABORT, 'tenant set-up versions are append-only'); END;
