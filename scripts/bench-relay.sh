#!/usr/bin/env bash
# Relay benchmark (not a test): bench/relay/loadgen against our relay (a release cobrowsed with a
# fresh private PostgreSQL) and against a Node.js `ws` room broadcast (bench/relay/baseline.mjs),
# in the same run on the same machine, then a side-by-side table with the ratio and the targets.
# The throughput runs also go against bench/relay/ceiling.c, the least work any relay must do
# (C, epoll, no checks): the rig's ceiling, which shows how far any relay can go on this machine.
#   throughput  delivered frames/s and MB/s at agents, at saturation: 1 KiB and 64 KiB frames,
#               1 and 5 agents per session
#   latency     visitor-to-agent p50/p99 at 4,000 frames/s in, alone and with 10,000 idle
#               connections held meanwhile (what a node with many quiet sessions sees)
#   idle        server RSS delta / N for N = 10,000 idle connections held
#   resume      N = 2,000 streaming sessions, every socket closed at once: time until every
#               visitor has its hello and every agent every frame, and frames lost (ours only)
# Usage: scripts/bench-relay.sh [--quick] [--baseline-only]
#   --quick          2-second runs (a smoke test of the whole pipeline)
#   --baseline-only  the Node baseline alone, with look-alike tokens (no cobrowsed, no PostgreSQL)
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
QUICK=0 OURS=1
for a in "$@"; do
  case "$a" in
    --quick) QUICK=1 ;;
    --baseline-only) OURS=0 ;;
    *) die "unknown argument $a (usage: scripts/bench-relay.sh [--quick] [--baseline-only])" ;;
  esac
done
SECS=5 WARMUP=1
[ $QUICK -eq 1 ] && SECS=2 WARMUP=0.5
TP_SESSIONS=32      # sessions streaming at once in the throughput runs
LAT_SESSIONS=100    # 4,000 frames/s in = 40 frames/s per session
LAT_RATE=4000
IDLE_N=10000        # 2,000 sessions x (1 visitor + 4 agents)
RESUME_N=2000       # sessions, 1 agent each: 4,000 connections
RESUME_RATE=4000    # frames/s in, in total, while streaming (2 a second per session)

