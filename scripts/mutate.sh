#!/usr/bin/env bash
# Mutation check: do the unit tests catch the bugs they are meant to catch?
#
#   scripts/mutate.sh [--list FILE] [NAME-SUBSTRING...]
#
# For each mutation of the list (scripts/mutations.txt: file, original text, replacement, name,
# TAB-separated), applies it to a scratch copy of the C tree in build/mutate/src (never to the
# working tree), builds it under ASan + UBSan as CI does (build/mutate/build, configured once:
# only the mutated file is recompiled and the tests relinked), runs ctest, and prints "caught"
# (some test failed) or "SURVIVED" (every test passed: a hole in the tests). A mutation whose
# original text is missing or ambiguous, or whose mutated tree does not build, is INVALID.
# With NAME-SUBSTRINGs, runs only the mutations whose name contains one of them.
# Exits 0 when every mutation run was caught, 1 otherwise, 2 when the unmutated tree fails.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

LIST="$ROOT/scripts/mutations.txt"
if [ "${1:-}" = "--list" ]; then LIST="$2"; shift 2; fi
FILTERS=("$@")
[ -f "$LIST" ] || die "no mutation list at $LIST"

WORK="$ROOT/build/mutate"
SRC="$WORK/src" BLD="$WORK/build"
mkdir -p "$SRC"
exec 9>"$WORK/lock"
flock -n 9 || die "another scripts/mutate.sh is running on ${WORK#$ROOT/}"

# The scratch tree: what the C build and the unit tests read, as it is in the working tree now
# (uncommitted edits included). Files are copied only when their content differs, so that their
# timestamps, and the objects built from them, stay valid between runs.
C_TREE=(CMakeLists.txt README.md cmake core api app migrations tests/unit tests/vectors tests/fixtures bench/proxy)
sync_tree() {
  local f
  (cd "$ROOT" && git ls-files -co --exclude-standard -- "${C_TREE[@]}") >"$WORK/files"
  while IFS= read -r f; do
    [ -f "$ROOT/$f" ] || continue
    if ! cmp -s "$ROOT/$f" "$SRC/$f"; then
      mkdir -p "$(dirname "$SRC/$f")"
      cp "$ROOT/$f" "$SRC/$f"
    fi
  done <"$WORK/files"
  # Files deleted from the tree since the last run.
  (cd "$SRC" && find . -type f | sed 's|^\./||' | sort) | comm -23 - <(sort "$WORK/files") |
    while IFS= read -r f; do rm -f "$SRC/$f"; done
}

build_tree() {
  if [ ! -f "$BLD/CMakeCache.txt" ]; then
    cmake -S "$SRC" -B "$BLD" -DCMAKE_BUILD_TYPE=Debug -DCOBROWSE_SANITIZE=ON >"$WORK/configure.log" 2>&1 ||
      return 1
  fi
  cmake --build "$BLD" -j"$(nproc)" -- --no-print-directory >"$WORK/build.log" 2>&1
}

run_tests() {
  ASAN_OPTIONS="detect_leaks=1:halt_on_error=1" UBSAN_OPTIONS="halt_on_error=1" \
    ctest --test-dir "$BLD" --timeout 120 --stop-on-failure >"$WORK/ctest.log" 2>&1
}

# apply FILE ORIGINAL REPLACEMENT: rewrites FILE in the scratch tree; fails unless ORIGINAL occurs
# exactly once.
apply() {
  python3 - "$SRC/$1" "$2" "$3" <<'PY'
import sys
path, old, new = sys.argv[1:4]
text = open(path, encoding="utf-8").read()
n = text.count(old)
if n != 1:
    sys.exit(f"the original text occurs {n} times")
open(path, "w", encoding="utf-8").write(text.replace(old, new))
PY
}

started=$SECONDS
say "copying the C tree into ${SRC#$ROOT/} and building it (ASan + UBSan)"
sync_tree
build_tree || { tail -n 30 "$WORK/build.log" >&2; exit 2; }
run_tests || { cat "$WORK/ctest.log" >&2; echo "the unmutated tree fails its unit tests" >&2; exit 2; }

caught=0 survived=0 invalid=0 lineno=0
while IFS= read -r line || [ -n "$line" ]; do
  lineno=$((lineno + 1))
  case "$line" in '' | '#'*) continue ;; esac
  IFS=$'\t' read -r file original replacement name extra <<<"$line"
  if [ -z "${name:-}" ] || [ -n "${extra:-}" ]; then
    echo "INVALID   line $lineno of ${LIST#$ROOT/}: expected 4 TAB-separated fields"
    invalid=$((invalid + 1))
    continue
  fi
  if [ ${#FILTERS[@]} -gt 0 ]; then
    match=0
    for f in "${FILTERS[@]}"; do [[ "$name" == *"$f"* ]] && match=1; done
    [ $match -eq 1 ] || continue
  fi
  t0=$SECONDS
  if [ ! -f "$SRC/$file" ]; then
    outcome="INVALID " why=" (no file $file)"
  elif ! why="$(apply "$file" "$original" "$replacement" 2>&1)"; then
    outcome="INVALID " why=" ($file: ${why##*$'\n'})"
  elif ! build_tree; then
    outcome="INVALID " why=" (does not build: $(grep -m1 'error:' "$WORK/build.log" || echo see build.log))"
  elif run_tests; then
    outcome="SURVIVED" why=""
  else
    outcome="caught  " why=" (by $(grep -oE '^[[:space:]]*[0-9]+ - [a-z0-9_]+' "$WORK/ctest.log" | awk '{print $3}' | paste -sd, -))"
  fi
  # Back to the original content (a fresh timestamp, so the next build recompiles it).
  [ -f "$ROOT/$file" ] && cp "$ROOT/$file" "$SRC/$file"
  case "$outcome" in
    caught*) caught=$((caught + 1)) ;;
    SURVIVED) survived=$((survived + 1)) ;;
    *) invalid=$((invalid + 1)) ;;
  esac
  printf '%s  %-58s %3ss%s\n' "$outcome" "$name" $((SECONDS - t0)) "$why"
done <"$LIST"
build_tree >/dev/null 2>&1 || true # leave the scratch build matching the tree

echo
echo "mutations: $caught caught, $survived survived, $invalid invalid ($((SECONDS - started)) s)"
[ $survived -eq 0 ] && [ $invalid -eq 0 ]
