"""Tuning your own model: what hpsearch's open path costs, and how it compares with
scikit-learn's own searches.

    python benchmarks/custom_models.py [--epochs 10] [--trials 20] [--skip-search]

Needs the real Fashion-MNIST (`apt-get install dataset-fashion-mnist`), standardized, with
hpsearch's split (54,000 training, 6,000 validation, the 10,000 test images).

1. Per-epoch overhead. The example class studies/custom/hinge_linear.py, trained `--epochs`
   epochs by hpsearch's epoch loop (models.training.train over the CustomClassifier adapter:
   partial_fit, then the training loss and accuracy, then evaluate on validation, then the
   weight norm) against the peer, a bare loop calling the class's own partial_fit and predict
   (on the validation split) over the same data. Same seed, so the same arithmetic. Minimum of
   10 interleaved runs, in rotating order.
   The bare loop measures only validation accuracy; hpsearch's also records the training loss
   and accuracy, the validation loss and the weight norm, which the reports draw. The training
   figures come from the epoch's own batches (the class keeps them in `epoch_metrics_`, as the
   example does) or, for a class that does not, from a pass over 10,000 training rows: both
   are measured. Rows of the bare loop making those same measurements split the ratio into
   what the measurements cost and what the loop around them costs. A last line makes
   the same measurements through an adapter without the user-code guards (models/usercode.py:
   the call boundary that redirects prints and turns what the class raises into the trial's
   failure, and the checks of what predict and the scores return), epoch by epoch in
   alternation with the guarded adapter: the guards' cost is the ratio of the two.
2. Supervision. Since 0.4 a worker trains in a training process of its own
   (search/trial_process.py), which reports each epoch over a pipe and waits for the worker's
   answer. The same class and epochs trained through that process (jobs.train_model, every
   epoch answered) against the epoch loop called in this process; minimum of 5 interleaved
   runs each. Then what a trial pays beside its epochs: the round trip of a job that does
   nothing (median of 200), and starting a fresh process after one died (median of 20).
3. Search. scikit-learn's SGDClassifier over one space (loss, penalty, alpha, eta0): hpsearch
   (TPE, median pruner, `--trials` trials of 10 epochs, scored on the validation split) against
   scikit-learn's GridSearchCV and HalvingRandomSearchCV over the same space on the same
   training rows (3-fold CV, max_iter 10), each ending with its best configuration's test
   accuracy. Wall time of the whole search, each on 2 cores (n_jobs=2 for scikit-learn; one
   hpsearch worker, whose BLAS uses both cores).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from hpsearch.models import resolve  # noqa: E402
from hpsearch.models.custom_classifier import CustomClassifier  # noqa: E402
from hpsearch.models.data import load_dataset  # noqa: E402
from hpsearch.models.training import TRAIN_EVAL_ROWS  # noqa: E402
from hpsearch.models.training import train  # noqa: E402

HINGE = f"{ROOT / 'studies' / 'custom' / 'hinge_linear.py'}:HingeLinear"


class Unguarded(CustomClassifier):
    """The adapter as it was before the user-code guards: direct calls, no answer checked."""

    def _call(self, method: str, *args, **kwargs):
        return getattr(self.estimator, method)(*args, **kwargs)

    def predict(self, X):
        return np.asarray(self._call("predict", X))

    def _scores(self, method: str, X):
        return np.asarray(self._call(method, X), dtype=np.float64)

    def weight_norm(self) -> float:
        arrays = list(self.estimator.get_weights().values())
        return float(np.sqrt(sum(float(np.sum(np.square(a))) for a in arrays if np.ndim(a) >= 2)))


PARAMS = {"learning_rate": 1e-3, "reg": "l2", "reg_strength": 1e-4, "batch_size": 64}


class Passing(CustomClassifier):
    """The adapter ignoring the class's epoch_metrics_: the training figures come from a pass."""

    def epoch_metrics(self) -> None:
        return None


