# Shared helpers of the scripts: dependency installation, builds, a private PostgreSQL.
# Sourced, never run. Every function is idempotent.

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
STATE="$ROOT/.cobrowse" # git-ignored: clusters, secrets, logs

APT_PACKAGES="build-essential cmake pkg-config libulfius-dev libjansson-dev libpq-dev libjwt-dev
  libwebsockets-dev libwebsockets-evlib-ev libev-dev libhiredis-dev libargon2-dev libcmocka-dev libssl-dev libmicrohttpd-dev postgresql curl clang-format python3"

# Bold only on a terminal: a redirected log gets plain text.
say() {
  if [ -t 2 ]; then printf '\033[1m==>\033[0m %s\n' "$*" >&2; else printf '==> %s\n' "$*" >&2; fi
}
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"
  elif command -v sudo >/dev/null; then sudo "$@"
  else die "need root to run: $* (install sudo or run as root)"; fi
}

# Installs the Debian packages that are missing (plus any given as arguments).
ensure_apt() {
  local missing=() p
  for p in $APT_PACKAGES "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  say "installing Debian packages: ${missing[*]}"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
}

# Installs Node.js and npm from Debian when missing.
ensure_node() {
  command -v node >/dev/null && command -v npm >/dev/null || ensure_apt nodejs npm
}

# Installs the JS tooling of the tests (spec lint, validators, SDK generator, playwright-core)
# from the lockfile.
ensure_npm() {
  ensure_node
  if [ ! -d "$ROOT/tests/node_modules" ] || [ "$ROOT/tests/package-lock.json" -nt "$ROOT/tests/node_modules/.package-lock.json" ]; then
    say "installing test tooling from npm (tests/package-lock.json)"
    (cd "$ROOT/tests" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
  fi
}

# build_web OUTDIR: the browser code (web/: SDK, viewer, demo console) bundled into OUTDIR, the
# tree cobrowsed serves (it looks in <its own dir>/web unless COBROWSE_WEB_ROOT says otherwise).
build_web() {
  local out="$1"
  ensure_node
  if [ ! -d "$ROOT/web/node_modules" ] || [ "$ROOT/web/package-lock.json" -nt "$ROOT/web/node_modules/.package-lock.json" ]; then
    say "installing the web build's packages from npm (web/package-lock.json)"
    (cd "$ROOT/web" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
  fi
  say "building the browser code into ${out#$ROOT/}"
  local log; log="$(mktemp)"
  node "$ROOT/web/build.mjs" "$out" >"$log" 2>&1 || { cat "$log" >&2; rm -f "$log"; die "web build failed"; }
  rm -f "$log"
}

# build DIR [cmake args...]: configures once, then builds incrementally.
build() {
  local dir="$1"; shift
  if [ ! -f "$dir/CMakeCache.txt" ]; then
    say "configuring $dir"
    cmake -S "$ROOT" -B "$dir" "$@" >/dev/null
  fi
  say "building $dir"
  cmake --build "$dir" -j"$(nproc)" -- --no-print-directory >/dev/null
}

PG_BIN="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)"

# pg_run CMD...: runs a PostgreSQL tool as the cluster's owner (initdb refuses root).
pg_run() {
  if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

# pg_start DIR: starts (creating if needed) a private cluster in DIR listening only on a Unix
# socket in DIR, creates database cobrowse, and prints its DATABASE_URL on stdout.
pg_start() {
  local dir="$1" port=5432
  [ -n "$PG_BIN" ] || die "PostgreSQL server binaries not found (package postgresql)"
  mkdir -p "$dir"
  if [ "$(id -u)" -eq 0 ]; then
    chown postgres:postgres "$dir"
    chmod 700 "$dir"
    runuser -u postgres -- test -x "$dir" ||
      die "user postgres cannot reach $dir: move the checkout under a folder others can traverse"
  fi
  if [ ! -f "$dir/data/PG_VERSION" ]; then
    say "creating a private PostgreSQL cluster in ${dir#$ROOT/}"
    pg_run "$PG_BIN/initdb" -D "$dir/data" -U app --auth=trust -E UTF8 --locale=C.UTF-8 \
      --no-sync >"$dir/initdb.log" 2>&1 || { cat "$dir/initdb.log" >&2; die "initdb failed"; }
  fi
  if ! pg_run "$PG_BIN/pg_ctl" -D "$dir/data" status >/dev/null 2>&1; then
    pg_run "$PG_BIN/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 30 \
      -o "-c listen_addresses='' -k $dir -p $port -c max_connections=200 -c synchronous_commit=off" \
      start >/dev/null || { tail -n 20 "$dir/server.log" >&2; die "PostgreSQL did not start"; }
  fi
  pg_run psql -h "$dir" -p "$port" -U app -d postgres -qAt \
    -c "SELECT 1 FROM pg_database WHERE datname = 'cobrowse'" | grep -q 1 ||
    pg_run psql -h "$dir" -p "$port" -U app -d postgres -q -c "CREATE DATABASE cobrowse" >/dev/null
  echo "postgresql://app@/cobrowse?host=$dir&port=$port"
}

pg_stop() {
  local dir="$1"
  [ -f "$dir/data/postmaster.pid" ] || return 0
  pg_run "$PG_BIN/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null 2>&1 || true
}

# redis_start DIR: starts (if not running) a private redis-server listening only on the Unix
# socket DIR/redis.sock (no TCP port, no persistence) and prints its URL on stdout.
redis_start() {
  local dir="$1" i
  command -v redis-server >/dev/null || die "redis-server not found (package redis-server)"
  mkdir -p "$dir"
  dir="$(cd "$dir" && pwd)"
  if ! redis-cli -s "$dir/redis.sock" ping >/dev/null 2>&1; then
    rm -f "$dir/redis.sock"
    redis-server --port 0 --unixsocket "$dir/redis.sock" --unixsocketperm 700 --dir "$dir" \
      --save "" --appendonly no --daemonize yes --pidfile "$dir/redis.pid" \
      --logfile "$dir/redis.log" >/dev/null || die "redis-server did not start"
    for i in $(seq 100); do
      redis-cli -s "$dir/redis.sock" ping >/dev/null 2>&1 && break
      [ "$i" -lt 100 ] || { tail -n 20 "$dir/redis.log" >&2; die "redis-server did not answer"; }
      sleep 0.05
    done
  fi
  echo "unix://$dir/redis.sock"
}

# redis_stop DIR: stops the redis-server of redis_start DIR (nothing if none runs).
redis_stop() {
  local dir="$1" pid
  [ -f "$dir/redis.pid" ] || return 0
  pid="$(cat "$dir/redis.pid")"
  redis-cli -s "$dir/redis.sock" shutdown nosave >/dev/null 2>&1 || kill "$pid" 2>/dev/null || true
  while kill -0 "$pid" 2>/dev/null; do sleep 0.05; done
  rm -f "$dir/redis.pid" "$dir/redis.sock"
}

# free_port: prints a TCP port nobody listens on.
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])' 2>/dev/null ||
    echo $((20000 + RANDOM % 20000))
}

# wait_http URL SECONDS: waits until URL answers 200.
wait_http() {
  local url="$1" deadline=$((SECONDS + $2))
  until curl -fsS -o /dev/null "$url" 2>/dev/null; do
    [ $SECONDS -lt $deadline ] || return 1
    sleep 0.1
  done
}
