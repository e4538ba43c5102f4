"""One training epoch of the NumPy classifiers on CIFAR-10-shaped data, against peers.

    python benchmarks/numpy_epoch.py [--n 50000] [--repeats 3] [--batch-sizes 64,256,1024]

Data: N x 3072 float32, 10 classes (synthetic: speed does not depend on the pixel values).
For each batch size it prints seconds per epoch of the linear SVM, softmax regression and an MLP
3072-200-200-10 (plain SGD), and beside each a peer measured in the same run:

- GEMM-only: exactly the MLP's matrix products for the epoch (forward, weight gradients, input
  gradients of the inner layers) on preallocated arrays, with no training around them; and the
  machine's float32 GEMM throughput (a 2048^3 product), to put the achieved GFLOP/s in context.
- PyTorch: the same MLP and optimizer in torch with the same thread count, batches gathered by
  index from one tensor (torch is optional; the column is left out without it).
- read x2: the fastest of two ways to read the whole data set, done twice; a linear model's
  epoch has to read every sample about that often (scores, then the weight gradient). And the
  linear models' own GEMM-only time: with 10 classes a linear epoch does 40 FLOPs per input
  float, so on a 2-core machine its products, not the reads, set its floor.
- scikit-learn: SGDClassifier (hinge, log_loss) and MLPClassifier, one epoch each through
  partial_fit, with the same batch size for the MLP (--skip-sklearn leaves them out).

Each figure is the minimum over --repeats runs, measurements interleaved, so a noisy neighbour
on a shared machine inflates all columns alike; the ratios are what to read.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hpsearch.models import MODELS  # noqa: E402

D, H, C = 3072, 200, 10


def best_of(fn: Callable[[], object], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def gemm_peak() -> float:
    a = np.random.default_rng(0).standard_normal((2048, 2048), dtype=np.float32)
    a @ a
    seconds = best_of(lambda: a @ a, 5)
    return 2 * 2048**3 / seconds / 1e9


def mlp_flops(n: int) -> float:
    # forward + weight gradients of all layers + input gradients of the two inner layers
    return 2 * n * (2 * D * H + 3 * H * H + 3 * H * C)


def linear_flops(n: int) -> float:
    return 2 * n * D * C * 2  # scores + weight gradient


def gemm_only_epoch(X: np.ndarray, batch: int) -> Callable[[], None]:
    rng = np.random.default_rng(1)
    W1, W2, W3 = (rng.standard_normal(s, dtype=np.float32) for s in ((D, H), (H, H), (H, C)))
    a1, a2, s3 = (np.empty((batch, k), np.float32) for k in (H, H, C))
    d1, d2, d3 = (rng.standard_normal((batch, k), dtype=np.float32) for k in (H, H, C))
    g1, g2, g3 = (
        np.empty((D, H), np.float32),
        np.empty((H, H), np.float32),
        np.empty((H, C), np.float32),
    )
    h1, h2 = np.empty((batch, H), np.float32), np.empty((batch, H), np.float32)

    def run() -> None:
        for start in range(0, len(X) - batch + 1, batch):
            xb = X[start : start + batch]
            np.matmul(xb, W1, out=a1)
            np.matmul(a1, W2, out=a2)
            np.matmul(a2, W3, out=s3)
            np.matmul(a2.T, d3, out=g3)
            np.matmul(d3, W3.T, out=h2)
            np.matmul(a1.T, d2, out=g2)
            np.matmul(d2, W2.T, out=h1)
            np.matmul(xb.T, d1, out=g1)

    return run


def linear_gemm_only_epoch(X: np.ndarray, batch: int) -> Callable[[], None]:
    """A linear model's products: scores X_b W and the weight gradient X_b^T dscores."""
    rng = np.random.default_rng(2)
    W = rng.standard_normal((D, C), dtype=np.float32)
    scores, dW = np.empty((batch, C), np.float32), np.empty((D, C), np.float32)
    dscores = rng.standard_normal((batch, C), dtype=np.float32)

    def run() -> None:
        for start in range(0, len(X) - batch + 1, batch):
            xb = X[start : start + batch]
            np.matmul(xb, W, out=scores)
            np.matmul(xb.T, dscores, out=dW)

    return run


def read_twice(X: np.ndarray) -> float:
    ones = np.ones(len(X), dtype=np.float32)
    one_pass = min(best_of(lambda: X.sum(axis=0), 3), best_of(lambda: ones @ X, 3))
    return 2 * one_pass


def torch_epoch(X: np.ndarray, y: np.ndarray, batch: int, threads: int):
    try:
        import torch
    except ImportError:
        return None
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    net = torch.nn.Sequential(
        torch.nn.Linear(D, H),
        torch.nn.ReLU(),
        torch.nn.Linear(H, H),
        torch.nn.ReLU(),
        torch.nn.Linear(H, C),
    )
    optimizer = torch.optim.SGD(net.parameters(), lr=1e-3)
    loss_fn = torch.nn.CrossEntropyLoss()
    Xt, yt = torch.from_numpy(X), torch.from_numpy(y)
    generator = torch.Generator().manual_seed(0)

    def run() -> None:
        order = torch.randperm(len(Xt), generator=generator)
        for start in range(0, len(Xt), batch):
            idx = order[start : start + batch]
            optimizer.zero_grad(set_to_none=True)
            loss_fn(net(Xt[idx]), yt[idx]).backward()
            optimizer.step()

    return run