def overhead(data, epochs: int) -> None:
    entry = resolve(HINGE)

    def build(adapter=CustomClassifier):
        model = entry.build({**PARAMS, "epochs": epochs}, seed=0)
        return adapter(model.estimator, epochs=epochs, patience=0, path=model.path)

    def ours(adapter) -> float:
        model = build(adapter)
        start = time.perf_counter()
        history = train(
            model, data.X_train, data.y_train, data.X_val, data.y_val, classes=data.classes
        )
        assert history.train_metrics == ("pass" if adapter is Passing else "batches")
        return time.perf_counter() - start

    def bare() -> float:
        est = entry.load()(**PARAMS, seed=0)
        start = time.perf_counter()
        for _ in range(epochs):
            est.partial_fit(data.X_train, data.y_train, classes=data.classes)
            float(np.mean(est.predict(data.X_val) == data.y_val))
        return time.perf_counter() - start

    def measuring(batches: bool) -> float:
        """The bare loop doing the measurements hpsearch's loop records, through the adapter;
        what is left between this and `ours` is the loop itself."""
        model = build()
        X_eval, y_eval = data.X_train[:TRAIN_EVAL_ROWS], data.y_train[:TRAIN_EVAL_ROWS]
        start = time.perf_counter()
        for _ in range(epochs):
            model.partial_fit(data.X_train, data.y_train, classes=data.classes)
            model.epoch_metrics() if batches else model.evaluate(X_eval, y_eval)
            model.evaluate(data.X_val, data.y_val)
            model.weight_norm()
        return time.perf_counter() - start

    runs = {
        "bare": bare,
        "measuring, pass": lambda: measuring(False),
        "measuring, batches": lambda: measuring(True),
        "ours, pass": lambda: ours(Passing),
        "ours, batches": lambda: ours(CustomClassifier),
    }
    best = dict.fromkeys(runs, float("inf"))
    names = list(runs)
    for round_ in range(2 * len(names)):  # each path goes first twice: the order matters here
        k = round_ % len(names)
        for name in names[k:] + names[:k]:
            best[name] = min(best[name], runs[name]())
    rows = {
        "bare": "bare partial_fit + predict",
        "measuring, pass": "bare loop with hpsearch's measurements, training loss and accuracy "
        f"from a pass over {TRAIN_EVAL_ROWS:,} rows",
        "measuring, batches": "bare loop with hpsearch's measurements, training loss and "
        "accuracy from the epoch's batches (epoch_metrics_)",
        "ours, pass": "hpsearch epoch loop, a pass",
        "ours, batches": "hpsearch epoch loop, the epoch's batches (the example's default)",
    }
    print("| path | s/epoch | ratio to the bare loop |\n|---|---|---|")
    for name, label in rows.items():
        print(f"| {label} | {best[name] / epochs:.3f} | {best[name] / best['bare']:.2f} |")
    for kind in ("pass", "batches"):
        loop = best[f"ours, {kind}"] / best[f"measuring, {kind}"]
        print(f"hpsearch's loop, {kind}: {loop:.2f}x the bare loop with the same measurements")


def _nothing(state, channel) -> None:
    return None


def supervision(data, epochs: int) -> None:
    from hpsearch import jobs
    from hpsearch.trial_process import Trainer

    params = {**PARAMS, "epochs": epochs}

    def inside() -> float:
        model = resolve(HINGE).build(params, seed=0)
        start = time.perf_counter()
        train(
            model,
            data.X_train,
            data.y_train,
            data.X_val,
            data.y_val,
            classes=data.classes,
            on_epoch=lambda epoch, history: None,
        )
        return time.perf_counter() - start

    with Trainer({"data": data}) as trainer:

        def supervised() -> float:
            start = time.perf_counter()
            trainer.call(jobs.train_model, HINGE, params, 0, on_epoch=lambda report: "go")
            return time.perf_counter() - start

        best = {"inside": float("inf"), "supervised": float("inf")}
        for round_ in range(5):
            order = [("inside", inside), ("supervised", supervised)]
            for name, run in order if round_ % 2 else order[::-1]:
                best[name] = min(best[name], run())
        trips = []
        for _ in range(200):
            start = time.perf_counter()
            trainer.call(_nothing)
            trips.append(time.perf_counter() - start)
        restarts = []
        for _ in range(20):
            trainer.kill()
            start = time.perf_counter()
            trainer.call(_nothing)
            restarts.append(time.perf_counter() - start)
    ratio = best["supervised"] / best["inside"]
    print(
        f"\nsupervised epoch loop: {best['supervised'] / epochs:.3f} s/epoch against "
        f"{best['inside'] / epochs:.3f} in this process: {ratio:.3f}x"
    )
    print(
        f"a job's round trip {1000 * float(np.median(trips)):.2f} ms; a fresh training "
        f"process {1000 * float(np.median(restarts)):.1f} ms"
    )


