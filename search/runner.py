"""`hpsearch run`: create or resume a study and run trials until its budget is finished."""

from __future__ import annotations

import sys
import time
from typing import TYPE_CHECKING
from typing import Any
from typing import TextIO

from search.errors import UsageError
from search.objective import Interrupts
from search.objective import Objective
from search.objective import derive_seed
from search.records import SPEC_ATTR
from search.records import VERSION_ATTR
from search.records import counts_toward_budget
from search.records import finished_count
from search.records import state_counts
from search.records import stored_spec
from search.space import make_pruner
from search.space import make_sampler
from search.storage import StorageURL
from search.storage import open_storage

if TYPE_CHECKING:
    import optuna

    from models.data import Dataset
    from search.study_file import DataSpec
    from search.study_file import StudySpec


def format_params(params: dict[str, Any]) -> str:
    return ", ".join(
        f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in params.items()
    )


def _difference(stored: Any, new: Any) -> str:
    """A short description of how two identity entries differ."""
    if isinstance(stored, dict) and isinstance(new, dict):
        changed = [k for k in {**stored, **new} if stored.get(k) != new.get(k)]
        return "differs in " + ", ".join(changed)
    return f"stored {stored!r}, now {new!r}"


def create_or_resume(
    spec: StudySpec, storage: optuna.storages.BaseStorage, target: StorageURL
) -> optuna.Study:
    """Create the study, or load it when the name exists and was made from the same search.

    The sampler is seeded from the study seed and the number of trials already there, so a
    resumed study does not replay the random start-up trials of its first run.
    """
    import optuna

    n_existing = 0
    if spec.name in optuna.get_all_study_names(storage=storage):
        existing = optuna.load_study(study_name=spec.name, storage=storage)
        stored = stored_spec(existing, target.url)
        for key, value in spec.identity().items():
            if stored.identity()[key] != value:
                raise UsageError(
                    f"{spec.source}: {key}: {_difference(stored.identity()[key], value)} from "
                    f"the stored study {spec.name!r} in {target.url}; give the study a new "
                    f"[study].name, or delete the old one: optuna delete-study --study-name "
                    f"{spec.name} --storage {target.url}"
                )
        n_existing = len(existing.get_trials(deepcopy=False))
    sampler = make_sampler(spec, seed=derive_seed(spec.seed, n_existing))
    study = optuna.create_study(
        storage=storage,
        study_name=spec.name,
        direction=spec.direction,
        sampler=sampler,
        pruner=make_pruner(spec),
        load_if_exists=True,
    )
    if SPEC_ATTR not in study.user_attrs:
        from search import __version__

        study.set_user_attr(SPEC_ATTR, spec.to_dict())
        study.set_user_attr(VERSION_ATTR, __version__)
    return study


def summary_lines(study: optuna.Study, budget: int) -> list[str]:
    trials = study.get_trials(deepcopy=False)
    counts = state_counts(trials)
    lines = [
        f"study {study.study_name!r}: {finished_count(trials)} of {budget} trials finished "
        f"({counts['COMPLETE']} complete, {counts['PRUNED']} pruned, {counts['FAIL']} failed)"
    ]
    if counts["COMPLETE"]:
        best = study.best_trial
        lines.append(
            f"best validation accuracy {best.value:.4f} (trial {best.number}): "
            f"{format_params(best.params)}"
        )
    return lines


class _Progress:
    """One tqdm bar over the study's finished trials, with the best value so far."""

    def __init__(self, study: optuna.Study, total: int, initial: int, quiet: bool) -> None:
        from tqdm import tqdm

        self.quiet = quiet
        self.bar = tqdm(
            total=total,
            initial=initial,
            desc=study.study_name,
            unit="trial",
            file=sys.stderr,
            disable=quiet,
            dynamic_ncols=True,
        )
        self._best: float | None = None
        if any(t.state.name == "COMPLETE" for t in study.get_trials(deepcopy=False)):
            self._show_best(study.best_value)

    def _show_best(self, value: float) -> None:
        self._best = value
        self.bar.set_postfix_str(f"best val acc {value:.4f}", refresh=False)

    def __call__(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        if trial.state.name == "COMPLETE" and (self._best is None or trial.value > self._best):
            self._show_best(trial.value)
        reason = trial.user_attrs.get("fail_reason")
        if trial.state.name == "FAIL" and reason and not self.quiet:
            self.bar.write(f"trial {trial.number} failed: {reason}")
        if counts_toward_budget(trial):
            self.bar.update(1)

    def close(self) -> None:
        self.bar.close()


def load_data(data: DataSpec, seed: int, source: str) -> Dataset:
    """A study's dataset; a missing or malformed file is the user's to fix (exit 2)."""
    from models.data import DataError
    from models.data import load_dataset

    try:
        return load_dataset(
            data.dataset,
            val_fraction=data.val_fraction,
            test_fraction=data.test_fraction,
            preprocess=data.preprocess,
            seed=seed,
        )
    except DataError as e:
        raise UsageError(f"{source}: [data].dataset: {e}") from None


def run_study(
    spec: StudySpec,
    target: StorageURL,
    *,
    n_trials: int | None = None,
    timeout: float | None = None,
    quiet: bool = False,
    out: TextIO | None = None,
) -> int:
    """Run trials until the study has `n_trials` finished ones; returns the exit code."""
    import optuna

    out = out or sys.stdout

    from models.torch_models import TorchMissing
    from models.training import TrainingDiverged

    optuna.logging.set_verbosity(optuna.logging.ERROR)  # hpsearch reports trials itself
    data = load_data(
        spec.data, spec.seed, spec.source
    )  # before storage: a bad data file must not leave a study behind
    storage = open_storage(target, create=True)
    study = create_or_resume(spec, storage, target)
    budget = n_trials or spec.n_trials
    done = finished_count(study.get_trials(deepcopy=False))
    if done >= budget:
        print(
            f"study {spec.name!r} already has {done} finished trials (budget {budget}); "
            "nothing to run",
            file=out,
        )
        print("\n".join(summary_lines(study, budget)), file=out)
        return 0
    interrupts = Interrupts()
    progress = _Progress(study, budget, done, quiet)

    def stop_when_asked(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        if interrupts.signal is not None:
            study.stop()

    start = time.monotonic()
    try:
        with interrupts.installed():
            study.optimize(
                Objective(spec, data, interrupts),
                n_trials=budget - done,
                timeout=timeout if timeout is not None else spec.timeout,
                catch=(TrainingDiverged,),
                callbacks=[progress, stop_when_asked],
            )
    except TorchMissing as e:
        raise UsageError(f"{spec.source}: [model].kind: {e}") from None
    except KeyboardInterrupt:
        if interrupts.signal is None:  # Ctrl-C before the handler was installed
            interrupts.signal = 2
    finally:
        progress.close()
    seconds = time.monotonic() - start
    print("\n".join(summary_lines(study, budget)), file=out)
    if interrupts.signal is not None:
        print(
            f"interrupted after {seconds:.1f} s; the running trial was marked failed, "
            "finished trials are kept; run the same command again to resume",
            file=out,
        )
        return 128 + interrupts.signal
    print(
        f"this run took {seconds:.1f} s; results are in {target.url} (study {spec.name!r}); "
        f"see `hpsearch show {spec.name}` or `optuna-dashboard {target.url}`",
        file=out,
    )
    return 0
