#!/usr/bin/env bash
# Cluster benchmark (not a test; docs/cluster.md): release cobrowsed nodes on a private PostgreSQL
# and a private redis-server (scripts/lib.sh pg_start, redis_start), driven by bench/relay/loadgen
# (several --url: the nodes), every figure against a baseline in the same run:
#   throughput  delivered frames/s at agents, at saturation, 1 KiB frames, 1 and 5 agents per
#               session, and visitor-to-agent p50/p99 at a fixed rate, in three set-ups:
#                 one    one node without Redis (the baseline)
#                 same3  three nodes on Redis, every client on the first (the cost of Redis alone)
#                 split3 three nodes on Redis, the visitor on the first, its agents on the others
#   failover    N streaming sessions spread over three nodes (visitor on one, agent on the next),
#               kill -9 of one node: time until its visitors have their hello again on the others
#               and every agent has every frame made before the kill, and frames lost
#   memory      Redis used_memory before and while N live sessions with H frames of history each
#               are held, divided by N
# Usage: scripts/bench-cluster.sh [--quick]   (--quick: short runs, fewer sessions; a smoke run)
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
QUICK=0
for a in "$@"; do
  case "$a" in
    --quick) QUICK=1 ;;
    *) die "unknown argument $a (usage: scripts/bench-cluster.sh [--quick])" ;;
  esac
done
SECS=5 WARMUP=1 TP_SESSIONS=32 LAT_SESSIONS=100 LAT_RATE=4000
FAIL_N=2000 FAIL_RATE=4000 MEM_N=1000 MEM_FRAMES=20
[ $QUICK -eq 1 ] && SECS=1 WARMUP=0.3 FAIL_N=200 MEM_N=100

ensure_apt redis-server
ensure_node
BR="$ROOT/bench/relay"
B="$STATE/bench-cluster"
mkdir -p "$ROOT/build/bench-relay"
LOADGEN="$ROOT/build/bench-relay/loadgen"
say "building the load generator"
cc -std=c11 -O2 -g -Wall -Wextra -Werror -Wshadow -Wvla -D_GNU_SOURCE -I"$ROOT" -o "$LOADGEN" "$BR/loadgen.c" \
  "$BR/lg_ws.c" "$BR/lg_conn.c" "$BR/lg_session.c" "$BR/lg_stats.c" -lcrypto
build "$ROOT/build/release" -DCMAKE_BUILD_TYPE=Release -DCOBROWSE_TESTS=OFF
BIN="$ROOT/build/release/cobrowsed"

ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
[ "$(ulimit -n)" -ge $((FAIL_N * 2 + 2000)) ] || die "ulimit -n is $(ulimit -n): $((FAIL_N * 2 + 2000)) descriptors are needed"

