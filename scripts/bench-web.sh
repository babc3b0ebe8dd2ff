#!/usr/bin/env bash
# Browser-side benchmark (not a test): the visitor SDK and the agent viewer in Debian's chromium
# against a release cobrowsed with a fresh private PostgreSQL (bench/web/bench.mjs says what it
# measures). Prints the SDK's gzipped size, the main-thread time it adds on a 5,000-node page
# during 1,000 mutations, visitor-to-viewer latency p50/p95 and the viewer's heap over 50,000
# events, each beside its baseline from the same run.
# Usage: scripts/bench-web.sh [--quick]   (--quick: fewer runs and samples, a smoke test)
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
for a in "$@"; do
  case "$a" in
    --quick) ;;
    *) die "unknown argument $a (usage: scripts/bench-web.sh [--quick])" ;;
  esac
done

ensure_apt chromium
ensure_npm
build "$ROOT/build/release" -DCMAKE_BUILD_TYPE=Release -DCOBROWSE_TESTS=OFF
build_web "$ROOT/build/release/web"
BIN="$ROOT/build/release/cobrowsed"
B="$STATE/bench-web"
pg_stop "$B/pg"; rm -rf "$B"; mkdir -p "$B/data"
export DATABASE_URL; DATABASE_URL="$(pg_start "$B/pg")"
PORT="$(free_port)"
export COBROWSE_BASE_URL="http://127.0.0.1:$PORT" COBROWSE_WEB_ROOT="$ROOT/build/release/web"
export COBROWSE_DATA_DIR="$B/data" COBROWSE_LISTEN="127.0.0.1:$PORT" COBROWSE_LOG_LEVEL=warn
export COBROWSE_RELAY_LISTEN="127.0.0.1:$(free_port)" COBROWSE_PROXY_LISTEN="127.0.0.1:$(free_port)"
COBROWSE_ADMIN_TOKEN="$("$BIN" create-admin-token --name bench 2>/dev/null)"
export COBROWSE_ADMIN_TOKEN
"$BIN" serve >"$B/server.out" 2>"$B/server.log" &
PID=$!
trap 'kill $PID 2>/dev/null; wait $PID 2>/dev/null; pg_stop "$B/pg"' EXIT
wait_http "$COBROWSE_BASE_URL/healthz" 30 || die "server did not start (see ${B#$ROOT/}/server.log)"
node "$ROOT/bench/web/bench.mjs" "$@"
