#!/usr/bin/env bash
# Schemathesis against the service's own OpenAPI document (GET /openapi.json), bounded in time:
# every check (`--checks all`, with the per-operation settings of schemathesis.toml), and any
# failure or error fails the run. Installs schemathesis when missing. Builds and runs the debug
# binary on a fresh SQLite file with an admin key; ST_SECONDS sets the budget (default 75).
# One worker: with two, CPython 3.11's ast module races in hypothesis' threads and a run
# may end in "AST constructor recursion depth mismatch", an error of the tool, not of the
# service (https://github.com/python/cpython/issues/106905).
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${ST_SECONDS:-75}"
version=4.32.5
if ! command -v schemathesis >/dev/null || ! schemathesis --version | grep -q "$version"; then
    python3 -m pip install --quiet "schemathesis==$version"
fi
cargo build --quiet -p wabill --bin wabill
bin="${CARGO_TARGET_DIR:-target}/debug/wabill"
work="$(mktemp -d)"
server=""
cleanup() {
    if [ -n "$server" ]; then kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true; fi
    rm -rf "$work"
}
trap cleanup EXIT
db="$work/st.sqlite"
key="$("$bin" keys create --db "$db" --name schemathesis --role admin 2>/dev/null | tail -n 1)"
port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
"$bin" serve --db "$db" --listen "127.0.0.1:$port" --app-secret schemathesis-secret \
    --secrets-key "$(python3 -c 'import secrets; print(secrets.token_hex(32))')" \
    >"$work/serve.log" 2>&1 &
server=$!
for _ in $(seq 1 100); do
    curl -fsS "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && break
    sleep 0.1
done
status=0
schemathesis --config-file scripts/schemathesis.toml run "http://127.0.0.1:$port/openapi.json" \
    -H "Authorization: Bearer $key" --max-time "$seconds" -w 1 --checks all \
    --no-color || status=$?
if [ "$status" -ne 0 ]; then
    echo "schemathesis failed (exit $status); the service's log:" >&2
    tail -n 50 "$work/serve.log" >&2
fi
exit "$status"
