#!/usr/bin/env bash
# REST API benchmark (not a test): wrk against a release build and a fresh private PostgreSQL.
# Measures GET /healthz (the HTTP stack alone: the baseline), an authenticated GET of a session
# and session creation, each at 50 connections, and prints requests/s, p50, p99 and the ratio to
# the baseline. Usage: scripts/bench-api.sh [seconds per run, default 10] [connections, default 50]
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
DURATION="${1:-10}"
CONNS="${2:-50}"

ensure_apt wrk
build "$ROOT/build/release" -DCMAKE_BUILD_TYPE=Release -DCOBROWSE_TESTS=OFF
BIN="$ROOT/build/release/cobrowsed"
B="$STATE/bench"
pg_stop "$B/pg"; rm -rf "$B"; mkdir -p "$B/data"
export DATABASE_URL; DATABASE_URL="$(pg_start "$B/pg")"
PORT="$(free_port)"
API="http://127.0.0.1:$PORT"
export COBROWSE_DATA_DIR="$B/data" COBROWSE_LISTEN="127.0.0.1:$PORT" COBROWSE_LOG_LEVEL=warn
export COBROWSE_RELAY_LISTEN="127.0.0.1:$(free_port)" COBROWSE_PROXY_LISTEN="127.0.0.1:$(free_port)"
ADMIN="$("$BIN" create-admin-token --name bench 2>/dev/null)"
"$BIN" serve >"$B/server.out" 2>"$B/server.log" &
PID=$!
trap 'kill $PID 2>/dev/null; wait $PID 2>/dev/null; pg_stop "$B/pg"' EXIT
wait_http "$API/healthz" 30 || die "server did not start (see ${B#$ROOT/}/server.log)"

json() { python3 -c "import json,sys; print(json.load(sys.stdin)$1)"; }
say "creating a tenant with limits high enough not to throttle the benchmark"
TENANT=$(curl -fsS -XPOST "$API/v1/tenants" -H "Authorization: Bearer $ADMIN" -H 'Content-Type: application/json' \
  -d '{"name":"bench","limits":{"concurrent_sessions":1000000,"sessions_per_minute":1000000,"api_requests_per_second":1000000}}' | json '["id"]')
export BENCH_KEY; BENCH_KEY=$(curl -fsS -XPOST "$API/v1/api_keys" -H "Authorization: Bearer $ADMIN" \
  -H "Cobrowse-Tenant: $TENANT" -H 'Content-Type: application/json' -d '{"type":"secret","name":"bench"}' | json '["secret"]')
export BENCH_SESSION; BENCH_SESSION=$(curl -fsS -XPOST "$API/v1/sessions" -H "Authorization: Bearer $BENCH_KEY" \
  -H 'Content-Type: application/json' -d '{}' | json '["id"]')

# run NAME ARGS...: one wrk run; prints "NAME rps p50_ms p99_ms errors".
run() {
  local name="$1"; shift
  say "wrk: $name (${DURATION}s, $CONNS connections)"
  local out; out=$(wrk -t2 -c"$CONNS" -d"${DURATION}s" --latency "$@")
  echo "$out" >"$B/wrk-$name.txt"
  python3 - "$name" <<PY
import re, sys
out = open("$B/wrk-$name.txt").read()
def ms(label):
    m = re.search(r"^\s*%s%%\s+([\d.]+)(us|ms|s)\s*$" % label, out, re.M)
    v, u = float(m.group(1)), m.group(2)
    return v / 1000 if u == "us" else v * 1000 if u == "s" else v
rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
errs = re.search(r"BENCH status_errors=(\d+)", out)
non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
bad = int(non2xx.group(1)) if non2xx else 0
print(f"{sys.argv[1]} {rps:.0f} {ms('50'):.2f} {ms('99'):.2f} {bad}")
PY
}

results=$(
  run healthz "$API/healthz"
  run get_session -s "$ROOT/bench/api/get_session.lua" "$API"
  run create_session -s "$ROOT/bench/api/post_session.lua" "$API"
)
python3 - "$results" "$CONNS" <<'PY'
import sys
rows = [l.split() for l in sys.argv[1].strip().splitlines()]
conns = sys.argv[2]
base = float(rows[0][1])
targets = {"get_session": 10000, "create_session": 2000}
print(f"\nREST API at {conns} connections on {__import__('os').cpu_count()} cores (wrk, same machine)")
print(f"{'endpoint':<16}{'req/s':>10}{'p50 ms':>9}{'p99 ms':>9}{'non-2xx':>9}{'vs healthz':>12}  target")
for name, rps, p50, p99, bad in rows:
    rps, p50, p99 = float(rps), float(p50), float(p99)
    t = targets.get(name)
    verdict = "" if t is None else (f">= {t}/s, p99 < 20 ms: " + ("met" if rps >= t and p99 < 20 else "NOT met"))
    print(f"{name:<16}{rps:>10.0f}{p50:>9.2f}{p99:>9.2f}{bad:>9}{rps/base:>11.2f}x  {verdict}")
PY
