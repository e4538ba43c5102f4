"""`hpsearch retrain` (one exported configuration, then the test split once) and
`hpsearch confirm` (the top configurations again with new seeds, mean and spread)."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING
from typing import Any

import numpy as np

from models import MODELS
from models._constraints import Interval
from models.training import History
from models.training import train
from search.errors import UsageError
from search.export import SCHEMA_VERSION
from search.objective import derive_seed
from search.records import CONFIRM_ATTR
from search.runner import format_params
from search.runner import load_data
from search.study_file import DataSpec
from search.study_file import name_problem
from search.study_file import parse_study

if TYPE_CHECKING:
    import optuna

    from models.data import Dataset
    from search.study_file import StudySpec


def _short(x: float) -> float:
    return float(f"{x:.6g}")  # the precision trials store their accuracies with


def fit(kind: str, params: dict[str, Any], seed: int, data: Dataset, label: str,
        quiet: bool) -> tuple[Any, History]:  # fmt: skip
    """Train one configuration exactly as a trial would, with a progress bar over epochs."""
    from tqdm import tqdm

    model = MODELS[kind].build(params, seed)
    images = getattr(model, "wants_images", False)
    bar = tqdm(total=model.epochs, desc=label, unit="epoch", file=sys.stderr, disable=quiet,
               leave=False)  # fmt: skip

    def progress(epoch: int, history: History) -> None:
        bar.set_postfix_str(f"val acc {history.val_accuracy[-1]:.4f}", refresh=False)
        bar.update(1)

    try:
        history = train(model, *data.split("train", images), *data.split("val", images),
                        classes=data.classes, on_epoch=progress)  # fmt: skip
    finally:
        bar.close()
    return model, history


# -- retrain ---------------------------------------------------------------------------------


def _read_export(path: Path) -> dict[str, Any]:
    """The export file, checked as far as retraining depends on it."""
    try:
        doc = json.loads(path.read_text())
    except FileNotFoundError:
        raise UsageError(f"{path}: no such file; write one with `hpsearch export STUDY`") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise UsageError(f"{path}: not a JSON file ({e})") from None
    if not isinstance(doc, dict) or doc.get("schema_version") != SCHEMA_VERSION:
        got = doc.get("schema_version") if isinstance(doc, dict) else type(doc).__name__
        raise UsageError(
            f"{path}: schema_version: got {got!r}; allowed: {SCHEMA_VERSION} "
            "(a file written by `hpsearch export`)"
        )
    for key in ("data", "model_kind", "configs"):
        if key not in doc:
            raise UsageError(f"{path}: {key}: missing; export the study again")
    if doc["model_kind"] not in MODELS:
        raise UsageError(
            f"{path}: model_kind: unknown model {doc['model_kind']!r}; allowed: "
            f"{', '.join(MODELS)}"
        )
    if not isinstance(doc["configs"], list) or not doc["configs"]:
        raise UsageError(f"{path}: configs: must be a non-empty list")
    # Names from a file are data, never paths: the default output folder is built from them.
    problem = name_problem(doc.get("study"))
    if problem is not None:
        raise UsageError(f"{path}: study: {problem}")
    return doc


_SEED = Interval(0, 2**32 - 1, integer=True)  # NumPy and torch seeds: 32 bits
_TRIAL_NUMBER = Interval(0, None, integer=True)


def _check_config(path: Path, config: dict[str, Any], rank: int) -> None:
    key = f"configs[{rank - 1}]"
    for name in ("seed", "val_accuracy", "trial_number"):
        if name not in config:
            raise UsageError(f"{path}: {key}.{name}: missing; export again")
    for name, constraint in (("seed", _SEED), ("trial_number", _TRIAL_NUMBER)):
        problem = constraint.check(config[name])
        if problem is not None:
            raise UsageError(f"{path}: {key}.{name}: {problem}")


def _config_spec(doc: dict[str, Any], config: dict[str, Any], source: str) -> StudySpec:
    """Check the data settings and every parameter with the study-file validator."""
    data = doc["data"]
    fixed = config.get("params")
    if not isinstance(fixed, dict) or not isinstance(data, dict):
        raise UsageError(f"{source}: params and data must be JSON objects")
    # The study-file parser checks dataset, fractions, preprocessing and every argument against
    # the model's constraints; the one dummy search parameter only satisfies "at least one".
    dummy = next(iter(MODELS[doc["model_kind"]].arguments()))
    raw = {
        "study": {"name": "retrain", "n_trials": 1, "seed": data.get("seed", 0)},
        "data": {k: v for k, v in data.items() if k != "seed"},
        "model": {"kind": doc["model_kind"], "fixed": {k: v for k, v in fixed.items()
                                                        if k != dummy}},  # fmt: skip
        "params": {dummy: {"type": "categorical",
                           "choices": [fixed.get(dummy, _default(doc["model_kind"], dummy))]}},
    }  # fmt: skip
    return parse_study(raw, source)


def _default(kind: str, name: str) -> Any:
    import inspect

    return inspect.signature(MODELS[kind].load()).parameters[name].default


def retrain(path: Path, out: Path | None, rank: int, quiet: bool) -> int:
    doc = _read_export(path)
    configs = [c for c in doc["configs"] if isinstance(c, dict) and c.get("rank") == rank]
    if not configs:
        raise UsageError(
            f"{path}: --rank {rank}: no such configuration; the file has ranks "
            f"{', '.join(str(c.get('rank')) for c in doc['configs'])}"
        )
    config = configs[0]
    _check_config(path, config, rank)
    _config_spec(doc, config, f"{path}: configs[{rank - 1}]")
    data_spec = DataSpec(**{k: v for k, v in doc["data"].items() if k != "seed"})
    data = load_data(data_spec, doc["data"]["seed"], str(path))
    start = time.perf_counter()
    model, history = fit(doc["model_kind"], config["params"], config["seed"], data,
                         f"trial {config['trial_number']}", quiet)  # fmt: skip
    seconds = time.perf_counter() - start
    val = _short(history.kept_val_accuracy)
    reproduced = val == config["val_accuracy"]
    images = getattr(model, "wants_images", False)
    test_loss, test_accuracy = model.evaluate(*data.split("test", images))
    flag = "--out" if out else "the default folder"
    out = out or Path("retrained") / f"{doc['study']}-trial{config['trial_number']}"
    result = {**doc, "retrain": {
        "rank": rank, "val_accuracy": val, "test_accuracy": test_accuracy,
        "test_loss": test_loss, "n_test": int(len(data.y_test)), "reproduced": reproduced,
        "seconds": round(seconds, 3), "weights": "weights.npz",
    }}  # fmt: skip
    try:
        out.mkdir(parents=True, exist_ok=True)
        np.savez(out / "weights.npz", **model.get_weights())
        (out / path.name).write_text(json.dumps(result, indent=2) + "\n")
    except OSError as e:
        raise UsageError(
            f"{flag} {out}: cannot write the results: {e.strerror}; choose a folder you can "
            "write to with --out DIR (the test accuracy was "
            f"{test_accuracy:.4f})"
        ) from None
    verdict = "reproduced"
    if not reproduced:
        verdict = (f"differs from the study's {config['val_accuracy']:.6g} (bit-for-bit "
                   "reproduction holds for NumPy models and for Torch on the CPU)")  # fmt: skip
    print(
        f"retrained trial {config['trial_number']} of {doc.get('study')!r} "
        f"({doc['model_kind']}, {format_params(config['params'])}) in {seconds:.1f} s"
    )
    print(f"validation accuracy {val:.4f}: {verdict}")
    print(
        f"test accuracy {test_accuracy:.4f} on {len(data.y_test)} held-out samples "
        f"(evaluated once)"
    )
    print(f"wrote {out / 'weights.npz'} and {out / path.name}")
    return 0


# -- confirm ---------------------------------------------------------------------------------


def confirm_results(
    study: optuna.Study, spec: StudySpec, data: Dataset, top: int, repeats: int, quiet: bool
) -> list[dict[str, Any]]:
    """Retrain the `top` best configurations with `repeats` new seeds each; best mean first."""
    from optuna.trial import TrialState

    complete = sorted(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)),
                      key=lambda t: (-t.value, t.number))[:top]  # fmt: skip
    results = []
    for trial in complete:
        params = {**spec.model.fixed, **trial.params}
        seeds = [derive_seed(spec.seed, trial.number, 1 + r) for r in range(repeats)]
        accuracies = [_short(fit(spec.model.kind, params, s, data,
                                 f"trial {trial.number} seed {i + 1}/{repeats}",
                                 quiet)[1].kept_val_accuracy)
                      for i, s in enumerate(seeds)]  # fmt: skip
        values = np.array(accuracies)
        results.append({
            "trial": trial.number, "search_val_accuracy": trial.value, "params": params,
            "seeds": seeds, "val_accuracy": accuracies, "mean": float(values.mean()),
            "std": float(values.std(ddof=1)) if repeats > 1 else 0.0,
        })  # fmt: skip
    results.sort(key=lambda r: -r["mean"])
    return results


def confirm(study: optuna.Study, spec: StudySpec, top: int, repeats: int, quiet: bool) -> int:
    from search.cli import format_table

    data = load_data(spec.data, spec.seed, f"stored study {study.study_name!r}")
    if not any(t.state.name == "COMPLETE" for t in study.get_trials(deepcopy=False)):
        raise UsageError(f"study {study.study_name!r} has no complete trial yet; run it first")
    results = confirm_results(study, spec, data, top, repeats, quiet)
    study.set_user_attr(CONFIRM_ATTR, {"top": top, "repeats": repeats, "results": results,
                                       "at": time.strftime("%Y-%m-%dT%H:%M:%S%z")})  # fmt: skip
    rows = [[rank, r["trial"], f"{r['search_val_accuracy']:.4f}",
             f"{r['mean']:.4f} ± {r['std']:.4f}", f"{min(r['val_accuracy']):.4f}",
             f"{max(r['val_accuracy']):.4f}", format_params(r["params"])]
            for rank, r in enumerate(results, start=1)]  # fmt: skip
    print(
        f"study {study.study_name!r}: the top {len(results)} configurations, each trained "
        f"{repeats} times with new seeds; validation accuracy mean ± sample std"
    )
    print(format_table(["rank", "trial", "search", "mean ± std", "min", "max", "parameters"],
                       rows))  # fmt: skip
    print(f"stored with the study as user attr {CONFIRM_ATTR!r}")
    return 0
