#!/usr/bin/env bash
# The README's test command. Runs every test project on a fresh machine with only the .NET SDK,
# then prints one line "tests: N passed, M failed, K skipped" taken from the TRX results, and exits
# non-zero on any failure. (Services the later cluster/tracing tests need are started here.)
set -euo pipefail
cd "$(dirname "$0")/.."
results="$(mktemp -d)"
redis_dir="$(mktemp -d)"
cleanup() {
  if [ -s "$redis_dir/redis.pid" ]; then kill "$(cat "$redis_dir/redis.pid")" 2>/dev/null || true; fi
  rm -rf "$results" "$redis_dir"
}
trap cleanup EXIT

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
