"""Side-by-side reference for `harness bench`: the same models and the same search in
PyTorch, and the same models in ONNX Runtime (FP32 and static int8), on the shipped digits.

Run it in a virtual environment, right after `harness bench` on the same machine, so the two
tables come from one sitting (timings on a shared VM drift by about 20% between runs):

    python3 -m venv .venv-ref
    .venv-ref/bin/pip install -r scripts/reference/requirements.txt
    .venv-ref/bin/python scripts/reference/reference.py --threads 1,2

To compare AVX2 kernels on a CPU with AVX-512, run both sides under `avx2-only.sh` (beside this
file), which hides AVX-512 and VNNI from CPUID so that ONNX Runtime and PyTorch pick their AVX2
kernels as on an AVX2-only CPU.

It prints one table and writes `results/bench/reference.csv` (same columns as
`results/bench/timing.csv`). It never runs in CI. The whole measurement runs `--passes` times
(3) and each row keeps its fastest pass, as `harness bench` does. The measured work mirrors
`harness bench`:

- training: one epoch of Adam (lr 1e-3), batch 64, on `--samples` digits;
- FP32 inference: batch 1, 64 and 256, timed as the fastest of five rounds of at least 60 ms;
- the exhaustive search at 8 bits over {nearest, floor, ceil} per layer (27 configs for the
  MLP's 3 layers, 81 for the CNN's 4) on 1000 calibration digits, each layer's
  weight (symmetric, per tensor) and input (affine from the calibrated min/max) fake-quantized
  with the config's rounding, scored by cross-entropy; without and with prefix reuse (the
  activations of a shared prefix of layer choices are computed once);
- the greedy search at 8 bits (coordinate descent from all-nearest, at most 10 passes, the
  current plan's activations kept, and each layer's outputs under the roundings tried while
  its input is unchanged), measured in plans scored per second;
- the best-of-27 random null at 8 bits (27 random plans, each scored from the input), in
  plans per second, and the Taylor search at 8 bits (one backward pass on the calibration
  digits, each layer's predicted change per rounding, the per-layer argmin), in searches per
  second;
- ONNX Runtime: the same trained weights as an ONNX graph, FP32 and quantized with
  `quantize_static` (QDQ, per tensor, u8 activations, i8 weights, min/max calibration on the
  calibration digits), batch 1, 64 and 256.
"""

import argparse
import csv
import gzip
import itertools
import os
import platform
import tempfile
import time

import numpy as np
import onnx
import onnxruntime as ort
import torch
import torch.nn.functional as F
from onnx import TensorProto, helper, numpy_helper
from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

NAMES = {"mlp": "mlp-256-128", "cnn": "cnn-8-16-64"}
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def load_digits():
    """The shipped 10,000 digits as (n, 784) float32 in [0, 1] and int64 labels."""
    d = os.path.join(ROOT, "datasets", "mnist-10k")
    with gzip.open(os.path.join(d, "images-idx3-ubyte.gz")) as f:
        raw = f.read()
    x = np.frombuffer(raw, dtype=np.uint8, offset=16).reshape(-1, 784).astype(np.float32) / 255.0
    with gzip.open(os.path.join(d, "labels-idx1-ubyte.gz")) as f:
        y = np.frombuffer(f.read(), dtype=np.uint8, offset=8).astype(np.int64)
    return x, y


class Mlp(torch.nn.Module):
    """784-256-128-10 with ReLU, as `ModelConfig::Mlp { hidden: [256, 128] }`."""

    def __init__(self):
        super().__init__()
        self.layers = torch.nn.ModuleList([torch.nn.Linear(784, 256), torch.nn.Linear(256, 128), torch.nn.Linear(128, 10)])

    def forward(self, x):
        return mlp_forward([(l.weight, l.bias) for l in self.layers], x)


