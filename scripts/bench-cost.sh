#!/usr/bin/env bash
# Cost benchmark (not a test): CPU instructions that cobrowsed spends per REST request and per
# relayed frame, counted by valgrind's callgrind, for this tree and a base revision (built in a
# temporary git worktree) in the same run. Instruction counts do not depend on what else the
# machine is doing, so this answers "is it slower than before?" on a busy or shared machine where
# requests/s and p99 from scripts/bench-api.sh and scripts/bench-relay.sh spread by 10-20 %.
# They leave out what callgrind cannot see: PostgreSQL's own work (printed separately, in CPU
# ticks), cache misses, lock waits and the kernel.
#
# Usage: scripts/bench-cost.sh [BASE_REV (default HEAD~1)] [REQUESTS (default 2000)]
# About 5 minutes: each figure runs the server under callgrind (about 50x slower).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
BASE_REV="${1:-HEAD~1}"
N="${2:-2000}"

ensure_apt valgrind
ensure_node
B="$STATE/bench-cost"
BASE="$B/base"
git -C "$ROOT" rev-parse --verify -q "$BASE_REV^{commit}" >/dev/null || die "no such revision: $BASE_REV"
BASE_SHA="$(git -C "$ROOT" rev-parse --short "$BASE_REV")"
HEAD_SHA="$(git -C "$ROOT" rev-parse --short HEAD)$(git -C "$ROOT" diff --quiet HEAD -- . ':!docs' || echo '+changes')"

build "$ROOT/build/release" -DCMAKE_BUILD_TYPE=Release -DCOBROWSE_TESTS=OFF
if [ "$(git -C "$BASE" rev-parse --short HEAD 2>/dev/null || true)" != "$BASE_SHA" ]; then
  say "checking out $BASE_SHA in ${BASE#$ROOT/} (a git worktree)"
  git -C "$ROOT" worktree remove --force "$BASE" 2>/dev/null || rm -rf "$BASE"
  git -C "$ROOT" worktree prune
  git -C "$ROOT" worktree add --detach "$BASE" "$BASE_SHA" >/dev/null 2>&1
fi
say "building $BASE_SHA (release)"
cmake -S "$BASE" -B "$BASE/build/release" -DCMAKE_BUILD_TYPE=Release -DCOBROWSE_TESTS=OFF >/dev/null
cmake --build "$BASE/build/release" -j"$(nproc)" -- --no-print-directory >/dev/null

BR="$ROOT/bench/relay"
LOADGEN="$ROOT/build/bench-relay/loadgen"
mkdir -p "$ROOT/build/bench-relay"
cc -std=c11 -O2 -g -Wall -Wextra -Werror -Wshadow -Wvla -D_GNU_SOURCE -I"$ROOT" -o "$LOADGEN" "$BR/loadgen.c" \
  "$BR/lg_ws.c" "$BR/lg_conn.c" "$BR/lg_session.c" "$BR/lg_stats.c" -lcrypto

SPID=""
cleanup() {
  [ -n "$SPID" ] && { kill "$SPID" 2>/dev/null; wait "$SPID" 2>/dev/null; }
  pg_stop "$B/pg"
  return 0
}
trap cleanup EXIT
json() { python3 -c "import json,sys; print(json.load(sys.stdin)$1)"; }

# start BIN: a fresh database and cobrowsed under callgrind; sets API, RPORT, ADMIN, SPID.
start() {
  local bin="$1"
  pg_stop "$B/pg"; rm -rf "$B/pg" "$B/run"; mkdir -p "$B/run/data"
  export DATABASE_URL; DATABASE_URL="$(pg_start "$B/pg")"
  local port; port="$(free_port)"; RPORT="$(free_port)"; API="http://127.0.0.1:$port"
  export COBROWSE_DATA_DIR="$B/run/data" COBROWSE_LISTEN="127.0.0.1:$port" COBROWSE_LOG_LEVEL=warn
  export COBROWSE_RELAY_LISTEN="127.0.0.1:$RPORT" COBROWSE_PROXY_LISTEN="127.0.0.1:$(free_port)"
  ADMIN="$("$bin" create-admin-token --name bench 2>/dev/null)"
  valgrind --tool=callgrind --callgrind-out-file="$B/run/cg.out" "$bin" serve \
    --relay-handshakes-per-second 1000000 --relay-idle-seconds 3600 >"$B/run/server.out" 2>"$B/run/server.log" &
  SPID=$!
  wait_http "$API/healthz" 180 || die "cobrowsed did not start under valgrind (see ${B#$ROOT/}/run/server.log)"
  local tenant
  tenant=$(curl -fsS -XPOST "$API/v1/tenants" -H "Authorization: Bearer $ADMIN" -H 'Content-Type: application/json' \
    -d '{"name":"bench-cost","limits":{"concurrent_sessions":1000000,"sessions_per_minute":1000000,
         "frames_per_second":1000000,"bytes_per_second":1073741824,"agents_per_session":1000,
         "api_requests_per_second":1000000}}' | json '["id"]')
  export BENCH_KEY; BENCH_KEY=$(curl -fsS -XPOST "$API/v1/api_keys" -H "Authorization: Bearer $ADMIN" \
    -H "Cobrowse-Tenant: $tenant" -H 'Content-Type: application/json' -d '{"type":"secret","name":"bench"}' | json '["secret"]')
}
# measured CMD...: zeroes the counters, runs CMD, dumps them; prints the instructions in between.
measured() {
  callgrind_control -z "$SPID" >/dev/null 2>&1
  "$@"
  callgrind_control -d "$SPID" >/dev/null 2>&1
  local f; f=$(ls -t "$B"/run/cg.out.* | head -n 1)
  awk '/^(summary|totals):/ {print $2; exit}' "$f"
  rm -f "$B"/run/cg.out.*
}
stop() { kill "$SPID" 2>/dev/null; wait "$SPID" 2>/dev/null || true; SPID=""; }
# PostgreSQL's CPU ticks (user + system, all of the cluster's processes).
pg_ticks() {
  local t=0 p
  for p in /proc/[0-9]*; do
    [ "$(readlink "$p/cwd" 2>/dev/null)" = "$B/pg/data" ] || continue
    set -- $(cut -d' ' -f14,15 "$p/stat" 2>/dev/null || echo 0 0); t=$((t + $1 + $2))
  done
  echo "$t"
}

