#!/usr/bin/env bash
# Builds and runs every test: unit tests (cmocka under ctest), then integration tests of the REST
# API and of the WebSocket relay against the real binary and a fresh private PostgreSQL, browser
# end-to-end tests (Debian's chromium driven by playwright-core, with the demo of web/demo), the
# spec lint and the generated TypeScript client, the quick-start script's signal handling.
# Everything runs under AddressSanitizer and UndefinedBehaviorSanitizer; the unit tests also run
# under ThreadSanitizer (build/tsan), and cppcheck reads every C file. Idempotent.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

ensure_apt chromium cppcheck redis-server haproxy
ensure_npm
BUILD="$ROOT/build/asan"
build "$BUILD" -DCMAKE_BUILD_TYPE=Debug -DCOBROWSE_SANITIZE=ON
build_web "$BUILD/web"
export COBROWSED="$BUILD/cobrowsed" COBROWSE_WEB_ROOT="$BUILD/web"
export ASAN_OPTIONS="abort_on_error=0:detect_leaks=1:halt_on_error=1"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
export REDOCLY_TELEMETRY=off

passed=0 failed=0
results=()
step() { # step NAME CMD...: runs one suite, records its outcome, never stops the run
  local name="$1"; shift
  say "$name"
  if "$@"; then passed=$((passed + 1)); results+=("ok    $name")
  else failed=$((failed + 1)); results+=("FAIL  $name"); fi
}

format_check() {
  local files; files=$(cd "$ROOT" && git ls-files '*.c' '*.h')
  (cd "$ROOT" && clang-format --dry-run --Werror $files)
}
step "C formatting (clang-format, .clang-format at the root)" format_check
step "C layers (includes point app -> api -> core, scripts/check-layers.sh)" bash "$ROOT/scripts/check-layers.sh"
step "unit tests (ctest)" ctest --test-dir "$BUILD" --output-on-failure
step "CSS rewriter fuzzing (libFuzzer, 20 s; long runs: scripts/fuzz.sh)" bash "$ROOT/scripts/fuzz.sh" 20

# ThreadSanitizer cannot share a build with ASan: its own build dir, the unit tests again (the
# rate limiter's and the relay fixtures' threads). A report makes the test exit non-zero.
tsan_unit() {
  build "$ROOT/build/tsan" -DCMAKE_BUILD_TYPE=Debug -DCOBROWSE_TSAN=ON &&
    TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1" ctest --test-dir "$ROOT/build/tsan" --output-on-failure
}
step "unit tests under ThreadSanitizer (build/tsan)" tsan_unit

# cppcheck over every C file of the build (compile_commands.json), clean today apart from the
# justified suppressions of .ci/cppcheck/suppressions.txt: any new finding fails the run.
static_analysis() {
  mkdir -p "$ROOT/build/cppcheck"
  cppcheck -q --project="$BUILD/compile_commands.json" --std=c11 \
    --enable=warning,performance,portability,style --inline-suppr \
    --library="$ROOT/.ci/cppcheck/jansson.cfg" --suppressions-list="$ROOT/.ci/cppcheck/suppressions.txt" \
    --cppcheck-build-dir="$ROOT/build/cppcheck" --error-exitcode=1 \
    --template='{file}:{line}: {severity} ({id}): {message}'
}
step "static analysis (cppcheck)" static_analysis
step "OpenAPI lint (redocly)" bash -c "cd '$ROOT/tests' && npm run --silent lint:spec"
step "browser code: type check, unit tests, frame vectors" bash -c "cd '$ROOT/web' && npx tsc -p tsconfig.json && node --test test/"

# A fresh database and server for the integration suites, in a folder of this run's own so that
# two runs never share state. Kept when something fails (its logs say why), removed otherwise.
for old in "$STATE"/test-*; do # clusters of runs that were killed
  [ -d "$old" ] && ! kill -0 "${old##*-}" 2>/dev/null && { pg_stop "$old/pg"; rm -rf "$old"; }
done
T="$STATE/test-$$"
mkdir -p "$T/data"
export DATABASE_URL
DATABASE_URL="$(pg_start "$T/pg")"
# Two nodes starting at once must not both apply the migrations (advisory lock).
migrate_twice() {
  local a b
  "$COBROWSED" migrate 2>"$T/migrate-a.log" & a=$!
  "$COBROWSED" migrate 2>"$T/migrate-b.log" & b=$!
  wait $a && wait $b || { cat "$T"/migrate-*.log >&2; return 1; }
  [ "$(grep -h '"applying migration"' "$T"/migrate-*.log | wc -l)" -eq "$(ls "$ROOT"/migrations/*.sql | wc -l)" ] ||
    { echo "each migration should be applied exactly once:" >&2; cat "$T"/migrate-*.log >&2; return 1; }
}
step "concurrent migrations on a fresh database" migrate_twice
PORT="$(free_port)" RELAY_PORT="$(free_port)"
export COBROWSE_BASE_URL="http://127.0.0.1:$PORT" COBROWSE_RELAY_URL="ws://127.0.0.1:$RELAY_PORT/v1/relay"
export COBROWSE_DATA_DIR="$T/data" COBROWSE_LISTEN="127.0.0.1:$PORT" COBROWSE_LOG_LEVEL=warn
PROXY_PORT="$(free_port)"
export COBROWSE_RELAY_LISTEN="127.0.0.1:$RELAY_PORT" COBROWSE_PROXY_LISTEN="127.0.0.1:$PROXY_PORT"
export COBROWSE_PROXY_URL="http://127.0.0.1:$PROXY_PORT"
COBROWSE_ADMIN_TOKEN="$("$COBROWSED" create-admin-token --name tests 2>"$T/admin.log")" ||
  { cat "$T/admin.log" >&2; die "could not create an admin token"; }
