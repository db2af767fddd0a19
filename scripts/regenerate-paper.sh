#!/usr/bin/env bash
# Regenerates paper/REPORT.md and paper/figures/ from the main experiment.
# Completed runs in results/mnist/ are reused; pass --force to rerun them all.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo run --release -p harness -- run experiments/mnist.toml "$@"
cargo run --release -p harness -- paper experiments/mnist.toml
