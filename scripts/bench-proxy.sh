#!/usr/bin/env bash
# Stylesheet proxy benchmark (not a test). Usage: scripts/bench-proxy.sh [rounds, default 15]
# Step 1, rewrite: css_rewrite's throughput on real stylesheets (Bootstrap, Font Awesome: the
# tests' pinned npm packages) against a plain copy of the same bytes in the same run, one core.
# Step 2, HTTP: proxy requests/s on cache hits (an image, and a stylesheet, which is signed for
# the requesting cap on every answer) with wrk against GET /healthz and against a static file of
# the same size served by cobrowsed, in the same run; the p99 a hit adds to a viewer's page load is
# the hit's p99 minus the static file's. HTTP_SECONDS (default 10) and HTTP_CONNS (default 50).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
ROUNDS="${1:-15}"

ensure_node
build "$ROOT/build/release" -DCMAKE_BUILD_TYPE=Release -DCOBROWSE_TESTS=OFF

# ---- Step 1: rewrite throughput ----
rewrite_step() {
  local real="$ROOT/build/release/css-real" m="$ROOT/build/release/css-real/node_modules"
  say "installing the stylesheets (tests/fixtures/css/package-lock.json)"
  bash "$ROOT/tests/fixtures/css/install.sh" "$real" >/dev/null
  say "rewrite vs memcpy, median of $ROUNDS alternating rounds of >= 50 ms each"
  local out
  out=$("$ROOT/build/release/rewrite_bench" -r "$ROUNDS" "$m/bootstrap/dist/css/bootstrap.css" \
    "$m/bootstrap/dist/css/bootstrap.min.css" "$m/@fortawesome/fontawesome-free/css/all.css")
  python3 - "$out" <<'PY'
import os, sys
rows = [l.split() for l in sys.argv[1].strip().splitlines()]
print(f"\nStylesheet rewrite (hover copies + a URL callback), one core of {os.cpu_count()}")
print(f"{'stylesheet':<22}{'bytes':>9}{'rewrite MB/s':>14}{'memcpy MB/s':>13}{'ratio':>8}  target")
for name, n, rw, cp in rows:
    rw, cp = float(rw), float(cp)
    verdict = ">= 200 MB/s: " + ("met" if rw >= 200 else "NOT met")
    print(f"{name:<22}{int(n):>9}{rw:>14.0f}{cp:>13.0f}{rw/cp:>8.3f}  {verdict}")
PY
}
# PROXY_BENCH_STEP=http runs the HTTP step alone.
[ "${PROXY_BENCH_STEP:-all}" = http ] || rewrite_step

