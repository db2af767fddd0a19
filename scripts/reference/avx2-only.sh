#!/usr/bin/env bash
# Runs a command as it would run on an AVX2-only x86-64 CPU: AVX-512, AVX512-VNNI, AVX-VNNI
# and AMX are hidden from every CPUID the process executes (cpuid-mask.c), so ONNX Runtime,
# PyTorch and harness all pick their AVX2 kernels. Needs x86-64 Linux with CPUID faulting
# (`cpuid_fault` in /proc/cpuinfo); it refuses to run without it rather than measure the wrong
# kernels. For example, on a machine with AVX-512:
#
#   scripts/reference/avx2-only.sh target/release/harness bench --backends flex
#   scripts/reference/avx2-only.sh .venv-ref/bin/python scripts/reference/reference.py --threads 2
#
# Never used by the build or CI.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
if [ $# -eq 0 ]; then
    echo "usage: $0 COMMAND [ARG ...]" >&2
    exit 2
fi
if ! grep -qw cpuid_fault /proc/cpuinfo; then
    echo "avx2-only: this CPU or kernel has no CPUID faulting (cpuid_fault in /proc/cpuinfo)" >&2
    exit 3
fi
lib="$(mktemp -d)"
trap 'rm -rf "$lib"' EXIT
cc -O2 -shared -fPIC -o "$lib/cpuid-mask.so" "$here/cpuid-mask.c"
CPUID_MASK_REQUIRED=1 LD_PRELOAD="$lib/cpuid-mask.so${LD_PRELOAD:+:$LD_PRELOAD}" "$@"