PIDS=()
stop_nodes() {
  local p t0=$SECONDS
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  [ ${#PIDS[@]} -eq 0 ] || echo "stop $((SECONDS - t0)) s" >>"$B/timing.txt"
  PIDS=()
}
cleanup() {
  stop_nodes
  redis_stop "$B/redis"
  pg_stop "$B/pg"
}
trap cleanup EXIT
redis_stop "$B/redis"
pg_stop "$B/pg"
rm -rf "$B"; mkdir -p "$B"

export DATABASE_URL; DATABASE_URL="$(pg_start "$B/pg")"
REDIS_URL="$(redis_start "$B/redis")"
REDIS_SOCK="${REDIS_URL#unix://}"
rcli() { redis-cli -s "$REDIS_SOCK" "$@"; }
REDIS_PID="$(cat "$B/redis/redis.pid")"
# The nodes of one platform share its secrets (docs/cluster.md); each has a data dir of its own.
hex32() { python3 -c 'import secrets; print(secrets.token_hex(32))'; }
export COBROWSE_JWT_SECRET COBROWSE_KEY_HASH_SECRET COBROWSE_DATA_KEY COBROWSE_LOG_LEVEL=warn
COBROWSE_JWT_SECRET="$(hex32)" COBROWSE_KEY_HASH_SECRET="$(hex32)" COBROWSE_DATA_KEY="$(hex32)"
mkdir -p "$B/data-0"
ADMIN="$(COBROWSE_DATA_DIR="$B/data-0" "$BIN" create-admin-token --name bench 2>/dev/null)"

# start_nodes N REDIS(0|1): N fresh nodes (fresh for each figure, so that one run's histories
# never weigh on the next; Redis emptied too). Sets PIDS, API (node 0's REST), RURL[i].
start_nodes() {
  local n="$1" redis="$2" i port rport
  # --quick keeps running nodes of the same kind (starting nodes is most of its time)
  [ $QUICK -eq 1 ] && [ ${#PIDS[@]} -eq "$n" ] && [ "${NODES_REDIS:-}" = "$redis" ] && return 0
  NODES_REDIS="$redis"
  stop_nodes
  local t0=$SECONDS
  [ "$redis" -eq 1 ] && rcli flushall >/dev/null
  RURL=()
  for ((i = 0; i < n; i++)); do
    port="$(free_port)" rport="$(free_port)"
    mkdir -p "$B/data-$i"
    local extra=()
    [ "$redis" -eq 1 ] && extra=(--redis-url "$REDIS_URL" --node-id "bench-$i")
    COBROWSE_DATA_DIR="$B/data-$i" "$BIN" serve --listen "127.0.0.1:$port" \
      --relay-listen "127.0.0.1:$rport" --proxy-listen "127.0.0.1:$(free_port)" \
      --relay-idle-seconds 3600 "${extra[@]}" >>"$B/node-$i.out" 2>>"$B/node-$i.log" &
    PIDS+=($!)
    NODE_API[$i]="http://127.0.0.1:$port"
    RURL[$i]="ws://127.0.0.1:$rport/v1/relay"
  done
  for ((i = 0; i < n; i++)); do
    wait_http "${NODE_API[$i]}/readyz" 30 || die "node $i did not become ready (see ${B#$ROOT/}/node-$i.log)"
  done
  API="${NODE_API[0]}"
  echo "start $n $((SECONDS - t0)) s" >>"$B/timing.txt"
}

json() { python3 -c "import json,sys; print(json.load(sys.stdin)$1)"; }
start_nodes 1 0
say "creating a tenant with limits high enough not to throttle the benchmark"
TENANT=$(curl -fsS -XPOST "$API/v1/tenants" -H "Authorization: Bearer $ADMIN" -H 'Content-Type: application/json' \
  -d '{"name":"bench-cluster","limits":{"concurrent_sessions":1000000,"sessions_per_minute":1000000,
       "frames_per_second":1000000,"bytes_per_second":1073741824,"agents_per_session":1000,
       "api_requests_per_second":1000000}}' | json '["id"]')
export BENCH_KEY; BENCH_KEY=$(curl -fsS -XPOST "$API/v1/api_keys" -H "Authorization: Bearer $ADMIN" \
  -H "Cobrowse-Tenant: $TENANT" -H 'Content-Type: application/json' -d '{"type":"secret","name":"bench"}' | json '["secret"]')

tokens() { # NAME SESSIONS AGENTS: fresh sessions (no history) through node 0's REST API
  node "$BR/tokens.mjs" rest "$API" "$2" "$3" >"$B/tokens-$1.txt"
  echo "$B/tokens-$1.txt"
}
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat" 2>/dev/null || echo 0; }

# lg SETUP NAME ARGS...: one loadgen run (its RESULT line to results.txt) with the CPU each
# process used over the whole run (connects included) in ticks: where the time went.
lg() {
  local setup="$1" name="$2"; shift 2
  local pids=("${PIDS[@]}") before=() p i out
  [ "$setup" != one ] && pids+=("$REDIS_PID")
  for p in "${pids[@]}"; do before+=("$(cpu_ticks "$p")"); done
  local t0=$SECONDS
  out=$("$LOADGEN" "$@" 2>"$B/$setup-$name.err" | grep '^RESULT' | tail -n 1) || true
  [ -n "$out" ] || out="RESULT error=no_result"
  local cpu="" wall=$((SECONDS - t0))
  for i in "${!pids[@]}"; do
    p=$(($(cpu_ticks "${pids[$i]}") - before[i]))
    cpu+=" cpu$i=$((p < 0 ? 0 : p))" # a killed node: what it used is gone with it
  done
  echo "$setup $name ${out#RESULT } wall_s=$wall$cpu" >>"$B/results.txt"
  grep -m 3 '^WARN' "$B/$setup-$name.err" >&2 || true
}

# urls SETUP: the loadgen's --url list of a set-up
urls() {
  case "$1" in
    one | same3) echo "--url ${RURL[0]}" ;;
    split3) echo "--url ${RURL[0]} --url ${RURL[1]} --url ${RURL[2]} --layout split" ;;
  esac
}
spids() { local p; for p in "${PIDS[@]}"; do printf -- '--server-pid %s ' "$p"; done
  [ "$1" = one ] || printf -- '--server-pid %s' "$REDIS_PID"; }

: >"$B/results.txt"
COMMON=(--seconds "$SECS" --warmup "$WARMUP" --size 1024)
for setup in one same3 split3; do
  n=3 redis=1
  [ $setup = one ] && n=1 redis=0
  for agents in 1 5; do
    start_nodes $n $redis
    tf=$(tokens "tp$agents" "$TP_SESSIONS" "$agents")
    say "$setup: throughput, $agents agent(s) per session"
    # BENCH_PERF=1: a profile of node 0 (the visitors' node) while it is saturated
    if [ "${BENCH_PERF:-0}" = 1 ] && command -v perf >/dev/null; then
      perf record -F 999 -g -p "${PIDS[0]}" -o "$B/perf-$setup-tp$agents.data" -- sleep "$SECS" \
        >/dev/null 2>&1 &
    fi
    # shellcheck disable=SC2046
    lg $setup "tp_$agents" $(urls $setup) $(spids $setup) --tokens "$tf" --mode throughput \
      --agents-per-session "$agents" "${COMMON[@]}"
    [ $setup = split3 ] && [ $agents = 5 ] && for i in 0 1 2; do
      curl -fsS "${NODE_API[$i]}/metrics" >"$B/metrics-split3-tp5-node$i.txt" 2>/dev/null || true
    done
    start_nodes $n $redis
    tf=$(tokens "lat$agents" "$LAT_SESSIONS" "$agents")
    say "$setup: latency at $LAT_RATE frames/s in, $agents agent(s) per session"
    # shellcheck disable=SC2046
    lg $setup "lat_$agents" $(urls $setup) $(spids $setup) --tokens "$tf" --mode latency \
      --rate "$LAT_RATE" --agents-per-session "$agents" "${COMMON[@]}"
  done
done

# Memory: N sessions stream MEM_FRAMES frames each (one snapshot, then diffs: all of it stays in
# the history), then are held open (visitor + agent, spread over the nodes) while INFO is read.
start_nodes 3 1
tf=$(tokens memory "$MEM_N" 1)
mem_before=$(rcli info memory | awk -F: '/^used_memory:/ {print $2+0}')
keys_before=$(rcli dbsize)
say "memory: $MEM_N sessions with $MEM_FRAMES frames of history each"
MEM_SECS=$(python3 -c "print(max(1, $MEM_N * $MEM_FRAMES / $LAT_RATE))")
lg split3 memory_fill --url "${RURL[0]}" --url "${RURL[1]}" --url "${RURL[2]}" --layout spread \
  --tokens "$tf" --mode latency --rate "$LAT_RATE" --seconds "$MEM_SECS" --warmup 0 --size 1024
"$LOADGEN" --url "${RURL[0]}" --url "${RURL[1]}" --url "${RURL[2]}" --layout spread --tokens "$tf" \
  --mode idle --connections $((MEM_N * 2)) --agents-per-session 1 --seconds 600 \
  >"$B/memory-hold.out" 2>"$B/memory-hold.err" &
HOLD=$!
deadline=$((SECONDS + 90))
until grep -q '^READY' "$B/memory-hold.out" 2>/dev/null; do
  kill -0 $HOLD 2>/dev/null && [ $SECONDS -lt $deadline ] || break
  sleep 0.1
done
sleep 1 # presence writes of the last joins
mem_after=$(rcli info memory | awk -F: '/^used_memory:/ {print $2+0}')
keys_after=$(rcli dbsize)
hist=$(awk '{print $1}' "$tf" | head -n 20 | while read -r id; do rcli xlen "cb:{$id}:h"; done |
  awk '{s += $1; n++} END {print n ? s / n : 0}')
ready=$(grep -c '^READY' "$B/memory-hold.out" || true)
kill $HOLD 2>/dev/null; wait $HOLD 2>/dev/null || true
echo "redis memory sessions=$MEM_N before=$mem_before after=$mem_after keys_before=$keys_before keys_after=$keys_after history_frames=$hist ready=$ready" >>"$B/results.txt"
# Failover: the nodes' default handshake budget (2,000/s) stays on: the priority lane for resumes
# is part of the figure.
start_nodes 3 1
tf=$(tokens failover "$FAIL_N" 1)
say "failover: $FAIL_N streaming sessions over 3 nodes, kill -9 of node 2"
KILLED="${PIDS[2]}"
lg split3 failover --url "${RURL[0]}" --url "${RURL[1]}" --url "${RURL[2]}" --layout spread \
  --kill-pid "$KILLED" --kill-url 2 --tokens "$tf" --mode resume --agents-per-session 1 \
  --rate "$FAIL_RATE" --seconds "$SECS" --warmup "$WARMUP" --timeout 30
wait "$KILLED" 2>/dev/null || true

stop_nodes

python3 - "$B/results.txt" "$SECS" "$FAIL_N" "$MEM_N" "$(uptime)" <<'PY'
import os, sys
rows = {}
for line in open(sys.argv[1]):
    setup, name, *kv = line.split()
    rows[(setup, name)] = dict(p.split("=", 1) for p in kv if "=" in p)
secs, fail_n, mem_n, up = sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]