ensure_apt
command -v node >/dev/null && command -v npm >/dev/null || ensure_apt nodejs npm
BR="$ROOT/bench/relay"
if [ ! -d "$BR/node_modules/ws" ] || [ "$BR/package-lock.json" -nt "$BR/node_modules/.package-lock.json" ]; then
  say "installing the baseline's ws from npm (bench/relay/package-lock.json)"
  (cd "$BR" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
fi
B="$STATE/bench-relay"
mkdir -p "$ROOT/build/bench-relay"
LOADGEN="$ROOT/build/bench-relay/loadgen"
say "building the load generator"
cc -std=c11 -O2 -g -Wall -Wextra -Werror -Wshadow -Wvla -D_GNU_SOURCE -I"$ROOT" -o "$LOADGEN" "$BR/loadgen.c" \
  "$BR/lg_ws.c" "$BR/lg_conn.c" "$BR/lg_session.c" "$BR/lg_stats.c" -lcrypto
CEILING="$ROOT/build/bench-relay/ceiling"
cc -std=c11 -O2 -g -Wall -Wextra -Werror -Wshadow -Wvla -D_GNU_SOURCE -o "$CEILING" "$BR/ceiling.c" -lcrypto

# 10,000 connections on each side, and the server's and PostgreSQL's own descriptors.
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
[ "$(ulimit -n)" -ge $((IDLE_N + 2000)) ] || die "ulimit -n is $(ulimit -n): $((IDLE_N + 2000)) descriptors are needed"

SPID="" NPID="" CPID=""
cleanup() {
  [ -n "$SPID" ] && { kill "$SPID" 2>/dev/null; wait "$SPID" 2>/dev/null; }
  [ -n "$CPID" ] && { kill "$CPID" 2>/dev/null; wait "$CPID" 2>/dev/null; }
  [ -n "$NPID" ] && { kill "$NPID" 2>/dev/null; wait "$NPID" 2>/dev/null; }
  [ $OURS -eq 1 ] && pg_stop "$B/pg"
  return 0
}
trap cleanup EXIT
[ $OURS -eq 1 ] && pg_stop "$B/pg"
rm -rf "$B"; mkdir -p "$B/data"

wait_port() { # PORT SECONDS
  local deadline=$((SECONDS + $2))
  until (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; do
    [ $SECONDS -lt $deadline ] || return 1
    sleep 0.1
  done
}
rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }

if [ $OURS -eq 1 ]; then
  build "$ROOT/build/release" -DCMAKE_BUILD_TYPE=Release -DCOBROWSE_TESTS=OFF
  BIN="$ROOT/build/release/cobrowsed"
  # Not `--help | grep -q`: grep exits at the first match and, under pipefail, cobrowsed's SIGPIPE
  # on the rest of its output made this fail at random.
  HELP="$("$BIN" --help 2>&1 || true)"
  [[ "$HELP" == *--relay-listen* ]] || die "this cobrowsed has no relay (--relay-listen): try --baseline-only"
  export DATABASE_URL; DATABASE_URL="$(pg_start "$B/pg")"
  PORT="$(free_port)" RPORT="$(free_port)"
  API="http://127.0.0.1:$PORT"
  export COBROWSE_DATA_DIR="$B/data" COBROWSE_LISTEN="127.0.0.1:$PORT" COBROWSE_LOG_LEVEL=warn
  export COBROWSE_RELAY_LISTEN="127.0.0.1:$RPORT" COBROWSE_PROXY_LISTEN="127.0.0.1:$(free_port)"
  ADMIN="$("$BIN" create-admin-token --name bench 2>/dev/null)"
fi

# start_ours [HANDSHAKES_PER_SECOND]: a fresh cobrowsed for each figure, so that one run's
# histories and queues never weigh on the next.
start_ours() {
  local hs="${1:-1000000}"
  "$BIN" serve --relay-handshakes-per-second "$hs" --relay-idle-seconds 3600 \
    >>"$B/server.out" 2>>"$B/server.log" &
  SPID=$!
  wait_http "$API/healthz" 30 && wait_port "$RPORT" 30 || die "cobrowsed did not start (see ${B#$ROOT/}/server.log)"
}
stop_ours() { kill "$SPID" 2>/dev/null; wait "$SPID" 2>/dev/null || true; SPID=""; }
start_node() {
  NODE_PORT="$(free_port)"
  node "$BR/baseline.mjs" "$NODE_PORT" >>"$B/baseline.out" 2>>"$B/baseline.log" &
  NPID=$!
  wait_port "$NODE_PORT" 30 || die "the baseline did not start (see ${B#$ROOT/}/baseline.log)"
}
stop_node() { kill "$NPID" 2>/dev/null; wait "$NPID" 2>/dev/null || true; NPID=""; }
start_ceiling() {
  CEILING_PORT="$(free_port)"
  "$CEILING" "$CEILING_PORT" >>"$B/ceiling.out" 2>>"$B/ceiling.log" &
  CPID=$!
  wait_port "$CEILING_PORT" 30 || die "the ceiling relay did not start (see ${B#$ROOT/}/ceiling.log)"
}
stop_ceiling() { kill "$CPID" 2>/dev/null; wait "$CPID" 2>/dev/null || true; CPID=""; }

if [ $OURS -eq 1 ]; then
  start_ours
  json() { python3 -c "import json,sys; print(json.load(sys.stdin)$1)"; }
  say "creating a tenant with limits high enough not to throttle the benchmark"
  TENANT=$(curl -fsS -XPOST "$API/v1/tenants" -H "Authorization: Bearer $ADMIN" -H 'Content-Type: application/json' \
    -d '{"name":"bench-relay","limits":{"concurrent_sessions":1000000,"sessions_per_minute":1000000,
         "frames_per_second":1000000,"bytes_per_second":1073741824,"agents_per_session":1000,
         "api_requests_per_second":1000000}}' | json '["id"]')
  export BENCH_KEY; BENCH_KEY=$(curl -fsS -XPOST "$API/v1/api_keys" -H "Authorization: Bearer $ADMIN" \
    -H "Cobrowse-Tenant: $TENANT" -H 'Content-Type: application/json' -d '{"type":"secret","name":"bench"}' | json '["secret"]')
  stop_ours
fi

