#!/bin/sh
# What SQLite alone costs per stored event on this machine: 300,000 rows shaped like wabill's
# outbound events (random-order ids, lines of realistic length) inserted into a database made by
# wabill (its schema, page size and pragmas), in 30 transactions of 10,000 rows with
# synchronous=FULL, as the service's writer does. The rows are built in a temporary table
# beforehand, so only the inserts are timed: no binding, no driver, no HTTP, no lookups.
#
# usage: scripts/sqlite-floor.sh [WABILL_BINARY] ["SQL run before the inserts"]
#   scripts/sqlite-floor.sh target/release/wabill
#   scripts/sqlite-floor.sh target/release/wabill "DROP INDEX events_pair; DROP INDEX events_waba_at; DROP INDEX events_id;"
# Needs the sqlite3 command-line shell (Debian package sqlite3).
set -e
BIN=${1:-target/release/wabill}
D=$(mktemp -d)
trap 'rm -rf "$D"' EXIT
"$BIN" keys list --db "$D/f.sqlite" >/dev/null # creates the file and migrates it
{
  cat <<'SQL'
PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA cache_size=-65536; PRAGMA wal_autocheckpoint=2000;
CREATE TEMP TABLE src AS WITH RECURSIVE c(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM c WHERE i < 299999)
SELECT i, r, printf('wamid.HBgNNTUxMTk4ODg4Nzc3NxUCABEYEjQ%016X', r) AS id, 1751364000000 + i * 37 AS at,
  'W' || (i % 50) AS waba, printf('55119%08d', i % 100000) AS usr
FROM (SELECT i, random() AS r FROM c);
CREATE TEMP TABLE rows AS SELECT 'outbound' AS kind, id, r AS h, '' AS status, at, waba, '15550001111' AS phone, usr,
  printf('{"kind":"outbound","id":"%s","at":%d,"waba":"%s","phone":"15550001111","user":"%s","type":"template","category":"utility"}',
    id, at, waba, usr) AS raw
FROM src ORDER BY i;
SQL
  if [ -n "$2" ]; then echo "$2"; fi
  echo ".timer on"
  b=0
  while [ $b -lt 30 ]; do
    echo "BEGIN IMMEDIATE; INSERT INTO events (kind, id, id_hash, status, at_ms, waba, phone, user_phone, raw, received_at_ms) SELECT kind, id, h, status, at, waba, phone, usr, raw, 0 FROM rows WHERE rowid > $((b * 10000)) AND rowid <= $(((b + 1) * 10000)); COMMIT;"
    b=$((b + 1))
  done
} >"$D/floor.sql"
sqlite3 "$D/f.sqlite" <"$D/floor.sql" |
  awk '/^Run Time/ { s += $4 } END { printf "%.3f s for 300000 rows = %.0f rows/s\n", s, 300000 / s }'
