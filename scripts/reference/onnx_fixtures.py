"""ONNX fixtures for the importer's tests (crates/onnx/tests/fixtures/): small PyTorch models
trained on the shipped digits and exported the usual way with `torch.onnx.export`, with the
logits ONNX Runtime gives on the first 256 shipped digits; and malformed models the importer
must refuse with a message.

    python3 -m venv .venv-ref
    .venv-ref/bin/pip install -r scripts/reference/requirements.txt
    .venv-ref/bin/python scripts/reference/onnx_fixtures.py [NAME ...]   # all, or only these

Inputs are pixels / 255 (what `mpq_data` gives), shape [batch, 1, 28, 28]. The models train
on the even-position half of the shipped digits (the shipped digits are grouped by class, so a
contiguous range would leave classes out); the odd half is what `experiments/onnx-example.toml`
studies them on (`[data] half = "odd"`), digits they never saw. Models:

- mlp: Flatten, Linear(784, 64), ReLU, Linear(64, 10);
- cnn: Conv(1, 8, 3), ReLU, MaxPool(2), Conv(8, 16, 3), ReLU, MaxPool(2), Flatten,
  Linear(400, 32), ReLU, Linear(32, 10);
- lenet-avg: Conv(1, 6, 3), ReLU, AvgPool(2), Conv(6, 12, 3), ReLU, AvgPool(2), Flatten,
  Linear(300, 32), ReLU, Linear(32, 10) (LeNet-5's average-pool subsampling);
- rescnn-bn: Conv(1, 8, 3), BatchNorm, ReLU, MaxPool(2), two blocks x + ReLU(BN(Conv3x3 same(x))),
  global average pooling, Flatten, Linear(8, 10) (batch norm kept in the graph: the importer
  folds it);
- resnet-pieces: Conv(1, 8, 3, stride 2, padding 1), BatchNorm, ReLU; Conv(8, 16, 1) (1x1),
  ReLU; Conv(16, 16, 3, stride 2), BatchNorm, ReLU; a block x + ReLU(BN(Conv3x3 same(x)));
  Conv(16, 24, 1, stride 2), ReLU; global average pooling, Flatten, Linear(24, 10) (the
  kernels and strides a ResNet downsamples with);
- refused: unsupported-op (a Sigmoid), conv-dilated (a 3x3 convolution with dilation 2), input-32x32 (an MLP on 32x32 inputs), truncated (the
  first half of cnn.onnx), random-bytes (4 KiB from a seeded generator).

It never runs in CI; its outputs are committed.
"""

import gzip
import os

import numpy as np
import onnxruntime as ort
import torch

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.path.join(ROOT, "crates", "onnx", "tests", "fixtures")


def load_digits():
    d = os.path.join(ROOT, "datasets", "mnist-10k")
    with gzip.open(os.path.join(d, "images-idx3-ubyte.gz")) as f:
        x = np.frombuffer(f.read(), dtype=np.uint8, offset=16).reshape(-1, 1, 28, 28).astype(np.float32) / 255.0
    with gzip.open(os.path.join(d, "labels-idx1-ubyte.gz")) as f:
        y = np.frombuffer(f.read(), dtype=np.uint8, offset=8).astype(np.int64)
    return x, y


def mlp():
    return torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(784, 64), torch.nn.ReLU(), torch.nn.Linear(64, 10))


def cnn():
    return torch.nn.Sequential(
        torch.nn.Conv2d(1, 8, 3), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
        torch.nn.Conv2d(8, 16, 3), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
        torch.nn.Flatten(), torch.nn.Linear(400, 32), torch.nn.ReLU(), torch.nn.Linear(32, 10),
    )


class Block(torch.nn.Module):
    """x + relu(bn(conv3x3_same(x))): the description's residual convolution."""

    def __init__(self, c):
        super().__init__()
        self.conv, self.bn = torch.nn.Conv2d(c, c, 3, padding=1), torch.nn.BatchNorm2d(c)

    def forward(self, x):
        return x + torch.relu(self.bn(self.conv(x)))


def lenet_avg():
    """LeNet-5's subsampling: average pooling after each convolution."""
    return torch.nn.Sequential(
        torch.nn.Conv2d(1, 6, 3), torch.nn.ReLU(), torch.nn.AvgPool2d(2),
        torch.nn.Conv2d(6, 12, 3), torch.nn.ReLU(), torch.nn.AvgPool2d(2),
        torch.nn.Flatten(), torch.nn.Linear(300, 32), torch.nn.ReLU(), torch.nn.Linear(32, 10),
    )


