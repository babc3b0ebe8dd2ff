#!/usr/bin/env bash
# Webhook delivery benchmark (not a test). Usage: scripts/bench-webhooks.sh [N, default 5000]
# A release build, a private PostgreSQL, one server allowed to deliver to loopback, and a local
# receiver that verifies every request with npm standardwebhooks (bench/webhooks/bench.mjs):
#   drain    N events written in one transaction: events/s from the outbox to the receiver,
#            against the same receiver fed the same bodies by a plain Node loop (its ceiling);
#   api      sessions created and ended through the API (BENCH_API_SESSIONS, BENCH_API_CONNS):
#            deliveries/s at the receiver, against the API's rate for the same calls with no
#            endpoint (no event written);
#   latency  BENCH_RATE sessions/s (100) for BENCH_SECONDS (10): p50/p99 from the event's commit
#            to its receipt, beside the p50/p99 of the API calls that made them.
# Targets (issue 15): >= 2,000 events/s drained; p99 < 200 ms at 100 events/s.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
N="${1:-5000}"
CONC="${BENCH_CONCURRENCY:-32}"

ensure_npm
build "$ROOT/build/release" -DCMAKE_BUILD_TYPE=Release -DCOBROWSE_TESTS=OFF
BIN="$ROOT/build/release/cobrowsed"
# Not `--help | grep -q`: grep stops at the first match, cobrowsed gets SIGPIPE, and pipefail fails.
HELP="$("$BIN" --help)"
[[ "$HELP" == *--webhook-concurrency* ]] || die "$BIN has no webhook dispatcher (--webhook-concurrency)"

B="$STATE/bench-webhooks"
pg_stop "$B/pg"; rm -rf "$B"; mkdir -p "$B/data"
export DATABASE_URL; DATABASE_URL="$(pg_start "$B/pg")"
port="$(free_port)"
export COBROWSE_BASE_URL="http://127.0.0.1:$port" COBROWSE_DATA_DIR="$B/data" COBROWSE_LISTEN="127.0.0.1:$port"
export COBROWSE_LOG_LEVEL=warn COBROWSE_RELAY_LISTEN="127.0.0.1:$(free_port)" COBROWSE_PROXY_LISTEN="127.0.0.1:$(free_port)"
COBROWSE_ADMIN_TOKEN="$("$BIN" create-admin-token --name bench 2>/dev/null)"
export COBROWSE_ADMIN_TOKEN
# The receiver is on loopback: allowed here as the tests allow it.
"$BIN" serve --webhook-allow-private 127.0.0.0/8 --webhook-concurrency "$CONC" >"$B/server.out" 2>"$B/server.log" &
pid=$!
trap "kill $pid 2>/dev/null; wait $pid 2>/dev/null; pg_stop '$B/pg'" EXIT
wait_http "$COBROWSE_BASE_URL/healthz" 30 || die "server did not start (see ${B#$ROOT/}/server.log)"

say "webhook benchmark: $N events drained, then through the API, then latency at ${BENCH_RATE:-100}/s"
BENCH_N="$N" BENCH_CONCURRENCY="$CONC" node "$ROOT/bench/webhooks/bench.mjs" | tee "$B/results.jsonl"

python3 - "$B/results.jsonl" "$CONC" <<'PY'
import json, os, sys
r = {}
for line in open(sys.argv[1]):
    o = json.loads(line)
    r[o["step"]] = o
print(f"\nWebhook delivery on {os.cpu_count()} cores (server, PostgreSQL and receiver on one machine), "
      f"--webhook-concurrency {sys.argv[2]}")
d, b = r["drain"], r["drain_baseline"]
print(f"drain: {d['events']} events in one transaction ({d['write_ms']} ms to write), delivered in "
      f"{d['seconds']:.2f} s: {d['per_second']:.0f}/s; plain Node loop, same bodies: {b['per_second']:.0f}/s "
      f"(ratio {d['per_second'] / b['per_second']:.2f}); target >= 2,000/s: {'met' if d['per_second'] >= 2000 else 'NOT met'}")
a, ab = r["api"], r["api_baseline"]
print(f"api: {a['sessions']} sessions created and ended ({a['events']} events): API calls {a['calls_per_second']:.0f}/s "
      f"(no endpoint: {ab['calls_per_second']:.0f}/s, ratio {a['calls_per_second'] / ab['calls_per_second']:.2f}); "
      f"deliveries {a['deliveries_per_second']:.0f}/s")
l = r["latency"]
print(f"latency at {l['offered_per_second']:.0f} events/s: commit to receipt p50 {l['delay_p50_ms']} ms, "
      f"p99 {l['delay_p99_ms']} ms, max {l['delay_max_ms']} ms; the API calls: p50 {l['api_p50_ms']:.1f} ms, "
      f"p99 {l['api_p99_ms']:.1f} ms; target p99 < 200 ms: {'met' if l['delay_p99_ms'] < 200 else 'NOT met'}")
bad = sum(r[k]["failed"] for k in ("drain", "drain_baseline", "api", "latency"))
print(f"requests that failed standardwebhooks verification: {bad}")
sys.exit(1 if bad else 0)
PY
