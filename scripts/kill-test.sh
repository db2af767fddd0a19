#!/usr/bin/env bash
# Interrupts the smoke sweep at 20 seeded points (SIGKILL and SIGINT alternating), then runs
# it to completion and checks the tables equal an uninterrupted run's, apart from timing.
# The same check runs in the test suite (crates/harness/tests/kill.rs); this is the
# stand-alone version for longer experiments: scripts/kill-test.sh [experiment.toml] [points]
set -euo pipefail
cd "$(dirname "$0")/.."
exp=${1:-experiments/smoke.toml}
points=${2:-20}
cargo build --release -q -p harness
bin=target/release/harness
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
with_output() { printf 'output = "%s"\n' "$1"; cat "$exp"; }
with_output "$work/ref" > "$work/ref.toml"
with_output "$work/killed" > "$work/killed.toml"
"$bin" "$work/ref.toml" > /dev/null 2>&1
RANDOM=42
for i in $(seq 1 "$points"); do
  "$bin" "$work/killed.toml" > /dev/null 2>&1 &
  pid=$!
  sleep "0.$(( RANDOM % 9 + 1 ))"
  if (( i % 2 )); then kill -KILL "$pid" 2>/dev/null || true; else kill -INT "$pid" 2>/dev/null || true; fi
  wait "$pid" 2>/dev/null || true
done
"$bin" "$work/killed.toml" > /dev/null 2>&1
name=$(sed -n 's/^name = "\(.*\)"/\1/p' "$exp")
strip() { python3 -c 'import csv,sys
r=list(csv.reader(open(sys.argv[1])))
keep=[i for i,c in enumerate(r[0]) if c!="seconds"]
[print(",".join(row[i] for i in keep)) for row in r]' "$1"; }
status=0
for t in runs configs train sensitivity summary claims; do
  if ! diff <(strip "$work/ref/$name/$t.csv") <(strip "$work/killed/$name/$t.csv") > /dev/null; then
    echo "MISMATCH: $t.csv"; status=1
  fi
done
[ $status -eq 0 ] && echo "ok: $points interruptions, tables identical to the uninterrupted run"
exit $status