def numpy_epoch(kind: str, X: np.ndarray, y: np.ndarray, batch: int) -> Callable[[], None]:
    params = {"learning_rate": 1e-4, "batch_size": batch, "epochs": 1000}
    if kind == "numpy.mlp":
        params.update(hidden=[H, H], learning_rate=1e-3)
    model = MODELS[kind].build(params, seed=0)
    classes = np.arange(C)
    return lambda: model.partial_fit(X, y, classes=classes)


def sklearn_epochs(X: np.ndarray, y: np.ndarray, batch: int) -> dict[str, Callable[[], None]]:
    from sklearn.linear_model import SGDClassifier
    from sklearn.neural_network import MLPClassifier

    classes = np.arange(C)
    runs = {}
    for loss in ("hinge", "log_loss"):
        clf = SGDClassifier(loss=loss, learning_rate="constant", eta0=1e-4, random_state=0)
        runs[f"sgd_{loss}"] = lambda clf=clf: clf.partial_fit(X, y, classes=classes)
    mlp = MLPClassifier(
        hidden_layer_sizes=(H, H),
        solver="sgd",
        momentum=0.0,
        learning_rate_init=1e-3,
        batch_size=batch,
        random_state=0,
    )
    runs["mlp"] = lambda: mlp.partial_fit(X, y, classes=classes)
    return runs


def print_row(
    batch: int, times: dict[str, float], model: str, flops: float, peer: str, peer_s: float
) -> None:
    ours = times[model]
    print(
        f"| {batch} | {model} | {ours:.3f} | {flops / ours / 1e9:.0f} | {peer} | "
        f"{peer_s:.3f} | {ours / peer_s:.2f} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=50_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch-sizes", default="64,256,1024")
    parser.add_argument("--skip-sklearn", action="store_true")
    args = parser.parse_args()
    threads = len(os.sched_getaffinity(0))
    rng = np.random.default_rng(0)
    X = rng.standard_normal((args.n, D), dtype=np.float32)
    y = rng.integers(0, C, args.n)

    peak = gemm_peak()
    reads = read_twice(X)
    print(
        f"# {args.n} x {D} float32, {C} classes; {threads} threads; float32 GEMM peak "
        f"{peak:.0f} GFLOP/s (2048^3); reading the data twice {reads:.3f} s"
    )
    print("\n| batch | model | s/epoch | GFLOP/s | peer | peer s/epoch | ratio (ours / peer) |")
    print("|---|---|---|---|---|---|---|")
    for batch in (int(b) for b in args.batch_sizes.split(",")):
        runs: dict[str, Callable[[], object]] = {
            f"numpy.{k}": numpy_epoch(f"numpy.{k}", X, y, batch)
            for k in ("linear_svm", "softmax", "mlp")
        }
        runs["gemm_only"] = gemm_only_epoch(X, batch)
        runs["linear_gemm_only"] = linear_gemm_only_epoch(X, batch)
        torch_run = torch_epoch(X, y, batch, threads)
        if torch_run is not None:
            runs["torch.mlp"] = torch_run
        if not args.skip_sklearn:
            runs.update({f"sklearn.{k}": v for k, v in sklearn_epochs(X, y, batch).items()})
        for fn in runs.values():  # warm-up: first-touch allocations, thread pools
            fn()
        times = {name: float("inf") for name in runs}
        for _ in range(args.repeats):  # interleaved, so drifts hit every column alike
            for name, fn in runs.items():
                times[name] = min(times[name], best_of(fn, 1))

        def row(*args: object) -> None:
            print_row(batch, times, *args)  # noqa: B023 (called within this iteration)

        for kind, sk in (("linear_svm", "sgd_hinge"), ("softmax", "sgd_log_loss")):
            row(f"numpy.{kind}", linear_flops(args.n), "read x2", reads)
            row(f"numpy.{kind}", linear_flops(args.n), "its GEMM-only", times["linear_gemm_only"])
            if not args.skip_sklearn:
                row(
                    f"numpy.{kind}",
                    linear_flops(args.n),
                    f"sklearn SGDClassifier({sk[4:]})",
                    times[f"sklearn.{sk}"],
                )
        row("numpy.mlp", mlp_flops(args.n), "GEMM-only", times["gemm_only"])
        if torch_run is not None:
            row("numpy.mlp", mlp_flops(args.n), f"torch {threads} threads", times["torch.mlp"])
        if not args.skip_sklearn:
            row("numpy.mlp", mlp_flops(args.n), "sklearn MLPClassifier", times["sklearn.mlp"])
        sys.stdout.flush()


if __name__ == "__main__":
    main()
