#!/usr/bin/env bash
# Builds and runs the platform and its demo: cobrowsed (REST API, relay, the browser code) and the
# demo shop with its partner backend (web/demo/server.mjs) on a second origin. With no
# DATABASE_URL, starts a private PostgreSQL in .cobrowse/. Ctrl-C, or SIGINT or SIGTERM to this
# script's process, stops everything (demo, cobrowsed, PostgreSQL) before it exits.
# Idempotent: installs what is missing, rebuilds what changed, reuses the demo tenant.
# Arguments are passed to `cobrowsed serve`. COBROWSE_DEMO_LISTEN moves the demo (127.0.0.1:8090),
# COBROWSE_BUILD the build folder (build/release; tests/scripts/run_sh.test.mjs uses build/asan).
set -euo pipefail
# Started in the background of a non-interactive shell (`scripts/run.sh &` in a script or CI),
# this script inherits SIGINT ignored, and bash cannot trap a signal ignored at its start: a
# SIGINT to its pid would do nothing. So it starts again, once, with the default actions restored.
if [ -z "${COBROWSE_RUN_SH_SIGNALS:-}" ]; then
  export COBROWSE_RUN_SH_SIGNALS=1
  exec env --default-signal=INT,TERM bash "$0" "$@"
fi
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

ensure_apt
BUILD_DIR="${COBROWSE_BUILD:-$ROOT/build/release}"
build "$BUILD_DIR" -DCMAKE_BUILD_TYPE=Release -DCOBROWSE_TESTS=OFF
BIN="$BUILD_DIR/cobrowsed"
build_web "$BUILD_DIR/web"
export COBROWSE_WEB_ROOT="$BUILD_DIR/web"

export COBROWSE_DATA_DIR="${COBROWSE_DATA_DIR:-$STATE}"
mkdir -p "$COBROWSE_DATA_DIR"
LOGS="$COBROWSE_DATA_DIR/logs"
mkdir -p "$LOGS"

SERVER_PID="" DEMO_PID="" OWN_PG=""

# wait_started NAME PID URL SECONDS LOG HINT: waits until URL answers, or dies with the end of LOG
# when the process stopped (HINT says the likely cause) or the time ran out.
wait_started() {
  local name="$1" pid="$2" url="$3" deadline=$((SECONDS + $4)) log="$5" hint="$6"
  until curl -fsS -o /dev/null "$url" 2>/dev/null; do
    if ! kill -0 "$pid" 2>/dev/null; then
      tail -n 20 "$log" >&2
      die "$name stopped at start ($hint)"
    fi
    [ $SECONDS -lt $deadline ] || { tail -n 20 "$log" >&2; die "$name did not answer $url"; }
    sleep 0.1
  done
}
cleanup() {
  # A second Ctrl-C or SIGTERM must not cut the cleanup short and orphan the children (they are
  # in sessions of their own: only this script stops them). SIGKILL still ends it at once.
  trap '' INT TERM
  # Ctrl-C also kills a `| tee` reading our output: writing a progress line must not kill the
  # cleanup with SIGPIPE.
  trap '' PIPE
  trap - EXIT
  set +e
  if [ -n "$DEMO_PID" ] && kill -0 "$DEMO_PID" 2>/dev/null; then
    say "stopping the demo"
    kill -TERM "$DEMO_PID" 2>/dev/null || true
    wait "$DEMO_PID" 2>/dev/null || true
  fi
  if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
    say "stopping cobrowsed"
    kill -TERM "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
  fi
  if [ -n "$OWN_PG" ]; then
    say "stopping the private PostgreSQL"
    pg_stop "$STATE/pg"
  fi
}
# A signal stops the children, then this script, with the usual status (128 + signal). Bash
# runs the trap as soon as the signal arrives while it waits in `wait`; during a foreground
# command (the build, curl) it runs it when that command returns.
trap cleanup EXIT
trap 'cleanup; exit 130' INT
trap 'cleanup; exit 143' TERM

if [ -z "${DATABASE_URL:-}" ]; then
  OWN_PG=1
  DATABASE_URL="$(pg_start "$STATE/pg")"
  export DATABASE_URL
