#!/usr/bin/env bash
# The integer engine on aarch64, under emulation: cross-compiles mpq-lowbit's tests (the
# kernels' sums against naive sums, and bit-identical logits across kernels) with Debian's
# Rust and its arm64 standard library, then runs them with qemu-user twice: on an emulated
# CPU with the dot-product extension (the NEON `sdot` kernel must be used and agree) and on
# a Cortex-A53, which lacks it (the engine must fall back to the portable kernel).
# Debian 12, as root (installs packages with apt when missing); about two minutes.
#
# With --models it also runs mpq-host's and mpq-models' tests on aarch64 (the host
# evaluation's kernels bit for bit, the host forward against burn's flex backend, and the
# training golden hash): this
# builds burn for aarch64, about 20 minutes on 2 cores, so CI leaves it out.
set -euo pipefail
models=false
case "${1:-}" in
  "") ;;
  --models) models=true ;;
  *) echo "usage: $0 [--models]" >&2; exit 2 ;;
esac
cd "$(dirname "$0")/.."

want_rust=$(sed -n 's/^rust-version = "\(.*\)"/\1/p' Cargo.toml)
have() { command -v "$1" > /dev/null; }
if ! have qemu-aarch64 || ! have aarch64-linux-gnu-gcc || [ ! -d /usr/lib/rustlib/aarch64-unknown-linux-gnu ]; then
  echo "installing Debian's Rust with its arm64 standard library, a cross linker and qemu-user"
  dpkg --add-architecture arm64
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
    rustc-web libstd-rust-web-dev:arm64 gcc-aarch64-linux-gnu qemu-user > /dev/null
fi
rustc_version=$(/usr/bin/rustc --version | cut -d' ' -f2)
if [ "$(printf '%s\n%s\n' "$want_rust" "$rustc_version" | sort -V | head -1)" != "$want_rust" ]; then
  echo "error: Debian's rustc is $rustc_version; the workspace needs $want_rust or later" >&2
  exit 1
fi
echo "cross-compiling with /usr/bin/rustc $rustc_version; running on $(qemu-aarch64 --version | head -1)"

export RUSTC=/usr/bin/rustc
export CARGO_TARGET_DIR=target/aarch64
export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc
# `-L /`: the dynamic loader and libc must come from one package (libc6:arm64); the cross
# toolchain's older loader with the newer libc hangs at the first thread.
export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_RUNNER="qemu-aarch64 -L /"
test_lowbit() { cargo test --release -p mpq-lowbit --target aarch64-unknown-linux-gnu --lib --tests; }

echo "== emulated CPU with the dot-product extension: neon-sdot must run and agree"
QEMU_CPU=max MPQ_EXPECT_KERNELS=neon-sdot,portable test_lowbit
echo "== emulated Cortex-A53 (no dot product): the portable kernel alone"
QEMU_CPU=cortex-a53 MPQ_EXPECT_KERNELS=portable MPQ_EXPECT_MISSING=neon-sdot test_lowbit
if $models; then
  echo "== mpq-net, mpq-host, mpq-models (host evaluation, burn flex, training golden hash) on the emulated CPU"
  QEMU_CPU=max cargo test --release -p mpq-net -p mpq-host -p mpq-models --target aarch64-unknown-linux-gnu --lib --tests
fi
