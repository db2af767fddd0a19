"""ONNX Runtime's own quantizer beside the harness, on the ONNX fixtures (an MLP, a CNN, a
LeNet-5-style CNN with average pools, a small residual CNN with batch norm, a CNN of strided and
1x1 convolutions, trained in PyTorch on the even half of the shipped digits by onnx_fixtures.py): for each fixture and each repeat of `experiments/onnx-example.toml`'s
design (the odd half, 10 cross-fitted folds of 500 test digits, 500 calibration digits),

- the harness: FP32, all-nearest and the exhaustive floor/ceil/nearest search at 8 bits, as
  its runs scored them (runs.csv), the size of the exported low-bit file and the integer
  engine's throughput (`harness export`);
- ONNX Runtime `quantize_static` after its recommended `quant_pre_process` (shape inference and
  graph optimisation, which folds batch norm into the convolution as the harness does): QDQ, u8
  activations, i8 weights, min/max calibration on the same calibration digits (the indices `harness export --indices` writes), per tensor and per
  channel, scored on the same test digits; file size and throughput at batch 256.

It never runs in CI (it needs the reference virtual environment):

    cargo build --release -p harness
    python3 -m venv .venv-ref && .venv-ref/bin/pip install -r scripts/reference/requirements.txt
    RAYON_NUM_THREADS=2 .venv-ref/bin/python scripts/reference/onnx_vs_ort.py --threads 2 [FIXTURE ...]

It prints a markdown table (means over repeats; ΔL is test loss minus the harness's FP32 test loss,
paired by repeat, with a 95% Student-t interval; the ONNX Runtime FP32 row checks that both
score the same network).
"""

import argparse
import logging
import json
import os
import re
import subprocess
import tempfile

import numpy as np
import onnxruntime as ort
from onnxruntime.quantization import CalibrationDataReader, CalibrationMethod, QuantFormat, QuantType, quantize_static
from onnxruntime.quantization.shape_inference import quant_pre_process

from onnx_fixtures import load_digits
from reference import ort_session, time_per_call

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FIXTURES = ["mlp", "cnn", "lenet-avg", "rescnn-bn", "resnet-pieces"]


def load_odd_half():
    x, y = load_digits()
    return x[1::2], y[1::2]


def nll(logits, y):
    z = logits.astype(np.float64)
    m = z.max(1, keepdims=True)
    lse = m[:, 0] + np.log(np.exp(z - m).sum(1))
    return float((lse - z[np.arange(len(y)), y]).mean()), float((z.argmax(1) == y).mean())


class Reader(CalibrationDataReader):
    def __init__(self, x):
        self.batches = iter([{"digits": x[i : i + 100]} for i in range(0, len(x), 100)])

    def get_next(self):
        return next(self.batches, None)


def throughput(sess, x):
    """Digits per second at batch 256, timed as `harness bench` and `harness export` time."""
    batch = x[:256]
    return len(batch) / time_per_call(lambda: sess.run(None, {"digits": batch}))


def experiment(name, work, granularity):
    text = open(os.path.join(ROOT, "experiments", "onnx-example.toml")).read()
    text = text.replace('name = "onnx-example"', f'name = "ort-compare-{name}-{granularity}"')
    text = text.replace("[quant]\n", f'[quant]\ngranularity = "per-{granularity}"\n')
    text = text.replace("crates/onnx/tests/fixtures/cnn.onnx", f"crates/onnx/tests/fixtures/{name}.onnx")
    text = f'output = "{work}"\n' + text
    path = os.path.join(work, f"{name}-{granularity}.toml")
    with open(path, "w") as f:
        f.write(text)
    return path


def harness_rows(harness, toml, work, repeats):
    subprocess.run([harness, toml], cwd=ROOT, check=True, capture_output=True)
    import csv

    stem = os.path.basename(toml)[: -len(".toml")]
    rows = list(csv.DictReader(open(os.path.join(work, f"ort-compare-{stem}", "runs.csv"))))
    pick = lambda method, bits: [
        next(r for r in rows if r["run_id"].endswith(f"-r{k}") and r["method"] == method and r["bits"] == bits)
        for k in range(repeats)
    ]
    return {m: pick(m, b) for m, b in [("fp", "32"), ("nearest", "8"), ("exhaustive", "8")]}


