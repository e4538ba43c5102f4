"""Search efficiency: the default pruner against no pruning, TPE against random search.

    python benchmarks/search_efficiency.py [STUDY.toml ...] [--seeds 0 1 2] [--trials N]
    python benchmarks/search_efficiency.py [STUDY.toml ...] --stopping BUDGET
    python benchmarks/search_efficiency.py [STUDY.toml ...] --warm-start

Defaults: studies/digits_mlp.toml and studies/fashion_softmax.toml (the real Fashion-MNIST;
`apt-get install dataset-fashion-mnist`), seeds 0, 1, 2, each file's own trial budget.

For every study file and seed, three studies with the same search space, data split and seed run
into a fresh SQLite file:
    tpe + median   the default sampler and the default pruner (median, 5 start-up trials,
                   3 warm-up epochs), whatever the file sets
    tpe + none     the same without pruning
    random + median  random search with the default pruner
Printed per seed and as a mean over seeds:
    pruning: best validation accuracy with and without it (the difference in points; the target
             is within 0.5 point), and the ratio of epochs trained and of
             seconds spent in trials.
    TPE: the trial at which TPE's running best first reaches random search's best over the whole
         budget ("-" if it never does), at equal trials.
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from hpsearch.algorithms import MEDIAN_PRUNER  # noqa: E402
from hpsearch.records import finished_count  # noqa: E402
from hpsearch.runner import run_study  # noqa: E402
from hpsearch.spec import AlgorithmSpec  # noqa: E402
from hpsearch.spec import StopSpec  # noqa: E402
from hpsearch.spec import StudySpec  # noqa: E402
from hpsearch.storage import StorageURL  # noqa: E402
from hpsearch.study_file import load_study_file  # noqa: E402

MEDIAN = AlgorithmSpec("median", {k: v for k, v in MEDIAN_PRUNER.items() if k != "type"})
VARIANTS = {
    "tpe+median": (AlgorithmSpec("tpe"), MEDIAN),
    "tpe+none": (AlgorithmSpec("tpe"), AlgorithmSpec("none")),
    "random+median": (AlgorithmSpec("random"), MEDIAN),
}


@dataclasses.dataclass
class Outcome:
    best: float
    epochs: int
    seconds: float  # summed trial durations (data loading and start-up not counted)
    running_best: list[float]  # best value after each finished trial, in trial order


def run_variant(spec: StudySpec, url: str, variant: str, seed: int, trials: int) -> Outcome:
    import optuna

    sampler, pruner = VARIANTS[variant]
    name = f"{spec.name}-{variant}-seed{seed}"
    spec = dataclasses.replace(spec, name=name, seed=seed, sampler=sampler, pruner=pruner)
    outcome = run_study(spec, StorageURL(url, "benchmark"), n_trials=trials, progress=False)
    if outcome.exit_code != 0:
        raise SystemExit(f"{name}: hpsearch run exited with {outcome.exit_code}")
    study = optuna.load_study(study_name=name, storage=url)
    running, best = [], float("-inf")
    epochs, seconds = 0, 0.0
    for t in sorted(study.trials, key=lambda t: t.number):
        epochs += len(t.user_attrs.get("curves", {}).get("val_accuracy", []))
        seconds += (t.datetime_complete - t.datetime_start).total_seconds()
        if t.state.name == "COMPLETE":
            best = max(best, t.value)
        running.append(best)
    return Outcome(best, epochs, seconds, running)


def trials_to_reach(running_best: list[float], target: float) -> int | None:
    return next((i + 1 for i, v in enumerate(running_best) if v >= target), None)


def stopping(path: Path, spec: StudySpec, seeds: list[int], budget: int) -> None:
    """The stopping rule (patience 20, min_delta "noise") against the whole budget: the same
    study, seed and sampler, so both runs make the same trials until the rule stops one."""
    import optuna

    rule = StopSpec(patience=20, min_delta="noise")
    print(f"\n{path.name}: stopping rule {rule.to_dict()} against {budget} trials")
    print(
        "| study | seed | trials, whole budget | trials with the rule | saved | best val, whole "
        "| best val, stopped | difference |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for seed in seeds:
        with tempfile.TemporaryDirectory() as tmp:
            url = f"sqlite:///{Path(tmp) / 'b.db'}"
            best = {}
            for label, stop in (("whole", None), ("rule", rule)):
                name = f"{spec.name}-{label}-{seed}"
                variant = dataclasses.replace(spec, name=name, seed=seed, stop=stop)
                run_study(variant, StorageURL(url, "benchmark"), n_trials=budget, progress=False)
                study = optuna.load_study(study_name=name, storage=url)
                best[label] = (study.best_value, finished_count(study.trials))
        (whole, n_whole), (stopped, n_rule) = best["whole"], best["rule"]
        print(
            f"| `{path.name}` | {seed} | {n_whole} | {n_rule} | {1 - n_rule / n_whole:.0%} | "
            f"{whole:.4f} | {stopped:.4f} | {100 * (stopped - whole):+.2f} pt |",
            flush=True,
        )


def warm_start(path: Path, spec: StudySpec, seeds: list[int]) -> None:
    """A study warm-started from a finished one against the finished one itself, run cold.

    Per seed: the source study runs its file's budget cold; its best validation accuracy is
    the target. Then a new study with the same file, seed and data split, warm-started from
    the source, runs the same budget. "Cold" is the trial at which the source first reached
    its best; "warm" the trial at which the warm-started study first reached it (its own
    trials; the copies do not count). The source's best is itself the luckiest of its trials'
    noisy measurements, so the trials to come within one standard error of it (binomial, on
    the validation split) are shown too."""
    import optuna

    from hpsearch.pareto import VAL_SIZE_ATTR
    from hpsearch.records import own_trials
    from hpsearch.stopping import binomial_noise

    print(f"\n{path.name}: warm start from a finished study, {spec.n_trials} trials each")
    print(
        "| study | seed | source's best val | cold: trials to reach it (within 1 SE) | warm: "
        "trials to reach it (within 1 SE) | warm: best val |"
    )
    print("|---|---|---|---|---|---|")
    for seed in seeds:
        with tempfile.TemporaryDirectory() as tmp:
            url = f"sqlite:///{Path(tmp) / 'b.db'}"
            source = dataclasses.replace(spec, name=f"{spec.name}-cold-{seed}", seed=seed)
            run_study(source, StorageURL(url, "benchmark"), progress=False)
            warm = dataclasses.replace(spec, name=f"{spec.name}-warm-{seed}", seed=seed)
            run_study(warm, StorageURL(url, "benchmark"), progress=False, warm_start=source.name)
            running = {}
            for name in (source.name, warm.name):
                study = optuna.load_study(study_name=name, storage=url)
                n_val = study.user_attrs[VAL_SIZE_ATTR]
                best, running[name] = float("-inf"), []
                for t in sorted(own_trials(study.trials), key=lambda t: t.number):
                    if t.state.name == "COMPLETE":
                        best = max(best, t.value)
                    running[name].append(best)
        target = running[source.name][-1]
        near = target - binomial_noise(target, n_val)
        cold, warm_n = (
            f"{trials_to_reach(running[n], target) or '-'} "
            f"({trials_to_reach(running[n], near) or '-'})"
            for n in (source.name, warm.name)
        )
        print(
            f"| `{path.name}` | {seed} | {target:.4f} | {cold} | {warm_n} | "
            f"{running[warm.name][-1]:.4f} |",
            flush=True,
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "studies",
        nargs="*",
        type=Path,
        default=[ROOT / "studies/digits_mlp.toml", ROOT / "studies/fashion_softmax.toml"],
    )
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--trials", type=int, help="trials per study (default: the file's)")
    parser.add_argument(
        "--stopping",
        type=int,
        metavar="BUDGET",
        help="instead: the stopping rule against a whole budget of BUDGET trials",
    )
    parser.add_argument(
        "--warm-start",
        action="store_true",
        help="instead: a study warm-started from a finished one against that one run cold",
    )
    args = parser.parse_args()
    if args.warm_start:
        for path in args.studies:
            warm_start(path, load_study_file(path), args.seeds)
        return
    if args.stopping:
        for path in args.studies:
            stopping(path, load_study_file(path), args.seeds, args.stopping)
        return

    for path in args.studies:
        spec = load_study_file(path)
        trials = args.trials or spec.n_trials
        print(
            f"\n{path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}: "
            f"{spec.model.kind} on {spec.data.dataset}, {trials} trials per study"
        )
        print(
            "seed  best val: pruned  unpruned  diff(pt)  epochs ratio  seconds ratio"
            "   random best  TPE reaches it at trial"
        )
        diffs, epoch_ratios, second_ratios, reached = [], [], [], []
        with tempfile.TemporaryDirectory() as tmp:
            for seed in args.seeds:
                url = f"sqlite:///{Path(tmp) / f'seed{seed}.db'}"
                got = {v: run_variant(spec, url, v, seed, trials) for v in VARIANTS}
                pruned, unpruned, rand = got["tpe+median"], got["tpe+none"], got["random+median"]
                diff = 100 * (pruned.best - unpruned.best)
                epoch_ratio = pruned.epochs / unpruned.epochs
                second_ratio = pruned.seconds / unpruned.seconds
                at = trials_to_reach(pruned.running_best, rand.best)
                diffs.append(diff)
                epoch_ratios.append(epoch_ratio)
                second_ratios.append(second_ratio)
                reached.append(at)
                print(
                    f"{seed:4d}  {pruned.best:15.4f}  {unpruned.best:8.4f}  {diff:+8.2f}  "
                    f"{epoch_ratio:12.2f}  {second_ratio:13.2f}   {rand.best:11.4f}  "
                    f"{at if at is not None else '-':>23}",
                    flush=True,
                )
        hit = [a for a in reached if a is not None]
        mean = statistics.mean
        summary = (
            f"mean over {len(args.seeds)} seeds: pruned - unpruned {mean(diffs):+.2f} points "
            f"(worst {min(diffs):+.2f}); epochs trained with pruning {mean(epoch_ratios):.2f}x, "
            f"trial seconds {mean(second_ratios):.2f}x; TPE reached random search's best in "
            f"{len(hit)} of {len(reached)} seeds"
        )
        if hit:
            summary += f", at trial {mean(hit):.1f} of {trials} on average"
        print(summary)


if __name__ == "__main__":
    main()
