#!/usr/bin/env bash
# Submits an experiment as a SLURM array of N shards and a gather job that runs when all
# of them succeed. Run from the repository root on a login node:
#   scripts/slurm/submit.sh experiments/mnist.toml 4 [extra sbatch options, e.g. -p short]
# Prints the two job ids. The harness binary (MPQ_BIN, default target/release/harness) is
# built first if it is missing; the experiment file is checked before anything is queued.
set -euo pipefail
exp=${1:?usage: submit.sh EXPERIMENT.toml N [sbatch options]}
n=${2:?usage: submit.sh EXPERIMENT.toml N [sbatch options]}
shift 2
here=$(cd "$(dirname "$0")" && pwd)
bin=${MPQ_BIN:-target/release/harness}
export MPQ_BIN=$bin
if [ ! -x "$bin" ]; then
  cargo build --release -p harness
fi
"$bin" check "$exp" > /dev/null
array=$(sbatch --parsable --array="0-$((n - 1))" "$@" "$here/array.sbatch" "$exp" "$n")
array=${array%%;*}
gather=$(sbatch --parsable --dependency="afterok:$array" --kill-on-invalid-dep=yes "$@" "$here/gather.sbatch" "$exp" "$n")
gather=${gather%%;*}
echo "submitted shards: job $array (array 0-$((n - 1))); gather: job $gather (after all shards succeed)"
echo "watch: squeue -j $array,$gather   logs: slurm-mpq-shard-${array}_<shard>.log, slurm-mpq-gather-$gather.log"