class Cnn(torch.nn.Module):
    """conv3x3 1->8, ReLU, max-pool; conv3x3 8->16, ReLU, max-pool; 400->64, ReLU; 64->10
    (`ModelConfig::Cnn { channels: [8, 16], hidden: 64 }`)."""

    def __init__(self):
        super().__init__()
        self.c1 = torch.nn.Conv2d(1, 8, 3)
        self.c2 = torch.nn.Conv2d(8, 16, 3)
        self.f1 = torch.nn.Linear(400, 64)
        self.f2 = torch.nn.Linear(64, 10)

    def params(self):
        return [(m.weight, m.bias) for m in (self.c1, self.c2, self.f1, self.f2)]

    def forward(self, x):
        return cnn_forward(self.params(), x)


def stage(kind, k, n_layers, h, w, b):
    """Layer k of a model: what the host evaluator calls a stage."""
    if kind == "mlp":
        y = F.linear(h, w, b)
        return y if k == n_layers - 1 else F.relu(y)
    if k == 0:
        return F.max_pool2d(F.relu(F.conv2d(h.reshape(-1, 1, 28, 28), w, b)), 2)
    if k == 1:
        return F.max_pool2d(F.relu(F.conv2d(h, w, b)), 2).flatten(1)
    y = F.linear(h, w, b)
    return y if k == n_layers - 1 else F.relu(y)


def mlp_forward(params, x):
    for k, (w, b) in enumerate(params):
        x = stage("mlp", k, len(params), x, w, b)
    return x


def cnn_forward(params, x):
    for k, (w, b) in enumerate(params):
        x = stage("cnn", k, len(params), x, w, b)
    return x


def time_per_call(f):
    """Seconds per call of f after one untimed call: the fastest of five rounds of repeated
    calls, each lasting at least 60 ms (as `harness bench`)."""
    f()
    best = float("inf")
    for _ in range(5):
        t0, calls = time.perf_counter(), 0
        while calls < 1 or time.perf_counter() - t0 < 0.06:
            f()
            calls += 1
        best = min(best, (time.perf_counter() - t0) / calls)
    return best


def train_epoch(model, x, y, seed):
    """One epoch of Adam (lr 1e-3), batch 64; returns seconds."""
    torch.manual_seed(seed)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    order = torch.randperm(len(x))
    t0 = time.perf_counter()
    for i in range(0, len(x), 64):
        idx = order[i : i + 64]
        opt.zero_grad()
        F.cross_entropy(model(xt[idx]), yt[idx]).backward()
        opt.step()
    return time.perf_counter() - t0


def round_mode(v, mode):
    """Nearest (ties to even), floor or ceil, keeping values within 1e-5 of a grid point on it."""
    r = torch.round(v)
    if mode == "nearest":
        return r
    on = (v - r).abs() <= r.abs().clamp_min(1.0) * 1e-5
    return torch.where(on, r, torch.floor(v) if mode == "floor" else torch.ceil(v))


def fake_weight(w, bits, mode):
    qmax = (1 << (bits - 1)) - 1
    s = w.abs().max() / qmax
    return round_mode(w / s, mode).clamp(-qmax, qmax) * s


def fake_input(h, lo, hi, bits, mode):
    qmax = (1 << bits) - 1
    lo, hi = min(lo, 0.0), max(hi, 0.0)
    s = (hi - lo) / qmax if hi > lo else 1.0
    z = 0 if lo >= 0 else round(-lo / s)
    return (round_mode(h / s, mode) + z).clamp(0, qmax).sub(z).mul(s)