def get(setup, name, key):
    try:
        return float(rows.get((setup, name), {}).get(key))
    except (TypeError, ValueError):
        return None

def fmt(v, unit="", nd=0):
    return "n/a" if v is None else f"{v:,.{nd}f}{unit}"

def ratio(a, b):
    return f"{a / b:.2f}x" if a is not None and b else ""

print(f"\nCluster on {os.cpu_count()} cores (loadgen, nodes, Redis and PostgreSQL share them); "
      f"{secs} s per run; load after the run:{up.split('load average:')[-1]}")
print(f"{'figure':<34}{'one node':>12}{'3 nodes,':>12}{'':>8}{'3 nodes,':>12}{'':>8}")
print(f"{'':<34}{'no Redis':>12}{'all on one':>12}{'ratio':>8}{'split':>12}{'ratio':>8}")
def row(label, key, conv=lambda v: v, unit="", nd=0, names=()):
    for name, sub in names:
        o, s, x = (get(st, name, key) for st in ("one", "same3", "split3"))
        o, s, x = (conv(v) if v is not None else None for v in (o, s, x))
        print(f"{label + sub:<34}{fmt(o, unit, nd):>12}{fmt(s, unit, nd):>12}{ratio(s, o):>8}"
              f"{fmt(x, unit, nd):>12}{ratio(x, o):>8}")