# tokens NAME SESSIONS AGENTS: fresh sessions for one figure (they start with no history).
tokens() {
  local f="$B/tokens-$1.txt"
  if [ $OURS -eq 1 ]; then
    [ -n "$SPID" ] || die "tokens need the server"
    node "$BR/tokens.mjs" rest "$API" "$2" "$3" >"$f"
  else
    node "$BR/tokens.mjs" fake "$2" "$3" >"$f"
  fi
  echo "$f"
}

# lg SERVER NAME URL ARGS...: one loadgen run; its RESULT line goes to results.txt.
lg() {
  local server="$1" name="$2" url="$3"; shift 3
  local out; out=$("$LOADGEN" --url "$url" "$@" 2>"$B/$server-$name.err" | grep '^RESULT' | tail -n 1) || true
  [ -n "$out" ] || out="RESULT error=no_result"
  echo "$server $name ${out#RESULT }" >>"$B/results.txt"
  grep -m 3 '^WARN' "$B/$server-$name.err" >&2 || true
}

# run_pair NAME SETUP_SESSIONS SETUP_AGENTS LOADGEN_ARGS...: the same run against both servers,
# and for the throughput figures (tp_*) against the ceiling too.
run_pair() {
  local name="$1" ns="$2" na="$3"; shift 3
  local tf
  if [ $OURS -eq 1 ]; then
    start_ours
    tf=$(tokens "$name" "$ns" "$na")
    say "ours: $name"
    lg ours "$name" "ws://127.0.0.1:$RPORT/v1/relay" --tokens "$tf" --server-pid "$SPID" "$@"
    stop_ours
  else
    tf=$(tokens "$name" "$ns" "$na")
  fi
  start_node
  say "baseline: $name"
  lg node "$name" "ws://127.0.0.1:$NODE_PORT/v1/relay" --tokens "$tf" --server-pid "$NPID" "$@"
  stop_node
  if [[ "$name" == tp_* ]]; then
    start_ceiling
    say "ceiling: $name"
    lg ceiling "$name" "ws://127.0.0.1:$CEILING_PORT/v1/relay" --tokens "$tf" --server-pid "$CPID" "$@"
    stop_ceiling
  fi
}

# idle SERVER PID URL TOKENS: holds IDLE_N connections and records the server's RSS growth.
idle() {
  local server="$1" pid="$2" url="$3" tf="$4" before after
  sleep 0.5
  before=$(rss_kib "$pid")
  say "$server: $IDLE_N idle connections"
  "$LOADGEN" --url "$url" --tokens "$tf" --mode idle --connections "$IDLE_N" --agents-per-session 4 \
    --seconds "$((SECS > 3 ? SECS : 3))" >"$B/$server-idle.out" 2>"$B/$server-idle.err" &
  local lpid=$! deadline=$((SECONDS + 90))
  until grep -q '^READY' "$B/$server-idle.out" 2>/dev/null; do
    kill -0 $lpid 2>/dev/null && [ $SECONDS -lt $deadline ] || break
    sleep 0.1
  done
  sleep 1 # let the server settle (lazy allocations, the runtime's heap growth)
  after=$(rss_kib "$pid")
  wait $lpid || true
  local out; out=$(grep '^RESULT' "$B/$server-idle.out" | tail -n 1) || true
  [ -n "$out" ] || out="RESULT error=no_result"
  echo "$server idle ${out#RESULT } rss_before_kib=$before rss_after_kib=$after" >>"$B/results.txt"
  grep -m 3 '^WARN' "$B/$server-idle.err" >&2 || true
}

# latency_loaded SERVER PID URL IDLE_TOKENS LATENCY_TOKENS: the latency run while IDLE_N other
# connections are open and idle (the server's event loop must not pay for each of them).
latency_loaded() {
  local server="$1" pid="$2" url="$3" itf="$4" ltf="$5"
  say "$server: latency with $IDLE_N idle connections held"
  "$LOADGEN" --url "$url" --tokens "$itf" --mode idle --connections "$IDLE_N" --agents-per-session 4 \
    --seconds 600 >"$B/$server-held.out" 2>"$B/$server-held.err" &
  local hpid=$! deadline=$((SECONDS + 90))
  until grep -q '^READY' "$B/$server-held.out" 2>/dev/null; do
    kill -0 $hpid 2>/dev/null && [ $SECONDS -lt $deadline ] || break
    sleep 0.1
  done
  lg "$server" latency_loaded "$url" --tokens "$ltf" --server-pid "$pid" --mode latency \
    --rate "$LAT_RATE" --size 1024 "${COMMON[@]}"
  kill $hpid 2>/dev/null; wait $hpid 2>/dev/null || true
}