fi
export COBROWSE_LISTEN="${COBROWSE_LISTEN:-127.0.0.1:8080}"
# A development run: clients are told to reconnect at once when it stops (production: 10 s).
export COBROWSE_RELAY_DRAIN_SECONDS="${COBROWSE_RELAY_DRAIN_SECONDS:-1}"
# The demo's shop is on loopback (DEMO_LISTEN): the stylesheet proxy refuses loopback unless the
# operator allows it (docs/proxy.md), so the demo allows 127.0.0.0/8. Never do this in production.
export COBROWSE_PROXY_ALLOW_PRIVATE="${COBROWSE_PROXY_ALLOW_PRIVATE:-127.0.0.0/8}"
API="${COBROWSE_PUBLIC_URL:-http://${COBROWSE_LISTEN/#0.0.0.0:/127.0.0.1:}}"
API="${API%/}"
DEMO_LISTEN="${COBROWSE_DEMO_LISTEN:-127.0.0.1:8090}"
DEMO_URL="http://${DEMO_LISTEN/#0.0.0.0:/127.0.0.1:}"

say "starting cobrowsed on $API (log: ${LOGS#$ROOT/}/cobrowsed.log)"
# Children get a session of their own (setsid): Ctrl-C reaches this script only, which then stops
# them in order (demo, cobrowsed, PostgreSQL). Without job control the background job is no
# process group leader, so setsid execs without forking: $! is the server's own pid.
setsid "$BIN" serve "$@" >>"$LOGS/cobrowsed.out" 2>>"$LOGS/cobrowsed.log" &
SERVER_PID=$!
wait_started cobrowsed "$SERVER_PID" "$API/healthz" 60 "$LOGS/cobrowsed.log" \
  "is $COBROWSE_LISTEN already in use by another run?"

# A platform admin token in the data dir: cobrowsed writes one on its first start with an empty
# database; when that file is missing or its token no longer works (a new database), make one.
TOKEN_FILE="$COBROWSE_DATA_DIR/admin-token"
token_works() {
  [ -s "$TOKEN_FILE" ] &&
    [ "$(curl -s -o /dev/null -w '%{http_code}' "$API/v1/tenants?limit=1" -H "Authorization: Bearer $(tr -d '[:space:]' <"$TOKEN_FILE")")" = 200 ]
}
if ! token_works; then
  say "creating a platform admin token in ${TOKEN_FILE#$ROOT/}"
  (umask 077 && "$BIN" create-admin-token --name run.sh >"$TOKEN_FILE.tmp" 2>>"$LOGS/cobrowsed.log") ||
    die "could not create an admin token (see ${LOGS#$ROOT/}/cobrowsed.log)"
  mv "$TOKEN_FILE.tmp" "$TOKEN_FILE"
  token_works || die "the new admin token does not work"
fi
chmod 600 "$TOKEN_FILE"

say "starting the demo shop and its partner backend on $DEMO_URL (log: ${LOGS#$ROOT/}/demo.log)"
setsid node "$ROOT/web/demo/server.mjs" --api "$API" --admin-token-file "$TOKEN_FILE" --listen "$DEMO_LISTEN" \
  --state "$COBROWSE_DATA_DIR/demo.json" >>"$LOGS/demo.log" 2>&1 &
DEMO_PID=$!
wait_started "the demo" "$DEMO_PID" "$DEMO_URL/healthz" 30 "$LOGS/demo.log" "is $DEMO_LISTEN already in use?"

CONSOLE_URL="$API/demo/console/"
[ "$DEMO_URL" = "http://127.0.0.1:8090" ] || CONSOLE_URL="$API/demo/console/?partner=$DEMO_URL"
cat <<MSG

  Co-browse the demo: open these two in two browser windows side by side.
    1. The visitor's shop:   $DEMO_URL/         press "Get help", note the 6-digit code
    2. The agent console:    $CONSOLE_URL   press "Join" next to that code

  API:                  $API   (reference: openapi/openapi.yaml, guide: README.md)
  Platform admin token: in ${TOKEN_FILE#$ROOT/} (mode 600; never printed, so never in a log)
  Try:  curl -s $API/v1/tenants -H "Authorization: Bearer \$(cat ${TOKEN_FILE#$ROOT/})"
  The binary: ${BIN#$ROOT/} --help   (it is not on your PATH)
  Logs: ${LOGS#$ROOT/}/cobrowsed.log, ${LOGS#$ROOT/}/demo.log
  Stop with Ctrl-C.

MSG

# Runs until Ctrl-C, or until one of the two stops by itself (then the other is stopped too).
set +e
wait -n "$SERVER_PID" "$DEMO_PID"
status=$?
set -e
if ! kill -0 "$SERVER_PID" 2>/dev/null; then
  SERVER_PID=""
  say "cobrowsed stopped (status $status); last lines of its log:"
  tail -n 10 "$LOGS/cobrowsed.log" >&2
elif ! kill -0 "$DEMO_PID" 2>/dev/null; then
  DEMO_PID=""
  say "the demo stopped (status $status); last lines of its log:"
  tail -n 10 "$LOGS/demo.log" >&2
fi
exit 1
