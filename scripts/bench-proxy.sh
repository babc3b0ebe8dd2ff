#!/usr/bin/env bash
# Stylesheet proxy benchmark (not a test). Usage: scripts/bench-proxy.sh [rounds, default 15]
# Step 1, rewrite: css_rewrite's throughput on real stylesheets (Bootstrap, Font Awesome: the
# tests' pinned npm packages) against a plain copy of the same bytes in the same run, one core.
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
rewrite_step