: >"$B/results.txt"
COMMON=(--seconds "$SECS" --warmup "$WARMUP")
for size in 1024 65536; do
  for agents in 1 5; do
    run_pair "tp_${size}_$agents" "$TP_SESSIONS" "$agents" --mode throughput --size "$size" \
      --agents-per-session "$agents" "${COMMON[@]}"
  done
done
run_pair latency "$LAT_SESSIONS" 1 --mode latency --rate "$LAT_RATE" --size 1024 "${COMMON[@]}"

if [ $OURS -eq 1 ]; then
  start_ours
  tf=$(tokens idle "$((IDLE_N / 5))" 4)
  idle ours "$SPID" "ws://127.0.0.1:$RPORT/v1/relay" "$tf"
  stop_ours
  start_ours
  htf=$(tokens held "$((IDLE_N / 5))" 4)
  ltf=$(tokens latency_loaded "$LAT_SESSIONS" 1)
  latency_loaded ours "$SPID" "ws://127.0.0.1:$RPORT/v1/relay" "$htf" "$ltf"
  stop_ours
else
  tf=$(tokens idle "$((IDLE_N / 5))" 4)
  htf=$(tokens held "$((IDLE_N / 5))" 4)
  ltf=$(tokens latency_loaded "$LAT_SESSIONS" 1)
fi
start_node
idle node "$NPID" "ws://127.0.0.1:$NODE_PORT/v1/relay" "$tf"
stop_node
start_node
latency_loaded node "$NPID" "ws://127.0.0.1:$NODE_PORT/v1/relay" "$htf" "$ltf"
stop_node

if [ $OURS -eq 1 ]; then
  # The node's default handshake budget (2,000/s) stays on here: the priority lane for resumes is
  # part of what this figure measures.
  start_ours 2000
  tf=$(tokens resume "$RESUME_N" 1)
  say "ours: $RESUME_N sessions, mass disconnect and resume"
  lg ours resume "ws://127.0.0.1:$RPORT/v1/relay" --tokens "$tf" --mode resume --agents-per-session 1 \
    --rate "$RESUME_RATE" --seconds "$SECS" --warmup "$WARMUP" --timeout 30
  stop_ours
fi

python3 - "$B/results.txt" "$SECS" "$OURS" <<'PY'
import os, sys
rows = {}
for line in open(sys.argv[1]):
    server, name, *kv = line.split()
    rows[(server, name)] = dict(p.split("=", 1) for p in kv if "=" in p)
secs, ours_ran = sys.argv[2], sys.argv[3] == "1"

def get(server, name, key):
    v = rows.get((server, name), {}).get(key)
    try:
        return float(v)
    except (TypeError, ValueError):
        return None

def fmt(v, unit="", nd=0):
    if v is None:
        return "n/a"
    return f"{v:,.{nd}f}{unit}"

def verdict(ok, text):
    return f"{text}: " + ("met" if ok else "NOT met")

lines = []
def row(label, o, n, ratio="", target="", c=""):
    lines.append(f"{label:<34}{o:>14}{n:>14}{ratio:>9}{c:>14}  {target}")

print(f"\nRelay on {os.cpu_count()} cores: loadgen, server and PostgreSQL share them; "
      f"{secs} s per run")
row("figure", "ours", "baseline", "ratio", "target", "ceiling")
ceiling_notes = []
for size, sl in ((1024, "1 KiB"), (65536, "64 KiB")):
    for agents in (1, 5):
        name = f"tp_{size}_{agents}"
        o, n = get("ours", name, "frames_per_s"), get("node", name, "frames_per_s")
        c = get("ceiling", name, "frames_per_s")
        r = o / n if o is not None and n else None
        label = f"frames/s {sl}, {agents} agent{'s' if agents > 1 else ''}"
        row(label, fmt(o), fmt(n), fmt(r, "x", 2) if r is not None else "",
            verdict(r is not None and r >= 5, ">= 5x baseline") if ours_ran else "", fmt(c))
        if c is not None and n:
            ceiling_notes.append(
                f"  {label:<32} ceiling {c / n:5.2f}x baseline"
                + (f", ours {o / c:4.0%} of it" if o is not None else "")
                + ("  (5x baseline is beyond this machine)" if c < 5 * n else ""))
        o, n = get("ours", name, "mb_per_s"), get("node", name, "mb_per_s")
        c = get("ceiling", name, "mb_per_s")
        r = o / n if o is not None and n else None
        row(f"  MB/s", fmt(o, "", 1), fmt(n, "", 1), fmt(r, "x", 2) if r is not None else "",
            c=fmt(c, "", 1))
