#!/usr/bin/env bash
# The README's test command. Runs every test project on a fresh machine with only the .NET SDK,
# then prints one line "tests: N passed, M failed, K skipped" taken from the TRX results, and exits
# non-zero on any failure. (Services the cluster tests need, redis and PostgreSQL, are started here.)
set -euo pipefail
cd "$(dirname "$0")/.."
results="$(mktemp -d)"
redis_dir="$(mktemp -d)"
pg_dir="$(mktemp -d)"
pg_as=() # the user PostgreSQL runs as: itself refuses root
pg_bin=""
cleanup() {
  if [ -s "$redis_dir/redis.pid" ]; then kill "$(cat "$redis_dir/redis.pid")" 2>/dev/null || true; fi
  if [ -n "$pg_bin" ] && [ -f "$pg_dir/data/postmaster.pid" ]; then
    "${pg_as[@]}" "$pg_bin/pg_ctl" -D "$pg_dir/data" -m immediate -w stop >/dev/null 2>&1 || true
  fi
  rm -rf "$results" "$redis_dir" "$pg_dir"
}
trap cleanup EXIT

# A free loopback TCP port (nothing answers on it).
free_port() {
  local port
  for _ in $(seq 1 50); do
    port=$((20000 + RANDOM % 40000))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then echo "$port"; return 0; fi
  done
  return 1
}

# The cluster tests (tests/DistEmu.Cluster.Tests) need a redis server: installed if missing, started on a free
# loopback port for this run only, named to the tests by DISTEMU_TEST_REDIS. Without it those tests fail, saying so.
if ! command -v redis-server >/dev/null 2>&1; then
  if command -v apt-get >/dev/null 2>&1; then
    echo "installing redis-server for the cluster tests" >&2
    (export DEBIAN_FRONTEND=noninteractive; apt-get update -qq && apt-get install -y -qq redis-server) >"$redis_dir/apt.log" 2>&1 \
      || { echo "could not install redis-server (see below); the cluster tests will fail" >&2; tail -5 "$redis_dir/apt.log" >&2; }
  else
    echo "redis-server is missing and apt-get is unavailable: the cluster tests will fail (install redis-server)" >&2
  fi
fi
if command -v redis-server >/dev/null 2>&1; then
  for _ in $(seq 1 20); do
    port=$((20000 + RANDOM % 40000))
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then continue; fi # in use
    redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no --daemonize yes \
      --pidfile "$redis_dir/redis.pid" --logfile "$redis_dir/redis.log" --dir "$redis_dir" >/dev/null 2>&1 || continue
    for _ in $(seq 1 50); do
      if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then export DISTEMU_TEST_REDIS="127.0.0.1:$port"; break; fi
      sleep 0.1
    done
    [ -n "${DISTEMU_TEST_REDIS:-}" ] && break
  done
  if [ -z "${DISTEMU_TEST_REDIS:-}" ]; then
    echo "could not start redis-server on a loopback port; the cluster tests will fail" >&2
    [ -f "$redis_dir/redis.log" ] && tail -5 "$redis_dir/redis.log" >&2
  fi
fi

# The PostgreSQL membership tests (adonet clustering) need a PostgreSQL server: installed from Debian's packages if
# missing, a throwaway cluster (initdb into a temp dir, trust auth on 127.0.0.1 only, a free port) started for this run
# and stopped on exit, named to the tests by DISTEMU_TEST_POSTGRES. Without it those tests fail, saying so.
find_pg_bin() {
  if command -v initdb >/dev/null 2>&1 && command -v pg_ctl >/dev/null 2>&1; then dirname "$(command -v initdb)"; return 0; fi
  local d
  d=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
  [ -n "$d" ] && [ -x "$d/initdb" ] && echo "$d"
}
if [ -z "$(find_pg_bin)" ]; then
  if command -v apt-get >/dev/null 2>&1; then
    echo "installing postgresql for the cluster tests" >&2
    (export DEBIAN_FRONTEND=noninteractive; apt-get update -qq && apt-get install -y -qq postgresql) >"$pg_dir/apt.log" 2>&1 \
      || { echo "could not install postgresql (see below); the PostgreSQL cluster tests will fail" >&2; tail -5 "$pg_dir/apt.log" >&2; }
  else
    echo "postgresql is missing and apt-get is unavailable: the PostgreSQL cluster tests will fail (install postgresql)" >&2
  fi
fi
pg_bin="$(find_pg_bin || true)"
if [ -n "$pg_bin" ]; then
  if [ "$(id -u)" -eq 0 ]; then
    id postgres >/dev/null 2>&1 || useradd --system --no-create-home postgres >/dev/null 2>&1 || true
    chown postgres "$pg_dir"
    pg_as=(runuser -u postgres --)
  fi
  pg_port="$(free_port || true)"
  if [ -n "$pg_port" ] \
    && "${pg_as[@]}" "$pg_bin/initdb" -D "$pg_dir/data" -U distemu --auth=trust -E UTF8 >"$pg_dir/initdb.log" 2>&1 \
    && "${pg_as[@]}" "$pg_bin/pg_ctl" -D "$pg_dir/data" -l "$pg_dir/postgres.log" -w -t 30 \
      -o "-c listen_addresses=127.0.0.1 -p $pg_port -k $pg_dir -c fsync=off" start >/dev/null 2>&1; then
    export DISTEMU_TEST_POSTGRES="postgres://distemu@127.0.0.1:$pg_port/postgres"
  else
    echo "could not start a PostgreSQL cluster on a loopback port; the PostgreSQL cluster tests will fail" >&2
    tail -5 "$pg_dir/initdb.log" "$pg_dir/postgres.log" 2>/dev/null >&2 || true
  fi
fi

status=0
dotnet test DistEmu.sln -c Release --logger "trx" --results-directory "$results" "$@" || status=$?
passed=0; failed=0; skipped=0; files=0
for trx in "$results"/*.trx; do
  [ -e "$trx" ] || continue
  files=$((files + 1))
  counters=$(grep -o '<Counters [^>]*>' "$trx" | head -1)
  get() { echo "$counters" | grep -o " $1=\"[0-9]*\"" | grep -o '[0-9]*' || echo 0; }
  passed=$((passed + $(get passed)))
  failed=$((failed + $(get failed) + $(get error) + $(get timeout) + $(get aborted)))
  total=$(get total); executed=$(get executed)
  skipped=$((skipped + total - executed))
done
if [ "$files" -eq 0 ]; then
  echo "no test results were written" >&2
  failed=$((failed + 1))
fi
echo "tests: ${passed} passed, ${failed} failed, ${skipped} skipped"
if [ "$status" -ne 0 ] || [ "$failed" -ne 0 ]; then exit 1; fi
