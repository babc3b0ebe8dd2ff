#!/usr/bin/env bash
# The C tree's layering (docs/adr/0007): includes point one way,
#   app -> api -> core/relay, core/store, core/proxy -> core/base
# and core/relay and core/store never include each other's headers except relay -> store;
# core/proxy (the stylesheet proxy's fetcher, guard, cache and CSS rewriter) includes core/base only.
# Prints every include that points the wrong way; exits 1 if there is one.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bad=0
check() { # check FOLDER FORBIDDEN-PREFIX...
  local dir="$1"; shift
  for p in "$@"; do
    if grep -rn --include='*.c' --include='*.h' "#include \"$p" "$dir"; then bad=1; fi
  done
}
check core/base 'core/store/' 'core/relay/' 'core/proxy/' 'api/' 'app/'
check core/store 'core/relay/' 'api/' 'app/'
check core/relay 'api/' 'app/' 'core/proxy/'
check core/proxy 'core/store/' 'core/relay/' 'api/' 'app/'
check api 'app/'
[ $bad -eq 0 ] && echo "layers: every include points app -> api -> core/relay, core/store, core/proxy -> core/base" ||
  { echo "the includes above point the wrong way (docs/adr/0007)" >&2; exit 1; }