class Search:
    """The exhaustive search over {nearest, floor, ceil} per layer at one bit width."""

    MODES = ("nearest", "floor", "ceil")

    def __init__(self, kind, params, x, y, bits=8):
        self.kind, self.bits = kind, bits
        self.params = [(w.detach(), b.detach()) for w, b in params]
        self.x, self.y = torch.from_numpy(x), torch.from_numpy(y)
        self.n = len(self.params)
        self.ranges, h = [], self.x
        with torch.no_grad():
            for k, (w, b) in enumerate(self.params):
                self.ranges.append((float(h.min()), float(h.max())))
                h = stage(kind, k, self.n, h, w, b)
        self.weights = {(k, m): fake_weight(w, bits, m) for k, (w, _) in enumerate(self.params) for m in self.MODES}

    def step(self, k, h, mode):
        lo, hi = self.ranges[k]
        return stage(self.kind, k, self.n, fake_input(h, lo, hi, self.bits, mode), self.weights[(k, mode)], self.params[k][1])

    def naive(self):
        """Every config evaluated from the input; returns the number of configs."""
        losses = []
        with torch.no_grad():
            for cfg in itertools.product(self.MODES, repeat=self.n):
                h = self.x
                for k, m in enumerate(cfg):
                    h = self.step(k, h, m)
                losses.append(float(F.cross_entropy(h, self.y)))
        return len(losses)

    def prefix(self):
        """Depth-first over the tree of configs: a shared prefix's activations are computed once."""
        losses = []

        def go(k, h):
            for m in self.MODES:
                out = self.step(k, h, m)
                if k == self.n - 1:
                    losses.append(float(F.cross_entropy(out, self.y)))
                else:
                    go(k + 1, out)

        with torch.no_grad():
            go(0, self.x)
        return len(losses)

    def greedy(self, max_passes=10):
        """Coordinate descent from all-nearest, as mpq's `greedy`: each pass tries the other
        roundings of every layer with the rest fixed and keeps an improvement; the current
        plan's activations are kept, so a trial at layer k reruns layers k.. only, and a layer's
        output under each rounding tried is kept while its input stays the same, so a later
        trial there reruns only the layers after it. Returns the number of plans scored."""
        with torch.no_grad():
            cur, acts, seen = ["nearest"] * self.n, [self.x], {}
            for k in range(self.n):
                acts.append(self.step(k, acts[k], cur[k]))
                seen[(k, cur[k])] = acts[k + 1]
            best, plans = float(F.cross_entropy(acts[-1], self.y)), 1
            for _ in range(max_passes):
                changed = False
                for k in range(self.n):
                    for m in self.MODES:
                        if m == cur[k]:
                            continue
                        if (k, m) not in seen:
                            seen[(k, m)] = self.step(k, acts[k], m)
                        tail = [seen[(k, m)]]
                        for j in range(k + 1, self.n):
                            tail.append(self.step(j, tail[-1], cur[j]))
                        loss, plans = float(F.cross_entropy(tail[-1], self.y)), plans + 1
                        if loss < best - 1e-12:
                            best, cur[k], changed = loss, m, True
                            acts[k + 1 :] = tail
                            seen = {key: v for key, v in seen.items() if key[0] <= k}
                            for j in range(k + 1, self.n):
                                seen[(j, cur[j])] = acts[j + 1]
                if not changed:
                    break
        return plans


    def random(self, n=27, seed=1):
        """The best-of-n random null, as mpq's `random_best`: n uniformly random plans, each
        scored from the input. Returns n."""
        rng = np.random.default_rng(seed)
        with torch.no_grad():
            best = float("inf")
            for _ in range(n):
                h = self.x
                for k, m in enumerate(rng.integers(0, 3, self.n)):
                    h = self.step(k, h, self.MODES[m])
                best = min(best, float(F.cross_entropy(h, self.y)))
        return n

    def taylor(self):
        """The first-order Taylor search, as mpq's `taylor`: one backward pass of the FP32
        model on the calibration digits for dL/dW and dL/dX of every layer, each rounding's
        predicted change (gradient dotted with its weight and input quantization error), the
        per-layer argmin. Returns 1 (one search)."""
        ws = [w.clone().requires_grad_(True) for w, _ in self.params]
        h, inputs = self.x.clone().requires_grad_(True), []
        for k, w in enumerate(ws):
            if k > 0:
                h.retain_grad()
            inputs.append(h)
            h = stage(self.kind, k, self.n, h, w, self.params[k][1])
        F.cross_entropy(h, self.y).backward()
        plan = []
        with torch.no_grad():
            for k, (w, x) in enumerate(zip(ws, inputs)):
                lo, hi = self.ranges[k]
                pred = [float((w.grad * (self.weights[(k, m)] - w)).sum())
                        + float((x.grad * (fake_input(x, lo, hi, self.bits, m) - x)).sum()) for m in self.MODES]
                plan.append(self.MODES[int(np.argmin(pred))])
        return 1