export COBROWSE_ADMIN_TOKEN
# The browser tests' stylesheets and fonts are on 127.0.0.1: the proxy may reach 127.0.0.1/32
# here, not 127.0.0.2, where tests/e2e/proxy.test.mjs serves a page whose own stylesheet the proxy
# must fail to fetch (a flag, not the environment: servers the tests start do not inherit it;
# tests/integration/proxy_ssrf.test.mjs starts one that may not).
"$COBROWSED" serve --proxy-allow-private 127.0.0.1/32 >"$T/server.out" 2>"$T/server.log" &
SERVER_PID=$!
cleanup() {
  kill "$SERVER_PID" 2>/dev/null || true
  wait "$SERVER_PID" 2>/dev/null || true
  pg_stop "$T/pg"
}
trap cleanup EXIT
wait_http "$COBROWSE_BASE_URL/healthz" 60 || { cat "$T/server.log" >&2; die "server did not start"; }

step "integration tests (node --test)" node --test --test-concurrency=4 "$ROOT"/tests/integration/*.test.mjs
step "relay tests (node --test, real WebSockets)" node --test "$ROOT"/tests/relay/*.test.mjs
# Several nodes of one platform (docs/cluster.md): each file starts a private redis-server on a free
# loopback port (never the system's), three nodes on this run's database and, for the failover,
# HAProxy in front of them (tests/cluster/lib/). One file at a time: three ASan nodes and up to
# 1,000 WebSockets fill both cores.
step "cluster tests (redis-server, 3 nodes, HAProxy)" node --test --test-concurrency=1 "$ROOT"/tests/cluster/*.test.mjs
# The relay's threads (libev loop, worker, listener, the cluster's Redis client) and the REST
# threads under ThreadSanitizer:
# these files start servers of their own from the TSan build (COBROWSED), each checked for a
# clean exit (a TSan report exits 66). Known races: .ci/tsan.supp.
step "relay under ThreadSanitizer (build/tsan)" env -u COBROWSE_BASE_URL -u COBROWSE_ADMIN_TOKEN \
  -u COBROWSE_RELAY_URL COBROWSED="$ROOT/build/tsan/cobrowsed" \
  TSAN_OPTIONS="suppressions=$ROOT/.ci/tsan.supp second_deadlock_stack=1" \
  node --test --test-concurrency=1 "$ROOT"/tests/relay/stream.test.mjs "$ROOT"/tests/relay/control.test.mjs \
  "$ROOT"/tests/cluster/sessions.test.mjs "$ROOT"/tests/cluster/lifecycle.test.mjs
# scripts/run.sh, started on free ports with this run's database and build, then stopped by
# SIGTERM and by SIGINT: nothing of it may be left running.
step "quick-start script (scripts/run.sh stops cleanly)" env COBROWSE_RUN_SH_BUILD="$BUILD" \
  node --test --test-concurrency=1 "$ROOT"/tests/scripts/*.test.mjs
# One file at a time: two browsers at once on two cores make timings flaky. Screenshots of
# failures are kept in the run's folder.
export COBROWSE_E2E_ARTIFACTS="$T/e2e"
step "browser end-to-end tests (Chromium)" node --test --test-concurrency=1 "$ROOT"/tests/e2e/*.test.mjs
step "TypeScript client generated from the spec" bash -c \
  "cd '$ROOT/tests' && npm run --silent sdk:generate && npm run --silent sdk:build && npm run --silent sdk:test"

# The server must stop cleanly and the sanitizers must have nothing to say.
kill -TERM "$SERVER_PID"
server_status=0
wait "$SERVER_PID" || server_status=$?
trap 'pg_stop "$T/pg"' EXIT
if [ $server_status -ne 0 ] || grep -qE "ERROR: (Address|Leak)Sanitizer|runtime error:" "$T/server.log"; then
  failed=$((failed + 1)); results+=("FAIL  server exit and sanitizers (status $server_status, see ${T#$ROOT/}/server.log)")
  grep -A30 -E "ERROR: (Address|Leak)Sanitizer|runtime error:" "$T/server.log" | head -60 >&2 || true
else
  passed=$((passed + 1)); results+=("ok    server exit and sanitizers")
fi

echo
printf '%s\n' "${results[@]}"
echo "suites: $passed passed, $failed failed"
if [ $failed -eq 0 ]; then pg_stop "$T/pg"; rm -rf "$T"; else echo "logs kept in ${T#$ROOT/}" >&2; fi
[ $failed -eq 0 ]
