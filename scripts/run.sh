#!/usr/bin/env bash
# Builds and runs the platform. With no DATABASE_URL, starts a private PostgreSQL in .cobrowse/
# and stops it on exit. Idempotent: installs what is missing, rebuilds what changed.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

ensure_apt
build "$ROOT/build/release" -DCMAKE_BUILD_TYPE=Release -DCOBROWSE_TESTS=OFF
BIN="$ROOT/build/release/cobrowsed"

export COBROWSE_DATA_DIR="${COBROWSE_DATA_DIR:-$STATE}"
mkdir -p "$COBROWSE_DATA_DIR"
if [ -z "${DATABASE_URL:-}" ]; then
  DATABASE_URL="$(pg_start "$STATE/pg")"
  export DATABASE_URL
  trap 'say "stopping the private PostgreSQL"; pg_stop "$STATE/pg"' EXIT
fi
export COBROWSE_LISTEN="${COBROWSE_LISTEN:-127.0.0.1:8080}"
API="http://$COBROWSE_LISTEN"

if [ -f "$COBROWSE_DATA_DIR/admin-token" ]; then
  cat <<MSG

  API:                  $API   (reference: openapi/openapi.yaml, guide: README.md)
  Platform admin token: $(cat "$COBROWSE_DATA_DIR/admin-token")
  Try:  curl -s $API/v1/tenants -H "Authorization: Bearer \$(cat ${COBROWSE_DATA_DIR#$ROOT/}/admin-token)"
  Stop with Ctrl-C.

MSG
fi
say "starting cobrowsed on $API"
set +e
"$BIN" serve "$@"
status=$?
set -e
[ $status -eq 0 ] || [ $status -eq 130 ] || exit $status
