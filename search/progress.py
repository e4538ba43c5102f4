"""The progress bar of `run` and `worker`: one tqdm bar over a study's finished trials."""

from __future__ import annotations

import sys
import time
from typing import TYPE_CHECKING

from hpsearch.records import DIVERGED_ATTR
from hpsearch.records import ENDED_ATTRS
from hpsearch.records import USER_ERROR_ATTR
from hpsearch.records import accuracy
from hpsearch.records import finished_count
from hpsearch.records import own_trials

if TYPE_CHECKING:
    import optuna


READ_EVERY_S = 1.0


class Progress:
    """One tqdm bar over the study's finished trials (whoever ran them), with the best value,
    and a line for each trial that failed by the user's code, by diverging, by a crash of its
    training process or by running past trial_timeout.

    A worker process of `run --workers` tells its failures (the parent's terminal shows them)
    but draws no bar: the parent draws the study's one bar.
    """

    def __init__(self, study: optuna.Study, total: int, bar: bool, failures: bool) -> None:
        from tqdm import tqdm

        self.failures = failures
        self.study = study
        self.read_at = time.monotonic()
        trials = study.get_trials(deepcopy=False)
        self.bar = tqdm(
            total=total,
            initial=min(finished_count(trials), total),
            desc=study.study_name,
            unit="trial",
            file=sys.stderr,
            disable=not bar,
            dynamic_ncols=True,
        )
        self.refresh(trials)

    def refresh(self, trials: list[optuna.trial.FrozenTrial]) -> None:
        complete = [accuracy(t) for t in own_trials(trials) if t.state.name == "COMPLETE"]
        if complete:
            self.bar.set_postfix_str(f"best val acc {max(complete):.4f}", refresh=False)
        self.bar.n = min(finished_count(trials), self.bar.total)
        self.bar.refresh()

    def __call__(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        attrs = trial.user_attrs
        told = any(attrs.get(name) for name in (DIVERGED_ATTR, USER_ERROR_ATTR, *ENDED_ATTRS))
        if trial.state.name == "FAIL" and told and self.failures:
            self.write(f"trial {trial.number} failed: {trial.user_attrs['fail_reason']}")
        # The study's trials (every worker's) are read at most once a second, and only for a
        # bar that is drawn: a read per trial is a query per trial on a shared database.
        if not self.bar.disable and time.monotonic() - self.read_at >= READ_EVERY_S:
            self.read_at = time.monotonic()
            self.refresh(study.get_trials(deepcopy=False))

    def write(self, message: str) -> None:
        self.bar.write(message, file=sys.stderr)

    def close(self) -> None:
        if not self.bar.disable:
            self.refresh(self.study.get_trials(deepcopy=False))
        self.bar.close()
