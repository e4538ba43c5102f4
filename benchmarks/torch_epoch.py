"""One epoch of hpsearch's Torch models on Fashion-MNIST-shaped data, against peers.

    python benchmarks/torch_epoch.py [--n 54000] [--repeats 2]

Data: N x 1 x 28 x 28 float32 (synthetic: speed does not depend on the pixel values), 10
classes, plain SGD, all cores. Rows:

- torch.mlp (784-200-200-10) against hpsearch's NumPy MLP with the same layers, in the same run.
- torch.cnn (16-32-64 and 32-64-128 channels, BatchNorm, one 128-unit hidden layer) against a
  bare PyTorch loop over the very same network (randperm, index, forward, backward, step), in
  PyTorch's default memory layout (what the textbook loop does) and in the channels-last layout
  torch.cnn uses: the first ratio is what a user gains or loses, the second what hpsearch's
  training wrapper costs.
- torch.cnn 16-32-64 with augmentation (crop_padding 2, flip) against the same model without:
  what the vectorised augmentation costs (target 1.15x).
- torch.cnn 16-32-64 on the device-resident path (what runs on a GPU: the data copied to the
  device once, the batch order drawn there) forced on the CPU, against the per-batch copy that
  runs on the CPU (target 1.0x; on a GPU the resident path saves a host-to-device copy of every
  batch, which this machine cannot measure).

Each figure is the minimum over --repeats runs, measurements interleaved.

With --cifar: instead, an estimate of one epoch of studies/cifar10_cnn.toml's network on this
machine (64-128-256 channels, two convolutions per block, crops and flips, batch 128): an
epoch over --n-cifar synthetic 3 x 32 x 32 images, scaled to CIFAR-10's 45,000 training images.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hpsearch.models import MODELS  # noqa: E402


def epoch_of(
    kind: str, params: dict, X: np.ndarray, y: np.ndarray, resident: bool = False
) -> tuple[Callable, object]:
    model = MODELS[kind].build({**params, "epochs": 100, "learning_rate": 1e-3}, seed=0)
    model.partial_fit(X[:256], y[:256], classes=np.arange(10))  # build the network
    if resident:
        model._resident = True  # the path a GPU takes, on the CPU
    return (lambda: model.partial_fit(X, y)), model


def bare_loop(
    net: torch.nn.Module, X: np.ndarray, y: np.ndarray, batch: int, channels_last: bool = False
) -> Callable:
    """The same network trained by the textbook PyTorch loop, in the default memory layout or
    channels-last (network and batches)."""
    layout = torch.channels_last if channels_last else torch.contiguous_format
    net = __import__("copy").deepcopy(net).train().to(memory_format=layout)
    optimizer = torch.optim.SGD(net.parameters(), lr=1e-3)
    Xt, yt = torch.from_numpy(X), torch.from_numpy(y)

    def run() -> None:
        order = torch.randperm(len(Xt))
        for start in range(0, len(Xt), batch):
            idx = order[start : start + batch]
            optimizer.zero_grad(set_to_none=True)
            xb = Xt[idx].contiguous(memory_format=layout)
            torch.nn.functional.cross_entropy(net(xb), yt[idx]).backward()
            optimizer.step()

    return run


def cifar_estimate(n: int) -> None:
    import tomllib

    study = tomllib.loads(
        (Path(__file__).resolve().parents[1] / "studies/cifar10_cnn.toml").read_text()
    )
    fixed = {**study["model"]["fixed"], "learning_rate": 0.05}
    rng = np.random.default_rng(0)
    images = rng.standard_normal((n, 3, 32, 32), dtype=np.float32)
    y = rng.integers(0, 10, n)
    run, _ = epoch_of("torch.cnn", fixed, images, y)
    run()  # warm up
    start = time.perf_counter()
    run()
    seconds = (time.perf_counter() - start) * 45_000 / n
    print(
        f"studies/cifar10_cnn.toml's network, torch {torch.__version__} on "
        f"{torch.get_num_threads()} threads: {seconds:.0f} s per epoch of 45,000 images "
        f"(measured on {n}, scaled), {seconds * fixed['epochs'] / 3600:.1f} h per "
        f"{fixed['epochs']}-epoch trial"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=54_000)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--cifar", action="store_true", help="instead: the CIFAR-10 estimate")
    parser.add_argument(
        "--options-only", action="store_true", help="only the augmentation and device rows"
    )
    parser.add_argument("--n-cifar", type=int, default=1024)
    args = parser.parse_args()
    if args.cifar:
        cifar_estimate(args.n_cifar)
        return
    rng = np.random.default_rng(0)
    images = rng.standard_normal((args.n, 1, 28, 28), dtype=np.float32)
    flat = images.reshape(args.n, -1)
    y = rng.integers(0, 10, args.n)
    print(
        f"# {args.n} x 1 x 28 x 28 float32, 10 classes, SGD, torch {torch.__version__} with "
        f"{torch.get_num_threads()} threads\n"
    )
    print("| model | batch | s/epoch | peer | peer s/epoch | ratio (ours / peer) |")
    print("|---|---|---|---|---|---|")
    rows = []
    for batch in () if args.options_only else (64, 256):
        mlp = {"hidden": [200, 200], "batch_size": batch}
        ours, _ = epoch_of("torch.mlp", {**mlp, "dropout": 0.0}, flat, y)
        peer, _ = epoch_of("numpy.mlp", mlp, flat, y)
        rows.append(("torch.mlp 784-200-200-10", batch, ours, "numpy.mlp, same layers", peer))
    for channels in () if args.options_only else ("16-32-64", "32-64-128"):
        params = {"channels": channels, "hidden": [128], "batch_size": 128}
        ours, model = epoch_of("torch.cnn", params, images, y)
        peer = bare_loop(model.net_, images, y, 128)
        rows.append((f"torch.cnn {channels}", 128, ours, "bare PyTorch loop", peer))
        peer = bare_loop(model.net_, images, y, 128, channels_last=True)
        rows.append((f"torch.cnn {channels}", 128, ours, "bare loop, channels-last", peer))
    params = {"channels": "16-32-64", "hidden": [128], "batch_size": 128}
    plain, _ = epoch_of("torch.cnn", params, images, y)
    augmented, _ = epoch_of("torch.cnn", {**params, "crop_padding": 2, "flip": True}, images, y)
    rows.append(("torch.cnn 16-32-64, crop 2 + flip", 128, augmented, "no augmentation", plain))
    resident, _ = epoch_of("torch.cnn", params, images, y, resident=True)
    plain, _ = epoch_of("torch.cnn", params, images, y)
    rows.append(("torch.cnn 16-32-64, device-resident", 128, resident, "per-batch copy", plain))
    times = {i: [float("inf"), float("inf")] for i in range(len(rows))}
    for _ in range(args.repeats):
        for i, (_, _, ours, _, peer) in enumerate(rows):
            for j, fn in enumerate((ours, peer)):
                start = time.perf_counter()
                fn()
                times[i][j] = min(times[i][j], time.perf_counter() - start)
    for i, (name, batch, _, peer_name, _) in enumerate(rows):
        ours_s, peer_s = times[i]
        print(
            f"| {name} | {batch} | {ours_s:.2f} | {peer_name} | {peer_s:.2f} | "
            f"{ours_s / peer_s:.2f} |"
        )


if __name__ == "__main__":
    main()