def export(harness, toml, run, method, work):
    out, idx = os.path.join(work, "plan.mpq"), os.path.join(work, "indices.json")
    cmd = [harness, "export", toml, "--run", run, "--method", method, "--bits", "8", "--out", out, "--indices", idx]
    text = subprocess.run(cmd, cwd=ROOT, check=True, capture_output=True, text=True).stdout
    speed = float(re.search(r"engine throughput: (\d+)", text).group(1))
    return os.path.getsize(out), speed, json.load(open(idx))


# Student-t 97.5% quantiles by degrees of freedom (1..30; beyond, the normal's).
T975 = [12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160, 2.145, 2.131,
        2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042]


def ci(values):
    v = np.asarray(values)
    t = T975[len(v) - 2] if len(v) - 1 <= len(T975) else 1.96
    h = t * v.std(ddof=1) / np.sqrt(len(v))
    return f"{v.mean():+.4f} [{v.mean() - h:+.4f}, {v.mean() + h:+.4f}]"


def compare(name, args, x, y, work):
    fp32 = os.path.join(ROOT, "crates", "onnx", "tests", "fixtures", f"{name}.onnx")
    table = {}
    for granularity in ["tensor", "channel"]:
        toml = experiment(name, work, granularity)
        rows = harness_rows(args.harness, toml, work, args.repeats)
        fp_loss = [float(r["test_loss"]) for r in rows["fp"]]
        for method in ["nearest", "exhaustive"]:
            size, speed, _ = export(args.harness, toml, f"onnx-{name}-flex-r0", method, work)
            losses = [float(r["test_loss"]) for r in rows[method]]
            accs = [float(r["test_acc"]) for r in rows[method]]
            label = f"mpq {'all-nearest' if method == 'nearest' else 'searched'} 8-bit plan, per {granularity}"
            table[label] = (np.mean(losses), ci(np.subtract(losses, fp_loss)), np.mean(accs), size, speed)
    # The calibration and test digits do not depend on the granularity.
    splits = [export(args.harness, toml, f"onnx-{name}-flex-r{k}", "nearest", work)[2] for k in range(args.repeats)]
    fp_sess = ort_session(fp32, args.threads)
    scored = [nll(fp_sess.run(None, {"digits": x[i["test"]]})[0], y[i["test"]]) for i in splits]
    table["ONNX Runtime FP32"] = (np.mean([l for l, _ in scored]), ci(np.subtract([l for l, _ in scored], fp_loss)),
                                  np.mean([a for _, a in scored]), os.path.getsize(fp32), throughput(fp_sess, x))
    pre = os.path.join(work, f"{name}-pre.onnx")
    quant_pre_process(fp32, pre)
    for per_channel in [False, True]:
        losses, accs = [], []
        for idx in splits:
            q = os.path.join(work, f"{name}-q.onnx")
            quantize_static(pre, q, Reader(x[idx["calib"]]), quant_format=QuantFormat.QDQ, per_channel=per_channel,
                            activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                            calibrate_method=CalibrationMethod.MinMax)
            sess = ort_session(q, args.threads)
            loss, acc = nll(sess.run(None, {"digits": x[idx["test"]]})[0], y[idx["test"]])
            losses.append(loss)
            accs.append(acc)
        label = "ONNX Runtime quantize_static, per " + ("channel" if per_channel else "tensor")
        table[label] = (np.mean(losses), ci(np.subtract(losses, fp_loss)), np.mean(accs), os.path.getsize(q), throughput(sess, x))
    return table


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--harness", default=os.path.join(ROOT, "target", "release", "harness"))
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--repeats", type=int, default=10)
    p.add_argument("fixtures", nargs="*", help=f"fixtures to compare (all if none): {', '.join(FIXTURES)}")
    args = p.parse_args()
    unknown = [f for f in args.fixtures if f not in FIXTURES]
    if unknown:
        p.error(f"unknown fixtures {unknown}; known: {', '.join(FIXTURES)}")
    logging.getLogger().setLevel(logging.ERROR)
    x, y = load_odd_half()
    print(f"onnxruntime {ort.__version__}, {args.threads} threads; {args.repeats} repeats of 500 test digits\n")
    print("| fixture | method | test loss | ΔL vs FP32 [95% CI] | test acc | file bytes | digits/s (batch 256) |")
    print("|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as work:
        for name in args.fixtures or FIXTURES:
            for method, (loss, dl, acc, size, speed) in compare(name, args, x, y, work).items():
                print(f"| {name} | {method} | {loss:.4f} | {dl} | {acc:.4f} | {size:,} | {speed:,.0f} |")


if __name__ == "__main__":
    main()
