-- wabill store, SQLite schema v6: events are found by a 64-bit hash of their id rather than by
-- the id's text. The unique index on (id, kind, status) took most of an ingest's time: its
-- entries were as long as the ids, in random order, so a batch of 10,000 events dirtied about as
-- many of its pages, and more and more of them missed the page cache as history grew. An
-- integer index is about a fifth of its size.
--
-- `id_hash` is FNV-1a (64 bits) of the id's UTF-8 bytes, as a signed integer (NULL for account
-- versions, which are found by WABA). It is computed by wabill, never by SQL: rows stored before
-- this version get theirs when the store is opened, before anything else runs. Two ids may share
-- a hash, so every lookup also compares the id. The idempotency key (docs/events.md) is now
-- enforced by the single writer, which looks a batch's keys up inside its write transaction
-- before inserting them.
ALTER TABLE events ADD COLUMN id_hash INTEGER;

DROP INDEX events_key;

CREATE INDEX events_id ON events (id_hash);