for pct in ("p50", "p99"):
    o, n = get("ours", "latency", f"{pct}_us"), get("node", "latency", f"{pct}_us")
    row(f"latency {pct} at 4,000 frames/s",
        fmt(o / 1000 if o is not None else None, " ms", 2),
        fmt(n / 1000 if n is not None else None, " ms", 2), "",
        verdict(o is not None and o < 5000, "< 5 ms") if pct == "p99" and ours_ran else "")
for pct in ("p50", "p99"):
    o, n = get("ours", "latency_loaded", f"{pct}_us"), get("node", "latency_loaded", f"{pct}_us")
    row(f"  with 10,000 idle held, {pct}",
        fmt(o / 1000 if o is not None else None, " ms", 2),
        fmt(n / 1000 if n is not None else None, " ms", 2), "",
        verdict(o is not None and o < 5000, "< 5 ms") if pct == "p99" and ours_ran else "")
def per_conn(server):
    a, b, c = (get(server, "idle", k) for k in ("rss_after_kib", "rss_before_kib", "connections"))
    return (a - b) / c if None not in (a, b, c) and c else None
o, n = per_conn("ours"), per_conn("node")
row("memory per idle connection", fmt(o, " KiB", 1), fmt(n, " KiB", 1), "",
    verdict(o is not None and o <= 16, "<= 16 KiB") if ours_ran else "")
o, n = get("ours", "idle", "open"), get("node", "idle", "open")
want = get("ours", "idle", "connections") or get("node", "idle", "connections")
row("idle connections held", fmt(o), fmt(n), "",
    verdict(o is not None and o >= 10000 and o == want, "10,000") if ours_ran else "")
t, lost = get("ours", "resume", "resume_s"), get("ours", "resume", "lost")
complete = get("ours", "resume", "complete")
row("resume of 2,000 sessions", fmt(t, " s", 2), "n/a", "",
    verdict(t is not None and t < 5 and lost == 0 and complete == 1, "< 5 s, 0 lost")
    if ours_ran else "")
row("  frames lost", fmt(lost), "n/a")
print("\n".join(lines))
if ceiling_notes:
    print("\nThe ceiling (bench/relay/ceiling.c: C, epoll, no token check, history, limits or"
          " ordering;\nthe least work any relay must do) against the baseline, and ours against it:")
    print("\n".join(ceiling_notes))

# Which side was saturated: a server near 100 % of a core is the limit; a load generator near
# 100 % means the figure is the rig's, not the server's.
cpu = []
for name in [f"tp_{s}_{a}" for s in (1024, 65536) for a in (1, 5)] + ["latency", "latency_loaded"]:
    cells = []
    for server in ("ours", "node", "ceiling"):
        sp, lp = get(server, name, "cpu_server_pct"), get(server, name, "cpu_loadgen_pct")
        cells.append(f"{fmt(sp, '%')}/{fmt(lp, '%')}" if sp is not None else "")
    cpu.append(f"  {name:<16}{cells[0]:>14}{cells[1]:>14}{cells[2]:>14}")
print("\nCPU while measuring, server/loadgen, % of one core:")
print(f"  {'run':<16}{'ours':>14}{'baseline':>14}{'ceiling':>14}")
print("\n".join(cpu))

notes = []
for (server, name), r in sorted(rows.items()):
    if "error" in r:
        notes.append(f"{server} {name}: no result ({r['error']}; see .cobrowse/bench-relay/{server}-{name}.err)")
        continue
    bad = {k: r[k] for k in ("lost", "dups", "violations", "resets", "slow_downs", "reconnects",
                             "rejects", "closed", "dead") if r.get(k, "0") not in ("0", "0.0")}
    if bad:
        notes.append(f"{server} {name}: " + " ".join(f"{k}={v}" for k, v in bad.items()))
if notes:
    print("\nAnomalies (loadgen counters that should be 0; details in .cobrowse/bench-relay/*.err):")
    print("\n".join("  " + n for n in notes))
PY