# ---- Step 2: HTTP, cache hits ----
http_step() {
  local secs="${HTTP_SECONDS:-10}" conns="${HTTP_CONNS:-50}"
  ensure_apt wrk
  local B="$STATE/bench-proxy" BIN="$ROOT/build/release/cobrowsed"
  pg_stop "$B/pg"; rm -rf "$B"; mkdir -p "$B/data" "$B/web/assets"
  export DATABASE_URL; DATABASE_URL="$(pg_start "$B/pg")"
  local port oport api
  port="$(free_port)"; oport="$(free_port)"; api="http://127.0.0.1:$port"
  head -c 10240 /dev/urandom >"$B/web/assets/hit.png"
  export COBROWSE_DATA_DIR="$B/data" COBROWSE_LISTEN="127.0.0.1:$port" COBROWSE_LOG_LEVEL=warn
  export COBROWSE_RELAY_LISTEN="127.0.0.1:$(free_port)" COBROWSE_PROXY_LISTEN="127.0.0.1:$(free_port)"
  local admin; admin="$("$BIN" create-admin-token --name bench 2>/dev/null)"
  node "$ROOT/bench/proxy/origin.mjs" --listen "127.0.0.1:$oport" --file "$B/web/assets/hit.png" >"$B/origin.out" &
  local opid=$!
  # The origin is on loopback: the bench allows 127.0.0.0/8, as scripts/run.sh does for the demo.
  "$BIN" serve --web-root "$B/web" --proxy-allow-private 127.0.0.0/8 >"$B/server.out" 2>"$B/server.log" &
  local pid=$!
  trap "kill $pid $opid 2>/dev/null; wait $pid 2>/dev/null; pg_stop '$B/pg'" EXIT
  wait_http "$api/healthz" 30 || die "server did not start (see ${B#$ROOT/}/server.log)"
  wait_http "http://127.0.0.1:$oport/count" 30 || die "origin did not start"

  json() { python3 -c "import json,sys; print(json.load(sys.stdin)$1)"; }
  local tenant session agent base
  tenant=$(curl -fsS -XPOST "$api/v1/tenants" -H "Authorization: Bearer $admin" -H 'Content-Type: application/json' \
    -d "{\"name\":\"bench\",\"allowed_origins\":[\"http://127.0.0.1:$oport\"]}" | json '["id"]')
  session=$(curl -fsS -XPOST "$api/v1/sessions" -H "Authorization: Bearer $admin" -H "Cobrowse-Tenant: $tenant" \
    -H 'Content-Type: application/json' -d '{}' | json '["id"]')
  agent=$(curl -fsS -XPOST "$api/v1/sessions/$session/agent_tokens" -H "Authorization: Bearer $admin" \
    -H "Cobrowse-Tenant: $tenant" -H 'Content-Type: application/json' -d '{"agent":{"id":"bench"},"ttl_seconds":3600}' | json '["token"]')
  base=$(curl -fsS "$api/v1/token/session" -H "Authorization: Bearer $agent" | json '["proxy_base"]')
  local b64png b64css
  b64png=$(printf '%s' "http://127.0.0.1:$oport/hit.png" | base64 -w0 | tr '+/' '-_' | tr -d '=')
  b64css=$(printf '%s' "http://127.0.0.1:$oport/hit.css" | base64 -w0 | tr '+/' '-_' | tr -d '=')
  curl -fsS -o /dev/null "$base/asset/$b64png" && curl -fsS -o /dev/null "$base/css/$b64css" ||
    die "the proxy did not serve the warm-up requests (see ${B#$ROOT/}/server.log)"
  local before; before=$(curl -fsS "http://127.0.0.1:$oport/count")

  run() { # run NAME URL [CONNS]: one wrk run; prints "NAME rps p50_ms p99_ms non2xx"
    local name="$1" out c="${3:-$conns}"
    say "wrk: $name (${secs}s, $c connections)"
    out=$(wrk -t"$((c < 2 ? 1 : 2))" -c"$c" -d"${secs}s" --latency "$2")
    echo "$out" >"$B/wrk-$name.txt"
    python3 - "$name" "$B/wrk-$name.txt" <<'PY'
import re, sys
out = open(sys.argv[2]).read()
def ms(label):
    m = re.search(r"^\s*%s%%\s+([\d.]+)(us|ms|s)\s*$" % label, out, re.M)
    v, u = float(m.group(1)), m.group(2)
    return v / 1000 if u == "us" else v * 1000 if u == "s" else v
rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
print(f"{sys.argv[1]} {rps:.0f} {ms('50'):.2f} {ms('99'):.2f} {int(non2xx.group(1)) if non2xx else 0}")
PY
  }
  local results
  results=$(
    run healthz "$api/healthz"
    run static_10k "$api/assets/hit.png"
    run proxy_asset_hit "$base/asset/$b64png"
    run proxy_css_hit "$base/css/$b64css"
    # One connection: a viewer's page load asks for a few resources, not a flood.
    run static_10k_c1 "$api/assets/hit.png" 1
    run proxy_asset_hit_c1 "$base/asset/$b64png" 1
    run proxy_css_hit_c1 "$base/css/$b64css" 1
  )
  local after; after=$(curl -fsS "http://127.0.0.1:$oport/count")
  python3 - "$results" "$conns" "$((after - before))" <<'PY'
import os, sys
rows = {l.split()[0]: l.split()[1:] for l in sys.argv[1].strip().splitlines()}
base = float(rows["healthz"][0])
print(f"\nProxy cache hits at {sys.argv[2]} connections on {os.cpu_count()} cores (wrk, same machine); "
      f"origin requests during the runs: {sys.argv[3]}")
print(f"{'request':<18}{'req/s':>10}{'p50 ms':>9}{'p99 ms':>9}{'non-2xx':>9}{'vs healthz':>12}")
for name, (rps, p50, p99, bad) in rows.items():
    print(f"{name:<18}{float(rps):>10.0f}{float(p50):>9.2f}{float(p99):>9.2f}{int(bad):>9}{float(rps)/base:>11.2f}x")
hit = float(rows["proxy_asset_hit"][0])
print(f"proxy hits >= 10,000/s: {'met' if hit >= 10000 else 'NOT met'} ({hit:.0f}/s)")
for suffix, what in (("", f"at {sys.argv[2]} connections"), ("_c1", "at 1 connection")):
    for name in ("proxy_asset_hit", "proxy_css_hit"):
        print(f"p99 a hit adds {what} ({name}{suffix} - static_10k{suffix}): "
              f"{float(rows[name + suffix][2]) - float(rows['static_10k' + suffix][2]):+.2f} ms")
PY
}
http_step
