#!/usr/bin/env bash
# Regenerates everything under paper/ from an empty cache:
#  1. the main experiment, every run redone, its models taken from the shipped checkpoints
#     (pass --retrain to train them here instead: the host engine trains the same weights on
#     every CPU, so the results are the same);
#  2. the replication table: the design, halved and frozen, on the even half of the shipped
#     digits and on the disjoint odd half (experiments/halves.toml, models trained here, 9 to
#     25 minutes on 2 cores);
#  3. the report, which includes the replication table;
#  4. the mixed-precision study (experiments/claims-mixed.toml, models trained here, about
#     10 minutes) into paper/claims-mixed/;
#  5. the identity-mapping study (experiments/claims-identity.toml: residual and plain MLPs
#     and CNNs, models trained here, 15 to 35 minutes on 2 cores) into
#     paper/claims-identity/;
#  6. per-layer floor/ceil against AdaRound (experiments/claims-adaround.toml, models trained
#     here, about 15 minutes) into paper/claims-adaround/;
#  7. the study on an imported ONNX model (experiments/onnx-example.toml, nothing trained,
#     about 10 seconds) into paper/onnx-example/;
#  8. the depth study (experiments/claims-depth.toml: ResNets of depth 8, 14 and 20 and their
#     plain twins, models from checkpoints/claims-depth) into paper/claims-depth/.
# The backend comparison (paper/backends/) needs a wgpu build (which includes ndarray):
#   cargo run --release -p harness --features wgpu -- run experiments/backends-wgpu.toml --force
#   cargo run --release -p harness --features wgpu -- paper experiments/backends-wgpu.toml --out paper/backends
set -euo pipefail
cd "$(dirname "$0")/.."
rm -rf results/cache results/mnist results/halves results/halves-pool results/claims-mixed results/claims-identity results/claims-adaround results/onnx-example results/claims-depth
cargo run --release -p harness -- run experiments/mnist.toml --force "$@"
cargo run --release -p harness -- halves --out datasets/halves
cargo run --release -p harness -- replicate experiments/halves.toml --out paper/replication \
  --pool datasets/halves/odd-images-idx3-ubyte datasets/halves/odd-labels-idx1-ubyte
cargo run --release -p harness -- paper experiments/mnist.toml
cargo run --release -p harness -- run experiments/claims-mixed.toml --force
cargo run --release -p harness -- paper experiments/claims-mixed.toml --out paper/claims-mixed
cargo run --release -p harness -- run experiments/claims-identity.toml --force
cargo run --release -p harness -- paper experiments/claims-identity.toml --out paper/claims-identity
cargo run --release -p harness -- run experiments/claims-adaround.toml --force
cargo run --release -p harness -- paper experiments/claims-adaround.toml --out paper/claims-adaround
cargo run --release -p harness -- run experiments/onnx-example.toml --force
cargo run --release -p harness -- paper experiments/onnx-example.toml --out paper/onnx-example
cargo run --release -p harness -- run experiments/claims-depth.toml --force
cargo run --release -p harness -- paper experiments/claims-depth.toml --out paper/claims-depth
