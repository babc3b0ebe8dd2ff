#!/usr/bin/env bash
# libFuzzer over the CSS tokenizer and rewriter (tests/fuzz/css_fuzz.c: sanitizers plus the
# rewriter's invariants). Builds with clang (-fsanitize=fuzzer,address,undefined) into build/fuzz
# and runs for the given time, one process, with a corpus seeded from tests/fixtures/css/ and,
# when they were installed by the unit tests, the real stylesheets of build/*/css-real/.
# The corpus grows in build/fuzz/corpus across runs; a failing input is written to
# build/fuzz/crash-* (replay: build/fuzz/css_fuzz build/fuzz/crash-...).
# Usage: scripts/fuzz.sh [seconds, default 300]
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
DURATION="${1:-300}"

# libFuzzer and the sanitizer runtimes are only "recommended" by Debian 12's clang: named here.
ensure_apt clang libclang-rt-14-dev
OUT="$ROOT/build/fuzz"
mkdir -p "$OUT/corpus" "$OUT/seed"
say "building the CSS fuzz target into ${OUT#$ROOT/}"
# CSS_REWRITE_CROSSCHECK: the rewriter also runs the token-by-token scan wherever it took a
# byte-level fast path, and aborts when the two disagree.
clang -std=c11 -g -O1 -D_GNU_SOURCE -DCSS_REWRITE_CROSSCHECK -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
  -I"$ROOT" "$ROOT/tests/fuzz/css_fuzz.c" "$ROOT/core/proxy/css_tok.c" "$ROOT/core/proxy/css_rewrite.c" "$ROOT/core/proxy/css_scan.c" "$ROOT/core/proxy/css_hover.c" "$ROOT/core/proxy/css_rwbuf.c" \
  -o "$OUT/css_fuzz"
cp "$ROOT"/tests/fixtures/css/*.css "$OUT/seed/"
for f in "$ROOT"/build/*/css-real/node_modules/bootstrap/dist/css/bootstrap.css \
  "$ROOT"/build/*/css-real/node_modules/@fortawesome/fontawesome-free/css/all.css; do
  [ -f "$f" ] && cp "$f" "$OUT/seed/$(basename "$(dirname "$(dirname "$f")")")-$(basename "$f")"
done
say "fuzzing the CSS rewriter for ${DURATION}s"
# -max_len: long enough for nested rules and lists, short enough for many runs a second (the
# seeds are longer: libFuzzer mutates their first 4 KiB).
# -timeout: the rewriter is linear; a slow input is a bug.
"$OUT/css_fuzz" -max_total_time="$DURATION" -max_len=4096 -timeout=10 -rss_limit_mb=2048 \
  -print_final_stats=1 -artifact_prefix="$OUT/" "$OUT/corpus" "$OUT/seed" 2>"$OUT/fuzz.log" ||
  { tail -n 60 "$OUT/fuzz.log" >&2; die "the fuzzer found a failing input (see ${OUT#$ROOT/}/fuzz.log)"; }
grep -E '^stat::(number_of_executed_units|average_exec_per_sec|peak_rss_mb)|^#[0-9]+.*DONE' "$OUT/fuzz.log" >&2 || true
