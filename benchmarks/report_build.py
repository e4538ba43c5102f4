"""Time to build the HTML report of a 1,000-trial study, against Optuna's figures alone.

    python benchmarks/report_build.py [--trials 1000] [--epochs 30]

Writes a synthetic 1,000-trial study into a temporary SQLite file: trials with the quickstart's
parameters, one intermediate value per epoch, the curves hpsearch stores, a fifth of them pruned
half-way. Then it times `hpsearch report` end to end (loading from SQLite, every figure, the HTML
with plotly.js inline), and beside it, in the same run, the peer: Optuna's eight
optuna.visualization figures of the same study, built and serialised to HTML.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import optuna
from optuna.distributions import CategoricalDistribution
from optuna.distributions import FloatDistribution

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hpsearch.cli import main as hpsearch  # noqa: E402

STUDY = """
[study]
name = "big"
n_trials = {trials}
[model]
kind = "numpy.softmax"
fixed = {{ epochs = {epochs} }}
[params]
learning_rate = {{ type = "float", low = 1e-4, high = 1.0, log = true }}
batch_size = {{ type = "categorical", choices = [16, 32, 64, 128] }}
reg = {{ type = "categorical", choices = ["none", "l1", "l2"] }}
reg_strength = {{ type = "float", low = 1e-6, high = 1e-1, log = true, when = {{ reg = ["l1", "l2"] }} }}
"""  # noqa: E501 (a TOML inline table cannot span lines)


def fill(url: str, study_file: Path, trials: int, epochs: int) -> None:
    from hpsearch.creation import create_or_resume
    from hpsearch.storage import StorageURL
    from hpsearch.storage import open_storage
    from hpsearch.study_file import load_study_file

    spec = load_study_file(study_file)
    target = StorageURL(url, "benchmark")
    study, _ = create_or_resume(spec, open_storage(target), target)
    rng = np.random.default_rng(0)
    dists = {
        "learning_rate": FloatDistribution(1e-4, 1.0, log=True),
        "batch_size": CategoricalDistribution([16, 32, 64, 128]),
        "reg": CategoricalDistribution(["none", "l1", "l2"]),
        "reg_strength": FloatDistribution(1e-6, 1e-1, log=True),
    }
    frozen = []
    for _ in range(trials):
        params = {
            "learning_rate": float(10 ** rng.uniform(-4, 0)),
            "batch_size": int(rng.choice([16, 32, 64, 128])),
            "reg": str(rng.choice(["none", "l1", "l2"])),
        }
        if params["reg"] != "none":
            params["reg_strength"] = float(10 ** rng.uniform(-6, -1))
        pruned = rng.random() < 0.2
        n = epochs // 2 if pruned else epochs
        acc = np.minimum(0.97, 0.5 + 0.45 * (1 - np.exp(-np.arange(1, n + 1) / 5)))
        acc = np.round(acc - rng.uniform(0, 0.1), 6)
        curves = {
            "train_loss": list(np.round(1 / np.arange(1, n + 1), 6)),
            "train_accuracy": list(acc + 0.02),
            "val_loss": list(np.round(1.2 / np.arange(1, n + 1), 6)),
            "val_accuracy": list(acc),
            "weight_norm": list(np.round(np.sqrt(np.arange(1, n + 1)), 6)),
        }
        frozen.append(
            optuna.trial.create_trial(
                state=optuna.trial.TrialState.PRUNED
                if pruned
                else optuna.trial.TrialState.COMPLETE,
                value=None if pruned else float(acc[-1]),
                params={k: params[k] for k in params},
                distributions={k: dists[k] for k in params},
                intermediate_values={i: float(v) for i, v in enumerate(acc)},
                user_attrs={"curves": curves, "seconds": 0.2, "seed": 1},
            )
        )
    study.add_trials(frozen)


def optuna_figures(url: str) -> None:
    import optuna.visualization as vis

    study = optuna.load_study(study_name="big", storage=url)
    figures = [
        vis.plot_optimization_history(study),
        vis.plot_param_importances(study),
        vis.plot_parallel_coordinate(study),
        vis.plot_slice(study),
        vis.plot_contour(study, params=["learning_rate", "reg_strength"]),
        vis.plot_intermediate_values(study),
        vis.plot_edf(study),
        vis.plot_timeline(study),
    ]
    for figure in figures:
        figure.to_html(full_html=False, include_plotlyjs=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=1000)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'big.db'}"
        study_file = Path(tmp) / "big.toml"
        study_file.write_text(STUDY.format(trials=args.trials, epochs=args.epochs))
        fill(url, study_file, args.trials, args.epochs)
        out = Path(tmp) / "report.html"
        ours, peer = [], []
        for _ in range(args.repeats):
            start = time.perf_counter()
            assert hpsearch(["report", "big", "--storage", url, "-o", str(out)]) == 0
            ours.append(time.perf_counter() - start)
            start = time.perf_counter()
            optuna_figures(url)
            peer.append(time.perf_counter() - start)
        print(
            f"\n{args.trials} trials x {args.epochs} epochs: hpsearch report {min(ours):.2f} s "
            f"(all figures, HTML {out.stat().st_size / 1e6:.1f} MB); Optuna's 8 figures alone "
            f"{min(peer):.2f} s; ratio {min(ours) / min(peer):.2f}"
        )


if __name__ == "__main__":
    main()