def guard_cost(data, epochs: int) -> None:
    """The user-code guards' cost: two identical models, one through the guarded adapter and
    one through Unguarded, trained epoch by epoch in alternation (which goes first alternates
    too), so that the machine's drift over the run falls on both alike."""
    entry = resolve(HINGE)
    guarded = entry.build({**PARAMS, "epochs": epochs}, seed=0)
    plain = Unguarded(
        entry.build({**PARAMS, "epochs": epochs}, seed=0).estimator, epochs=1, patience=0
    )
    X_eval, y_eval = data.X_train[:TRAIN_EVAL_ROWS], data.y_train[:TRAIN_EVAL_ROWS]

    def epoch(model) -> float:
        start = time.perf_counter()
        model.partial_fit(data.X_train, data.y_train, classes=data.classes)
        model.evaluate(X_eval, y_eval)
        model.evaluate(data.X_val, data.y_val)
        model.weight_norm()
        return time.perf_counter() - start

    seconds = {"guarded": [], "plain": []}
    for e in range(epochs):
        order = [("guarded", guarded), ("plain", plain)][:: 1 if e % 2 else -1]
        for name, model in order:
            seconds[name].append(epoch(model))
    total = sum(seconds["guarded"]) / sum(seconds["plain"])
    ratios = np.array(seconds["guarded"]) / np.array(seconds["plain"])
    print(
        f"\nuser-code guards (models/usercode.py), {epochs} alternating epochs: guarded "
        f"{np.mean(seconds['guarded']):.4f} s/epoch, unguarded {np.mean(seconds['plain']):.4f}"
        f" s/epoch: {total:.3f}× in total, median epoch {np.median(ratios):.3f}×"
    )


SPACE = {
    "loss": ["hinge", "log_loss"],
    "penalty": ["l2", "l1"],
    "alpha": [1e-5, 1e-4, 1e-3],
    "eta0": [1e-3, 1e-2],
}


def search(data, trials: int) -> None:
    import optuna
    from sklearn.experimental import enable_halving_search_cv  # noqa: F401
    from sklearn.linear_model import SGDClassifier
    from sklearn.model_selection import GridSearchCV
    from sklearn.model_selection import HalvingRandomSearchCV

    import hpsearch as hp

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        doc = {
            "study": {"name": "sgd", "n_trials": trials, "seed": 0},
            "data": {"dataset": "fashion-mnist", "val_fraction": 0.1},
            "model": {
                "kind": "sklearn.linear_model:SGDClassifier",
                "fixed": {"epochs": 10, "learning_rate": "constant"},
            },
            "params": {
                "loss": {"type": "categorical", "choices": SPACE["loss"]},
                "penalty": {"type": "categorical", "choices": SPACE["penalty"]},
                "alpha": {"type": "float", "low": 1e-5, "high": 1e-3, "log": True},
                "eta0": {"type": "float", "low": 1e-3, "high": 1e-2, "log": True},
            },
        }
        start = time.perf_counter()
        study = hp.run(doc, storage=f"sqlite:///{tmp}/b.db", progress=False)
        result = hp.retrain(hp.export(study), out=Path(tmp) / "r")
        seconds = time.perf_counter() - start
        optuna.logging.set_verbosity(optuna.logging.ERROR)
        fits = sum(len(t.intermediate_values) for t in study.trials) / 10
        name = "hpsearch (TPE + median pruning)"
        rows.append((name, trials, f"{fits:.1f}", result.test_accuracy, seconds))
    base = SGDClassifier(max_iter=10, tol=None, learning_rate="constant", random_state=0)
    X, y = np.asarray(data.X_train), data.y_train
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ConvergenceWarning at max_iter=10, by design
        for name, searcher in (
            ("GridSearchCV", GridSearchCV(base, SPACE, cv=3, n_jobs=2)),
            (
                "HalvingRandomSearchCV",
                HalvingRandomSearchCV(
                    base, SPACE, cv=3, n_jobs=2, random_state=0, n_candidates=24
                ),
            ),
        ):
            start = time.perf_counter()
            searcher.fit(X, y)
            test = float(searcher.score(np.asarray(data.X_test), data.y_test))
            seconds = time.perf_counter() - start
            n = len(searcher.cv_results_["params"])
            fits = f"{3 * n} (3-fold" + (", on growing subsets)" if "Halving" in name else ")")
            rows.append((f"scikit-learn {name}", n, fits, test, seconds))
    print("\n| search | configurations | full fits | test accuracy of its best | seconds |")
    print("|---|---|---|---|---|")
    for name, n, fits, test, seconds in rows:
        print(f"| {name} | {n} | {fits} | {test:.4f} | {seconds:.1f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--skip-search", action="store_true")
    args = parser.parse_args()
    data = load_dataset("fashion-mnist", val_fraction=0.1, seed=0)
    sizes = f"{len(data.y_train)} train, {len(data.y_val)} val, {len(data.y_test)} test"
    print(f"# Fashion-MNIST: {sizes}\n")
    overhead(data, args.epochs)
    supervision(data, args.epochs)
    guard_cost(data, max(args.epochs, 40))
    if not args.skip_search:
        search(data, args.trials)


if __name__ == "__main__":
    main()