def rescnn_bn():
    return torch.nn.Sequential(
        torch.nn.Conv2d(1, 8, 3), torch.nn.BatchNorm2d(8), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
        Block(8), Block(8), torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(8, 10),
    )


def resnet_pieces():
    """Strided 3x3 convolutions (same and valid padding) and 1x1 convolutions (stride 1 and 2)."""
    return torch.nn.Sequential(
        torch.nn.Conv2d(1, 8, 3, stride=2, padding=1), torch.nn.BatchNorm2d(8), torch.nn.ReLU(),
        torch.nn.Conv2d(8, 16, 1), torch.nn.ReLU(),
        torch.nn.Conv2d(16, 16, 3, stride=2), torch.nn.BatchNorm2d(16), torch.nn.ReLU(),
        Block(16),
        torch.nn.Conv2d(16, 24, 1, stride=2), torch.nn.ReLU(),
        torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(24, 10),
    )


def train(model, x, y, epochs=8, seed=0):
    torch.manual_seed(seed)
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    model.train()
    for _ in range(epochs):
        perm = torch.randperm(len(xt))
        for i in range(0, len(xt), 64):
            idx = perm[i : i + 64]
            opt.zero_grad()
            torch.nn.functional.cross_entropy(model(xt[idx]), yt[idx]).backward()
            opt.step()
    return model.eval()


def export(model, name, shape=(1, 1, 28, 28)):
    path = os.path.join(OUT, f"{name}.onnx")
    torch.onnx.export(
        model, (torch.zeros(shape),), path, input_names=["digits"], output_names=["logits"],
        dynamic_axes={"digits": {0: "batch"}, "logits": {0: "batch"}}, opset_version=17,
        dynamo=False, do_constant_folding=False,
    )
    return path


MODELS = [
    ("mlp", mlp), ("cnn", cnn), ("rescnn-bn", rescnn_bn), ("lenet-avg", lenet_avg), ("resnet-pieces", resnet_pieces),
]


def main():
    import sys

    # Names on the command line: only those fixtures (the others keep their committed bytes).
    only = sys.argv[1:] or [n for n, _ in MODELS] + ["refused"]
    os.makedirs(OUT, exist_ok=True)
    x, y = load_digits()
    first = x[:256]
    for name, make in [(n, m) for n, m in MODELS if n in only]:
        torch.manual_seed(1)
        model = train(make(), x[0::2], y[0::2])
        path = export(model, name)
        logits = ort.InferenceSession(path, providers=["CPUExecutionProvider"]).run(None, {"digits": first})[0]
        with torch.no_grad():
            assert np.abs(logits - model(torch.from_numpy(first)).numpy()).max() < 1e-4
        np.savetxt(os.path.join(OUT, f"{name}.logits.csv"), logits, fmt="%.9g", delimiter=",")
        ops = sorted({n.op_type for n in __import__("onnx").load(path).graph.node})
        acc = (logits.argmax(1) == y[:256]).mean()
        print(f"{name}: {os.path.getsize(path)} bytes, ops {ops}, accuracy on the first 256 digits {acc:.3f}")
    if "conv-dilated" in only or "refused" in only:
        torch.manual_seed(3)
        dilated = torch.nn.Sequential(
            torch.nn.Conv2d(1, 4, 3, dilation=2), torch.nn.ReLU(), torch.nn.Flatten(), torch.nn.Linear(4 * 24 * 24, 10)
        )
        export(dilated.eval(), "conv-dilated")
    if "refused" not in only:
        return
    torch.manual_seed(2)
    export(torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(784, 10), torch.nn.Sigmoid()).eval(), "unsupported-op")
    export(torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(1024, 10)).eval(), "input-32x32", (1, 1, 32, 32))
    with open(os.path.join(OUT, "cnn.onnx"), "rb") as f:
        data = f.read()
    with open(os.path.join(OUT, "truncated.onnx"), "wb") as f:
        f.write(data[: len(data) // 2])
    with open(os.path.join(OUT, "random-bytes.onnx"), "wb") as f:
        f.write(np.random.default_rng(7).integers(0, 256, 4096, dtype=np.uint8).tobytes())


if __name__ == "__main__":
    main()
