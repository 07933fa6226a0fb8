-- wabill store, PostgreSQL schema v5: the same column as the SQLite schema v5.

ALTER TABLE charges ADD COLUMN agent TEXT;
