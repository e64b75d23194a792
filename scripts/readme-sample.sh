#!/usr/bin/env bash
# Writes the README's "Sample run" block: the output of the README's first command on the deterministic sim engine
# (the orleans engine decides lock contention in host arrival order, so its figures vary from run to run; the sim
# engine's are the same on every host for a seed). What depends on the host is left out or masked, so the block only
# changes when the model does:
#   - progress lines (printed every 2 s of host time),
#   - the host-time rows of the throughput table (host time (s), faults / host s),
#   - the results folder's path and timestamp (…/results/YYYYMMDD-HHMMSS-…).
# ReadmeSampleTests (tests/DistEmu.Client.Tests) runs the same command and fails when the README's block differs,
# applying the same masks; run this script to bring the README up to date after a change to the model or the output.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

# Run from an empty folder, so the default results folder (results/TIMESTAMP-small-page-fault1) lands there.
(cd "$work" && dotnet run --project "$root/src/Client" -c Release -- \
  run --preset small --workload page-fault1 --engine sim) >"$work/out.txt"

sed -E \
  -e '/^progress: /d' \
  -e '/^(host time \(s\)|faults \/ host s) /d' \
  -e 's#^results: .*/results/[0-9]{8}-[0-9]{6}-#results: …/results/YYYYMMDD-HHMMSS-#' \
  "$work/out.txt" >"$work/block.txt"

# Replace the fenced block under the "## Sample run" heading.
awk -v block="$work/block.txt" '
  /^## Sample run/ { section = 1 }
  section == 1 && /^```/ {
    print
    while ((getline line < block) > 0) print line
    section = 2
    next
  }
  section == 2 { if (/^```/) { print; section = 3 }; next }
  { print }
  END { if (section != 3) { print "readme-sample.sh: no fenced block under ## Sample run" > "/dev/stderr"; exit 1 } }
' "$root/README.md" >"$work/README.md"
cp "$work/README.md" "$root/README.md"
git -C "$root" diff --stat -- README.md