row("frames/s 1 KiB", "frames_per_s", names=(("tp_1", ", 1 agent"), ("tp_5", ", 5 agents")))
ms = lambda v: v / 1000
for agents in (1, 5):
    for pct in ("p50", "p99"):
        row(f"latency {pct} at 4,000/s in", f"{pct}_us", ms, " ms", 2,
            names=((f"lat_{agents}", f", {agents} ag."),))
print("\nCPU over each whole run (connects included), seconds: node 0 / node 1 / node 2 / redis")
for (setup, name), r in sorted(rows.items()):
    if setup == "redis":
        continue
    c = [int(r[k]) / os.sysconf("SC_CLK_TCK") for k in sorted(r) if k.startswith("cpu") and k[3:].isdigit()]
    print(f"  {setup:<7}{name:<13} wall {r.get('wall_s', '?'):>3} s  " + " / ".join(f"{v:.1f}" for v in c)
          + (f"   (server+redis while measuring: {r['cpu_server_pct']} % of a core, loadgen {r['cpu_loadgen_pct']} %)"
             if "cpu_server_pct" in r else ""))

t, lost = get("split3", "failover", "resume_s"), get("split3", "failover", "lost")
done_ = get("split3", "failover", "complete")
print(f"\nfailover: {fail_n} sessions streaming over 3 nodes, kill -9 of one: resumed in {fmt(t, ' s', 2)}, "
      f"{fmt(lost)} frames lost, complete={fmt(done_)} (target < 5 s, 0 lost: "
      + ("met" if t is not None and t < 5 and lost == 0 and done_ == 1 else "NOT met") + ")")
r = rows.get(("redis", "memory"), {})
try:
    per = (float(r["after"]) - float(r["before"])) / mem_n
    print(f"Redis memory per live session ({mem_n} sessions, {float(r['history_frames']):.0f} frames of 1 KiB "
          f"in each history, visitor + agent held): {per / 1024:,.1f} KiB "
          f"(used_memory {int(r['before']):,} -> {int(r['after']):,} B, keys {r['keys_before']} -> {r['keys_after']})")
except (KeyError, ValueError):
    print("Redis memory: n/a (see .cobrowse/bench-cluster/memory-hold.err)")

notes = []
for (setup, name), r in sorted(rows.items()):
    if "error" in r:
        notes.append(f"{setup} {name}: no result ({r['error']}; see .cobrowse/bench-cluster/{setup}-{name}.err)")
        continue
    bad = {k: r[k] for k in ("lost", "dups", "violations", "resets", "slow_downs", "rejects", "closed", "dead")
           if r.get(k, "0") not in ("0", "0.0")}
    if bad:
        notes.append(f"{setup} {name}: " + " ".join(f"{k}={v}" for k, v in bad.items()))
if notes:
    print("\nAnomalies (loadgen counters that should be 0; details in .cobrowse/bench-cluster/*.err):")
    print("\n".join("  " + n for n in notes))
PY