rest_load() { # N GETs of one session, then N session creations, one at a time
  node -e '
const [n, api] = [+process.argv[1], process.argv[2]];
const auth = { authorization: "Bearer " + process.env.BENCH_KEY };
(async () => {
  const s = await (await fetch(api + "/v1/sessions", { method: "POST", headers: { ...auth, "content-type": "application/json" }, body: "{}" })).json();
  for (let i = 0; i < n; i++) { const r = await fetch(api + "/v1/sessions/" + s.id, { headers: auth }); await r.text(); if (r.status !== 200) throw new Error("GET " + r.status); }
  for (let i = 0; i < n; i++) { const r = await fetch(api + "/v1/sessions", { method: "POST", headers: { ...auth, "content-type": "application/json" }, body: "{}" }); await r.text(); if (r.status !== 201) throw new Error("POST " + r.status); }
})().catch((e) => { console.error(e); process.exit(1); });' "$N" "$API"
}
relay_load() { # AGENTS SIZE RATE: 4 sessions, latency mode (a fixed rate callgrind keeps up with)
  "$LOADGEN" --url "ws://127.0.0.1:$RPORT/v1/relay" --tokens "$B/run/tokens.txt" --mode latency \
    --agents-per-session "$1" --size "$2" --rate "$3" --seconds 10 --warmup 1 --timeout 180 \
    2>>"$B/run/loadgen.err" | grep '^RESULT' >"$B/run/result.txt"
}

RESULTS="$B/results.txt"
: >"$RESULTS"
for side in base head; do
  bin="$ROOT/build/release/cobrowsed"
  [ $side = base ] && bin="$BASE/build/release/cobrowsed"
  say "$side: REST, $N GET /v1/sessions/{id} and $N POST /v1/sessions under callgrind"
  start "$bin"
  t0=$(pg_ticks)
  ins=$(measured rest_load)
  echo "$side rest instructions=$ins requests=$((2 * N)) pg_ticks=$(($(pg_ticks) - t0))" >>"$RESULTS"
  stop
  for fig in "1 1024 400" "5 1024 400" "1 65536 100"; do
    set -- $fig
    say "$side: relay, ${2}-byte frames to $1 agent(s) at $3 frames/s for 10 s under callgrind"
    start "$bin"
    node "$BR/tokens.mjs" rest "$API" 4 "$1" >"$B/run/tokens.txt"
    ins=$(measured relay_load "$1" "$2" "$3")
    frames=$(grep -o ' frames=[0-9]*' "$B/run/result.txt" | cut -d= -f2)
    lost=$(grep -o ' lost=[0-9]*' "$B/run/result.txt" | cut -d= -f2)
    echo "$side relay_${2}_$1 instructions=$ins frames=${frames:-0} lost=${lost:-?}" >>"$RESULTS"
    stop
  done
done

python3 - "$RESULTS" "$BASE_SHA" "$HEAD_SHA" <<'PY'
import sys
rows = {}
for line in open(sys.argv[1]):
    side, name, *kv = line.split()
    rows[(side, name)] = dict(x.split("=") for x in kv)
print(f"\nInstructions in cobrowsed (callgrind), base {sys.argv[2]} against this tree {sys.argv[3]}")
print(f"{'figure':28} {'base':>14} {'this tree':>14} {'ratio':>7}")
for name in ["rest", "relay_1024_1", "relay_1024_5", "relay_65536_1"]:
    b, h = rows[("base", name)], rows[("head", name)]
    unit = "requests" if name == "rest" else "frames"
    pb = int(b["instructions"]) / max(1, int(b[unit]))
    ph = int(h["instructions"]) / max(1, int(h[unit]))
    label = {"rest": "per REST request (GET+POST)", "relay_1024_1": "per frame, 1 KiB, 1 agent",
             "relay_1024_5": "per frame, 1 KiB, 5 agents", "relay_65536_1": "per frame, 64 KiB, 1 agent"}[name]
    print(f"{label:28} {pb:14,.0f} {ph:14,.0f} {ph / pb:6.3f}x")
    for side, r in (("base", b), ("this tree", h)):
        if r.get("lost", "0") not in ("0",):
            print(f"  warning: {side} lost={r['lost']} frames in {name}")
pb, ph = rows[("base", "rest")], rows[("head", "rest")]
print(f"PostgreSQL CPU for the REST figure: base {int(pb['pg_ticks']) * 10} ms, this tree {int(ph['pg_ticks']) * 10} ms "
      "(CPU time, not instructions: it moves with machine load)")
PY
