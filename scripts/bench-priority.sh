#!/usr/bin/env bash
# Priority-lane benchmark (not a test): 1,000 clients resuming at once, the time until every one
# has its hello on a node whose handshake budget they exceed 5 times, beside the same burst on an
# unthrottled node in the same run (bench/priority/resume-burst.mjs). A release build and a
# private PostgreSQL in .cobrowse/bench-priority/ (removed at the end).
# Usage: scripts/bench-priority.sh [sessions]   (default 500: 1,000 connections)
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

ensure_apt
ensure_npm
build "$ROOT/build/release" -DCMAKE_BUILD_TYPE=Release -DCOBROWSE_TESTS=OFF
build_web "$ROOT/build/release/web"
export COBROWSED="$ROOT/build/release/cobrowsed" COBROWSE_WEB_ROOT="$ROOT/build/release/web"
ulimit -n 65536 2>/dev/null || true

B="$STATE/bench-priority"
trap 'pg_stop "$B/pg"; rm -rf "$B"' EXIT
DATABASE_URL="$(pg_start "$B/pg")"
export DATABASE_URL
"$COBROWSED" migrate 2>"$B/migrate.log" || { cat "$B/migrate.log" >&2; die "migrations failed"; }
say "the resume burst, with the lane and unthrottled"
node "$ROOT/bench/priority/resume-burst.mjs" "${1:-500}"
