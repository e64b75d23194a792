#!/usr/bin/env bash
# The README's test command. Runs every test project on a fresh machine with only the .NET SDK,
# then prints one line "tests: N passed, M failed, K skipped" taken from the TRX results, and exits
# non-zero on any failure. (Services the later cluster/tracing tests need are started here.)
set -euo pipefail
cd "$(dirname "$0")/.."
results="$(mktemp -d)"
trap 'rm -rf "$results"' EXIT
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
