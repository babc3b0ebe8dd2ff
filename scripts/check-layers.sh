#!/usr/bin/env bash
# The C tree's layering (docs/adr/0007): includes point one way,
#   app -> api -> core/relay, core/store, core/proxy, core/webhook -> core/net -> core/base
# core/relay and core/proxy may include core/cluster (Redis), which includes core/base only;
# and core/relay and core/store never include each other's headers except relay -> store;
# core/net (the SSRF guard and the libcurl fetcher) includes core/base only; core/proxy (the
# stylesheet proxy: service, cache, CSS rewriter) core/net and core/base; core/webhook (the
# webhook dispatcher) core/store, core/net and core/base.
# Prints every include that points the wrong way; exits 1 if there is one.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bad=0
check() { # check FOLDER FORBIDDEN-PREFIX...
  local dir="$1"; shift
  [ -d "$dir" ] || return 0
  for p in "$@"; do
    if grep -rn --include='*.c' --include='*.h' "#include \"$p" "$dir"; then bad=1; fi
  done
}
check core/base 'core/cluster/' 'core/store/' 'core/relay/' 'core/proxy/' 'core/net/' 'core/webhook/' 'api/' 'app/'
check core/net 'core/cluster/' 'core/store/' 'core/relay/' 'core/proxy/' 'core/webhook/' 'api/' 'app/'
check core/store 'core/cluster/' 'core/relay/' 'core/proxy/' 'core/net/' 'core/webhook/' 'api/' 'app/'
check core/relay 'api/' 'app/' 'core/proxy/' 'core/net/' 'core/webhook/'
check core/cluster 'core/store/' 'core/relay/' 'core/proxy/' 'core/net/' 'core/webhook/' 'api/' 'app/'
check core/proxy 'core/store/' 'core/relay/' 'core/webhook/' 'api/' 'app/'
check core/webhook 'core/cluster/' 'core/relay/' 'core/proxy/' 'api/' 'app/'
check api 'app/'
[ $bad -eq 0 ] && echo "layers: every include points app -> api -> core/{relay,store,proxy,webhook} -> core/{cluster,net} -> core/base" ||
  { echo "the includes above point the wrong way (docs/adr/0007)" >&2; exit 1; }
