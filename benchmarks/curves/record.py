"""Record replayable learning curves: python benchmarks/curves/record.py [TASK ...] [options]

Options: --configs N (configurations per task), --jobs J (processes side by side).

For each task (a study file of studies/), configurations are drawn at random from the study's
space (Optuna's RandomSampler, seed 0) and each is trained with two training seeds, for the
study's full epoch count, without early stopping; every epoch's validation accuracy, validation
loss and seconds go into benchmarks/curves/<task>.npz (search/replay.py reads them). A run that
diverges keeps NaN after its last epoch. It runs once, outside CI; the tables are committed.

Tasks whose epochs are expensive on 2 cores train on a subset of the training images (TASKS
says which); the validation split is the study's own, whole. With --jobs J, J processes of one
thread each train side by side (their seconds are then those of a shared machine; the table's
meta says how it was recorded).
"""

from __future__ import annotations

import argparse
import functools
import json
import os
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
    fixed: tuple[tuple[str, object], ...] = ()  # overrides of the study's fixed arguments


TASKS = {
    "digits_softmax": Task("digits_softmax.toml", 400),
    "digits_linear_svm": Task("digits_linear_svm.toml", 400),
    "digits_mlp": Task("digits_mlp.toml", 400),
    "fashion_softmax": Task("fashion_softmax.toml", 100, train_rows=12_000),
    "fashion_mlp": Task("fashion_mlp.toml", 100, train_rows=12_000),
    # The study's search space on a smaller CNN (8-16-32 channels, one convolution per block,
    # 12 epochs, no test-time flips): the study's own network would take about 70 minutes of
    # both cores for 30 configurations even on 6,000 images.
    "fashion_cnn": Task(
        "fashion_cnn.toml",
        30,
        train_rows=6_000,
        fixed=(
            ("channels", "8-16-32"),
            ("convs_per_block", 1),
            ("epochs", 12),
            ("test_flip", False),
        ),
    ),
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


@functools.cache
def task_data(task: Task):
    """The task's study and data (its training subset, where TASKS asks for one); loaded once
    a process (the job processes and the benchmarks call it per run)."""
    from hpsearch.runner import load_data
    from hpsearch.study_file import load_study_file

    spec = load_study_file(ROOT / "studies" / task.study)
    if task.fixed:
        spec = replace(
            spec, model=replace(spec.model, fixed={**spec.model.fixed, **dict(task.fixed)})
        )
    data = load_data(spec.data, spec.seed, task.study)
    if task.train_rows:
        data = replace(
            data, X_train=data.X_train[: task.train_rows], y_train=data.y_train[: task.train_rows]
        )
    return spec, data


def _job(task: Task, params: dict, seed: int) -> tuple[list, list, list]:
    spec, data = task_data(task)
    return train_curve(spec, params, seed, data)


def _single_threaded_pool(jobs: int):
    """J processes of one BLAS/Torch thread each (set before they start and import NumPy)."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "HPSEARCH_THREADS"):
        os.environ[var] = "1"
    return ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("spawn"))


def record(name: str, task: Task, n_configs: int | None, jobs: int = 1) -> None:
    import optuna

    from hpsearch.replay import ReplayTable

    spec, data = task_data(task)
    n = n_configs or task.configs
    configs = sample_configs(spec, n)
    epochs = int(spec.model.fixed.get("epochs", 20))
    shape = (n, task.seeds, epochs)
    acc, loss, sec = (np.full(shape, np.nan) for _ in range(3))
    start = time.perf_counter()
    runs = [(i, s) for i in range(n) for s in range(task.seeds)]
    if jobs > 1:
        pool = _single_threaded_pool(jobs)
        futures = [pool.submit(_job, task, configs[i], 1000 * s + i) for i, s in runs]
        curves = (f.result() for f in futures)
    else:
        curves = (train_curve(spec, configs[i], 1000 * s + i, data) for i, s in runs)
    for (i, s), (a, lo, se) in zip(runs, curves, strict=True):
        acc[i, s, : len(a)], loss[i, s, : len(lo)], sec[i, s, : len(se)] = a, lo, se
        if s == task.seeds - 1:
            done = time.perf_counter() - start
            print(f"{name}: {i + 1}/{n} configurations, {done:.0f} s", file=sys.stderr, flush=True)
    if jobs > 1:
        pool.shutdown()
    meta = {
        "task": name,
        "study": task.study,
        "seeds": task.seeds,
        "train_rows": int(len(data.y_train)),
        "fixed_overrides": dict(task.fixed),
        "n_val": int(len(data.y_val)),
        "seconds_to_record": round(time.perf_counter() - start, 1),
        "command": f"python benchmarks/curves/record.py {name}"
        + (f" --configs {n_configs}" if n_configs else "")
        + (f" --jobs {jobs}" if jobs > 1 else ""),
        "jobs": jobs,  # processes side by side, one thread each (1: one process, every core)
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
    parser.add_argument("--jobs", type=int, default=1, help="processes side by side (default 1)")
    args = parser.parse_args()
    unknown = [t for t in args.tasks if t not in TASKS]
    if unknown:
        parser.error(f"unknown task {unknown[0]!r}; allowed: {', '.join(TASKS)}")
    for name in args.tasks or TASKS:
        record(name, TASKS[name], args.configs, args.jobs)


if __name__ == "__main__":
    main()