def onnx_graph(kind, params):
    """The trained network as an ONNX graph (input `x`: [batch, 784] float32)."""
    inits, nodes = [], []
    arrays = [(w.detach().numpy(), b.detach().numpy()) for w, b in params]
    for k, (w, b) in enumerate(arrays):
        inits += [numpy_helper.from_array(w, f"w{k}"), numpy_helper.from_array(b, f"b{k}")]
    shape = numpy_helper.from_array(np.array([-1, 1, 28, 28], dtype=np.int64), "shape")
    inits.append(shape)
    h = "x"
    for k in range(len(arrays)):
        out = f"h{k}"
        conv = kind == "cnn" and k < 2
        if conv:
            if k == 0:
                nodes.append(helper.make_node("Reshape", [h, "shape"], ["img"]))
                h = "img"
            nodes.append(helper.make_node("Conv", [h, f"w{k}", f"b{k}"], [f"c{k}"]))
            nodes.append(helper.make_node("Relu", [f"c{k}"], [f"r{k}"]))
            nodes.append(helper.make_node("MaxPool", [f"r{k}"], [f"p{k}"], kernel_shape=[2, 2], strides=[2, 2]))
            if k == 1:
                nodes.append(helper.make_node("Flatten", [f"p{k}"], [out], axis=1))
            else:
                nodes.append(helper.make_node("Identity", [f"p{k}"], [out]))
        else:
            last = k == len(arrays) - 1
            nodes.append(helper.make_node("Gemm", [h, f"w{k}", f"b{k}"], [out if last else f"g{k}"], transB=1))
            if not last:
                nodes.append(helper.make_node("Relu", [f"g{k}"], [out]))
        h = out
    graph = helper.make_graph(
        nodes,
        kind,
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 784])],
        [helper.make_tensor_value_info(h, TensorProto.FLOAT, ["batch", 10])],
        inits,
    )
    # IR version 8 is the one that goes with opset 17: a newer onnx package would otherwise
    # stamp its own latest IR version, which an older ONNX Runtime refuses to load.
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    onnx.checker.check_model(model)
    return model


class Reader(CalibrationDataReader):
    def __init__(self, x):
        self.batches = iter([{"x": x[i : i + 100]} for i in range(0, len(x), 100)])

    def get_next(self):
        return next(self.batches, None)


def ort_session(path, threads):
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])


def onnx_rows(kind, params, calib, test, threads, tmp):
    """ONNX Runtime FP32 and static int8 rows for one model."""
    fp = os.path.join(tmp, f"{kind}.onnx")
    q8 = os.path.join(tmp, f"{kind}-int8.onnx")
    onnx.save(onnx_graph(kind, params), fp)
    quantize_static(
        fp, q8, Reader(calib), quant_format=QuantFormat.QDQ, activation_type=QuantType.QUInt8,
        weight_type=QuantType.QInt8, per_channel=False,
    )
    rows = []
    for t in threads:
        for name, path in (("infer-fp32", fp), ("infer-int8", q8)):
            s = ort_session(path, t)
            for batch in (1, 64, 256):
                xb = test[:batch]
                secs = time_per_call(lambda: s.run(None, {"x": xb}))
                rows.append((name, kind, f"onnxruntime-t{t}", batch, batch, secs, "samples/s"))
    return rows


