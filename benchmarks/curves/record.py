"""Record replayable learning curves: python benchmarks/curves/record.py [TASK ...] [--configs N]

For each task (a study file of studies/), configurations are drawn at random from the study's
space (Optuna's RandomSampler, seed 0) and each is trained with two training seeds, for the
study's full epoch count, without early stopping; every epoch's validation accuracy, validation
loss and seconds go into benchmarks/curves/<task>.npz (search/replay.py reads them). A run that
diverges keeps NaN after its last epoch. It runs once, outside CI; the tables are committed.

Tasks whose epochs are expensive on 2 cores train on a subset of the training images (TASKS
says which); the validation split is the study's own, whole.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from dataclasses import dataclass
from dataclasses import replace
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent


@dataclass(frozen=True)
class Task:
    study: str  # a file of studies/
    configs: int  # configurations drawn
    seeds: int = 2  # training seeds per configuration
    train_rows: int | None = None  # a subset of the training images, when epochs are costly


TASKS = {
    "digits_softmax": Task("digits_softmax.toml", 400),
    "digits_linear_svm": Task("digits_linear_svm.toml", 400),
    "digits_mlp": Task("digits_mlp.toml", 400),
    "fashion_softmax": Task("fashion_softmax.toml", 100, train_rows=12_000),
    "fashion_mlp": Task("fashion_mlp.toml", 100, train_rows=12_000),
    "fashion_cnn": Task("fashion_cnn.toml", 30, train_rows=6_000),
}


def sample_configs(spec, n: int) -> list[dict]:
    import optuna

    from hpsearch.space import suggest

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    configs = []
    for _ in range(n):
        trial = study.ask()
        configs.append(suggest(trial, spec.params))
        study.tell(trial, 0.0)
    return configs


def train_curve(spec, params: dict, seed: int, data) -> tuple[list, list, list]:
    from hpsearch.models import resolve
    from hpsearch.models.training import TrainingDiverged
    from hpsearch.models.training import train

    fixed = {**spec.model.fixed, **params, "patience": 0}
    model = resolve(spec.model.kind, fixed).build(fixed, seed)
    images = model.wants_images
    acc, loss, seconds = [], [], []
    last = [time.perf_counter()]

    def on_epoch(epoch, history) -> None:
        now = time.perf_counter()
        acc.append(history.val_accuracy[-1])
        loss.append(history.val_loss[-1])
        seconds.append(now - last[0])
        last[0] = now

    try:
        train(
            model,
            *data.split("train", images),
            *data.split("val", images),
            classes=data.classes,
            on_epoch=on_epoch,
        )
    except TrainingDiverged:
        pass
    return acc, loss, seconds


def record(name: str, task: Task, n_configs: int | None) -> None:
    import optuna

    from hpsearch.replay import ReplayTable
    from hpsearch.runner import load_data
    from hpsearch.study_file import load_study_file

    spec = load_study_file(ROOT / "studies" / task.study)
    data = load_data(spec.data, spec.seed, task.study)
    if task.train_rows:
        data = replace(
            data, X_train=data.X_train[: task.train_rows], y_train=data.y_train[: task.train_rows]
        )
    n = n_configs or task.configs
    configs = sample_configs(spec, n)
    epochs = int(spec.model.fixed.get("epochs", 20))
    shape = (n, task.seeds, epochs)
    acc, loss, sec = (np.full(shape, np.nan) for _ in range(3))
    start = time.perf_counter()
    for i, params in enumerate(configs):
        for s in range(task.seeds):
            a, lo, se = train_curve(spec, params, 1000 * s + i, data)
            acc[i, s, : len(a)], loss[i, s, : len(lo)], sec[i, s, : len(se)] = a, lo, se
        done = time.perf_counter() - start
        print(f"{name}: {i + 1}/{n} configurations, {done:.0f} s", file=sys.stderr, flush=True)
    meta = {
        "task": name,
        "study": task.study,
        "seeds": task.seeds,
        "train_rows": int(len(data.y_train)),
        "n_val": int(len(data.y_val)),
        "seconds_to_record": round(time.perf_counter() - start, 1),
        "command": f"python benchmarks/curves/record.py {name}"
        + (f" --configs {n_configs}" if n_configs else ""),
        "versions": {
            "python": platform.python_version(),
            "numpy": np.__version__,
            "optuna": optuna.__version__,
            "hpsearch": __import__("hpsearch").__version__,
        },
        "machine": f"{platform.machine()}, {len(__import__('os').sched_getaffinity(0))} cores",
    }
    table = ReplayTable(spec.params, configs, acc, loss, sec, meta)
    path = HERE / f"{name}.npz"
    table.save(path)
    print(f"{path.relative_to(ROOT)}: {path.stat().st_size / 1024:.0f} KiB; {json.dumps(meta)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("tasks", nargs="*", metavar="TASK", help=f"of {', '.join(TASKS)}")
    parser.add_argument("--configs", type=int, help="configurations per task (default: TASKS)")
    args = parser.parse_args()
    unknown = [t for t in args.tasks if t not in TASKS]
    if unknown:
        parser.error(f"unknown task {unknown[0]!r}; allowed: {', '.join(TASKS)}")
    for name in args.tasks or TASKS:
        record(name, TASKS[name], args.configs)


if __name__ == "__main__":
    main()
