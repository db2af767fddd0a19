#!/usr/bin/env bash
# Tests the cluster scripts on a real single-node SLURM: installs Debian's slurmctld, slurmd,
# slurm-client and munge if missing, starts the daemons with their state, spool, pid and log
# files in a temporary folder, submits experiments/smoke.toml as a 4-task array followed by
# the gather job (scripts/slurm/submit.sh), waits, and checks that the gathered CSVs equal a
# one-process run's (timing columns aside). Stops the daemons it started, by their pids.
# Needs root (as in CI). Usage: scripts/slurm/selftest.sh [path to harness binary]
set -euo pipefail
cd "$(dirname "$0")/../.."
bin=$(realpath "${1:-target/release/harness}")
[ -x "$bin" ] || { echo "no harness binary at $bin: cargo build --release -p harness" >&2; exit 2; }
if ! command -v slurmctld > /dev/null || ! command -v munged > /dev/null || ! command -v sbatch > /dev/null; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq slurmctld slurmd slurm-client munge > /dev/null
fi

tmp=$(mktemp -d)
pids=()
cleanup() {
  local rc=$?
  local daemons=("${pids[@]}")
  for f in "$tmp"/slurmctld.pid "$tmp"/slurmd.pid; do
    [ -s "$f" ] && daemons+=("$(cat "$f")")
  done
  for p in "${daemons[@]}"; do kill "$p" 2> /dev/null || true; done
  # Wait for them to exit: slurmctld writes its state on the way out.
  for _ in $(seq 1 100); do
    local alive=0
    for p in "${daemons[@]}"; do kill -0 "$p" 2> /dev/null && alive=1; done
    [ $alive -eq 0 ] && break
    sleep 0.1
  done
  if [ $rc -ne 0 ]; then
    echo "--- slurmctld.log" >&2; tail -20 "$tmp/slurmctld.log" >&2 2> /dev/null || true
    echo "--- slurmd.log" >&2; tail -20 "$tmp/slurmd.log" >&2 2> /dev/null || true
  fi
  rm -rf "$tmp" || true
  exit $rc
}
trap cleanup EXIT

# munge: its own user, its socket folder owned by it, a key if the package made none.
mkdir -p /run/munge /var/lib/munge /var/log/munge /etc/munge
chown munge:munge /run/munge /var/lib/munge /var/log/munge
[ -s /etc/munge/munge.key ] || { dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 status=none; }
chown munge:munge /etc/munge/munge.key && chmod 400 /etc/munge/munge.key
if ! pgrep -x munged > /dev/null; then
  runuser -u munge -- /usr/sbin/munged
  for _ in $(seq 1 20); do [ -s /run/munge/munged.pid ] && break; sleep 0.1; done
  pids+=("$(cat /run/munge/munged.pid)")
fi

host=$(hostname -s)
mem=$(awk '/MemTotal/ { print int($2 / 1024 / 2) }' /proc/meminfo)
port=$((20000 + RANDOM % 20000))
mkdir -p "$tmp/state" "$tmp/spool"
cat > "$tmp/slurm.conf" << CONF
ClusterName=mpqtest
SlurmctldHost=$host
SlurmctldPort=$port
SlurmdPort=$((port + 1))
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
MailProg=/bin/true
StateSaveLocation=$tmp/state
SlurmdSpoolDir=$tmp/spool
SlurmctldPidFile=$tmp/slurmctld.pid
SlurmdPidFile=$tmp/slurmd.pid
SlurmctldLogFile=$tmp/slurmctld.log
SlurmdLogFile=$tmp/slurmd.log
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
NodeName=$host CPUs=$(nproc) RealMemory=$mem State=UNKNOWN
PartitionName=test Nodes=ALL Default=YES MaxTime=INFINITE State=UP
CONF
export SLURM_CONF=$tmp/slurm.conf
slurmctld -f "$SLURM_CONF"
slurmd -f "$SLURM_CONF"
for _ in $(seq 1 60); do
  sinfo -h -o %T 2> /dev/null | grep -qE '^(idle|mixed)' && break
  sleep 0.5
done
sinfo

# The experiment, writing into the temporary folder (shared storage on a real cluster).
work=$tmp/work
mkdir -p "$work"
{ echo "output = \"$work/sharded\""; cat experiments/smoke.toml; } > "$work/smoke.toml"
{ echo "output = \"$work/single\""; cat experiments/smoke.toml; } > "$work/single.toml"
sed -i 's/^name = "smoke"/name = "smoke"/' "$work/single.toml"

start=$(date +%s)
out=$(MPQ_BIN=$bin scripts/slurm/submit.sh "$work/smoke.toml" 4 --cpus-per-task=1 --mem=500M --chdir="$work")
echo "$out"
gather=$(echo "$out" | sed -n 's/.*gather: job \([0-9]*\).*/\1/p')
array=$(echo "$out" | sed -n 's/.*shards: job \([0-9]*\).*/\1/p')
# Wait for the gather job (it starts after every shard succeeded).
for _ in $(seq 1 600); do
  state=$(scontrol show job "$gather" 2> /dev/null | sed -n 's/.*JobState=\([A-Z_]*\).*/\1/p')
  case "$state" in COMPLETED | FAILED | CANCELLED | TIMEOUT | NODE_FAIL | OUT_OF_MEMORY) break ;; esac
  sleep 0.5
done
echo "gather job $gather: $state after $(( $(date +%s) - start ))s"
scontrol show job "$array" | grep -E 'JobId|JobState|ExitCode' | sed 's/^ */  /' || true
for f in "$work"/slurm-*.log; do echo "--- $(basename "$f")"; cat "$f"; done
[ "$state" = COMPLETED ] || { echo "the gather job did not complete" >&2; exit 1; }
for s in 0 1 2 3; do
  grep -q "shard $s/4:" "$work"/slurm-mpq-shard-"${array}_$s".log || { echo "shard $s/4 did not report" >&2; exit 1; }
done

# The same experiment in one process, then the tables compared.
"$bin" run "$work/single.toml" > /dev/null 2>&1
python3 - "$work/sharded/smoke" "$work/single/smoke" << 'PY'
import csv, sys
a, b = sys.argv[1], sys.argv[2]
for t in ["runs", "configs", "train", "sensitivity", "summary", "claims", "failures"]:
    rows = [[{k: v for k, v in r.items() if k != "seconds"} for r in csv.DictReader(open(f"{d}/{t}.csv"))] for d in (a, b)]
    if rows[0] != rows[1] or (t == "runs" and not rows[0]):
        sys.exit(f"{t}.csv differs between the 4-shard SLURM sweep and a one-process run")
    print(f"  {t}.csv: {len(rows[0])} rows, equal")
PY
echo "SLURM sweep of 4 shards + gather equals the one-process run"