def torch_rows(kind, x, y, calib_x, calib_y, test, threads, seed):
    rows = []
    for t in threads:
        torch.set_num_threads(t)
        torch.manual_seed(seed)
        model = Mlp() if kind == "mlp" else Cnn()
        secs = train_epoch(model, x, y, seed)
        rows.append(("train", kind, f"pytorch-t{t}", 64, len(x), secs, "samples/s"))
        model.eval()
        with torch.no_grad():
            for batch in (1, 64, 256):
                xb = torch.from_numpy(test[:batch])
                secs = time_per_call(lambda: model(xb))
                rows.append(("infer-fp32", kind, f"pytorch-t{t}", batch, batch, secs, "samples/s"))
        params = [(l.weight, l.bias) for l in model.layers] if kind == "mlp" else model.params()
        search = Search(kind, params, calib_x, calib_y)
        for name, f in (("exhaustive-naive", search.naive), ("exhaustive-prefix", search.prefix)):
            n = f()
            rows.append((name, kind, f"pytorch-t{t}", 1000, n, time_per_call(f), "configs/s"))
        n = search.greedy()
        rows.append(("greedy", kind, f"pytorch-t{t}", 1000, n, time_per_call(search.greedy), "plans/s"))
        n = search.random()
        rows.append(("random-null", kind, f"pytorch-t{t}", 1000, n, time_per_call(search.random), "plans/s"))
        n = search.taylor()
        rows.append(("taylor", kind, f"pytorch-t{t}", 1000, n, time_per_call(search.taylor), "searches/s"))
    return rows, params


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", default="1,2", help="thread counts to measure, comma-separated (default 1,2)")
    ap.add_argument("--samples", type=int, default=4000, help="training examples (default 4000, as harness bench)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--out", default=os.path.join(ROOT, "results", "bench", "reference.csv"))
    ap.add_argument("--passes", type=int, default=3,
                    help="times the whole measurement runs, each row keeping its fastest pass (default 3, "
                         "as harness bench --passes)")
    args = ap.parse_args()
    threads = [int(t) for t in args.threads.split(",")]
    x, y = load_digits()
    order = np.random.default_rng(args.seed).permutation(len(x))
    tr, ca, te = order[: args.samples], order[args.samples : args.samples + 1000], order[-1000:]
    torch.set_num_interop_threads(1)
    print(f"torch {torch.__version__} (CPU capability {torch.backends.cpu.get_cpu_capability()}), "
          f"onnxruntime {ort.__version__}, {platform.processor() or platform.machine()}, {os.cpu_count()} cores")
    fastest, passes = {}, max(args.passes, 1)
    for p in range(passes):
        print(f"pass {p + 1} of {passes}", flush=True)
        with tempfile.TemporaryDirectory() as tmp:
            for kind in ("mlp", "cnn"):
                r, params = torch_rows(kind, x[tr], y[tr], x[ca], y[ca], x[te], threads, args.seed)
                r += onnx_rows(kind, params, x[ca], x[te], threads, tmp)
                for row in r:
                    key = row[:4]
                    if key not in fastest or row[5] < fastest[key][5]:
                        fastest[key] = row
    rows = list(fastest.values())
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["what", "model", "backend", "batch", "samples", "seconds", "per_second", "unit"])
        for what, model, backend, batch, n, secs, unit in rows:
            w.writerow([what, NAMES[model], backend, batch, n, secs, n / secs, unit])
    print(f"{'what':<18} {'model':<12} {'backend':<16} {'batch':>5} {'throughput':>12} unit")
    for what, model, backend, batch, n, secs, unit in rows:
        print(f"{what:<18} {NAMES[model]:<12} {backend:<16} {batch:>5} {n / secs:>12.1f} {unit}")
    print(f"wrote {os.path.relpath(args.out, ROOT)}")


if __name__ == "__main__":
    main()
