"""The objective: a trial's parameters, its model trained epoch by epoch, its reports.

The objective owns the trial (optuna's Trial.report pattern); the model trains in a training
process of the worker's (search/trial_process.py) and reports each epoch; models never import
optuna.
A trial's value is the validation accuracy of the weights it would export: the final ones, or
with early stopping (`patience`) those of the best epoch.
"""

from __future__ import annotations

import base64
import time
from typing import TYPE_CHECKING
from typing import Any

import numpy as np
import optuna
from optuna.trial import TrialState

from hpsearch import jobs
from hpsearch import optuna_internals as internals
from hpsearch import trial_process
from hpsearch.algorithms import make_pruner
from hpsearch.jobs import EpochReport
from hpsearch.models import is_user_code
from hpsearch.models.training import TrainingDiverged
from hpsearch.models.usercode import UserCodeError
from hpsearch.pareto import AccuracyView
from hpsearch.records import CLASS_WEIGHTS_ATTR
from hpsearch.records import CRASHED_ATTR
from hpsearch.records import CURVES
from hpsearch.records import CURVES_ATTR
from hpsearch.records import DIVERGED_ATTR
from hpsearch.records import FAIL_REASON_ATTR
from hpsearch.records import SECONDS_ATTR
from hpsearch.records import SEED_ATTR
from hpsearch.records import SURPLUS_ATTR
from hpsearch.records import THREADS_ATTR
from hpsearch.records import TIMED_OUT_ATTR
from hpsearch.records import TRAIN_METRICS_ATTR
from hpsearch.records import USER_ERROR_ATTR
from hpsearch.records import accuracy
from hpsearch.records import own_trials
from hpsearch.space import suggest
from hpsearch.trial_child import Interrupts
from hpsearch.trial_process import ProcessEnded
from hpsearch.worker import BudgetGuard
from hpsearch.worker import Surplus

if TYPE_CHECKING:
    from hpsearch.models.data import Dataset
    from hpsearch.spec import StudySpec
    from hpsearch.trial_process import Trainer


def derive_seed(*numbers: int) -> int:
    """A 32-bit seed that depends on every number given (NumPy's SeedSequence mixing)."""
    return int(np.random.SeedSequence(list(numbers)).generate_state(1)[0])


def trial_seed(study_seed: int, trial_number: int) -> int:
    """Every random choice inside a trial comes from this seed."""
    return derive_seed(study_seed, trial_number)


def _short(x: float) -> float:
    return float(f"{x:.6g}")  # six significant digits keep the stored curves small


class Objective:
    """Called by the worker loop (worker.py) with each trial: the model trains in the
    trainer's process (trial_process.py), reporting each epoch; the trial's records, the
    pruner and the storage stay here."""

    def __init__(
        self,
        spec: StudySpec,
        data: Dataset,
        trainer: Trainer,
        threads: int,
        interrupts: Interrupts | None = None,
        guard: BudgetGuard | None = None,
    ) -> None:
        self.spec = spec
        self.data = data
        self.trainer = trainer
        self.threads = threads  # what the trainer's models train on (the study's count)
        self.interrupts = interrupts or Interrupts()
        self.guard = guard  # with it, a trial beyond the budget fails as surplus (worker.py)
        self.ran = 0  # the trials this objective trained (surplus starts are not)
        # Optuna cannot prune a multi-objective study: hpsearch asks the pruner itself.
        self.pruner = make_pruner(spec) if spec.multi_objective else None

    def prepare(self) -> None:
        """Start the training process before the trial (and its heartbeat thread) does."""
        self.trainer.start()

    def __call__(self, trial: optuna.Trial) -> float | list[float]:
        # Over 60 lines: a trial's whole life in one place, each failure recorded by the except
        # clause around exactly the training it comes from.
        spec = self.spec
        if self.guard is not None:
            try:
                self.guard.check(trial)
            except Surplus as e:
                trial.set_user_attr(SURPLUS_ATTR, True)
                trial.set_user_attr(FAIL_REASON_ATTR, str(e))
                raise
        self.ran += 1
        params = suggest(trial, spec.params)
        seed = self._seed(trial)
        curves: dict[str, list[float]] = {name: [] for name in CURVES}
        pruned_at: list[str] = []
        at_end: dict[str, Any] = {}  # written with the curves, in one transaction

        def on_epoch(report: EpochReport) -> str:
            if report.epoch == 0:
                at_end[TRAIN_METRICS_ATTR] = report.train_metrics
                if report.threads is not None:  # what a Torch model chose
                    at_end[THREADS_ATTR] = report.threads
            # The rounded numbers are the truth everywhere: curves, reports and the value.
            for name in CURVES:
                curves[name].append(_short(report.values[name]))
            if self.interrupts.signal is not None:
                return "stop"
            if self._should_prune(trial, curves["val_accuracy"], report.epoch):
                now = curves["val_accuracy"][-1]
                pruned_at.append(f"validation accuracy {now:.4f} after epoch {report.epoch}")
                return "prune"
            return "go"

        storage, trial_id = internals.storage_of(trial.study), internals.trial_id(trial)
        after_epoch = None
        if hasattr(storage, "reports_wait"):  # each report sent while the next epoch trains
            storage.reports_wait(trial_id)
            after_epoch = lambda: storage.send_waiting(trial_id)  # noqa: E731 (one call)
        start = time.perf_counter()
        try:
            self.interrupts.check()
            trained = self.trainer.call(
                jobs.train_model,
                spec.model.kind,
                {**spec.model.fixed, **params},
                seed,
                on_epoch=on_epoch,
                timeout=spec.trial_timeout,
                after_epoch=after_epoch,
            )
            if trained.history is None:
                raise optuna.TrialPruned(pruned_at[-1])
            # The weights kept: the final ones, or the best epoch's with early stopping.
            value = curves["val_accuracy"][trained.history.kept_epoch]
            if trained.draws_class_weights:
                self._record_class_weights(trial, value)
            if not spec.multi_objective:
                return value
            seconds = time.perf_counter() - start
            return [value, *self.trainer.call(jobs.costs, spec.costs, seconds)]
        except TrainingDiverged as e:
            trial.set_user_attr(FAIL_REASON_ATTR, f"diverged: {e}")
            trial.set_user_attr(DIVERGED_ATTR, True)
            raise
        except UserCodeError as e:
            self._user_error(trial, str(e))
            raise
        except ProcessEnded as e:
            self._ended(trial, e)
            raise
        except KeyboardInterrupt:
            trial.set_user_attr(FAIL_REASON_ATTR, "interrupted")
            raise
        finally:
            self._record(trial, curves, time.perf_counter() - start, at_end)

    def _ended(self, trial: optuna.Trial, ended: ProcessEnded) -> None:
        """The training process ended or ran past trial_timeout: the trial fails, counts
        toward the budget (the same configuration would end the same way, so it is not
        re-queued) and says how and where."""
        kind = self.spec.model.kind
        where = trial_process.where(ended, kind)
        if ended.timeout is not None:
            trial.set_user_attr(
                FAIL_REASON_ATTR,
                f"timeout: took longer than {ended.timeout:g} s (trial_timeout) in {where}",
            )
            trial.set_user_attr(TIMED_OUT_ATTR, True)
        elif is_user_code(kind):
            self._user_error(trial, f"{ended.how} in {where}")
        else:
            trial.set_user_attr(FAIL_REASON_ATTR, f"crashed: training {ended.how} in {where}")
            trial.set_user_attr(CRASHED_ATTR, True)

    def _seed(self, trial: optuna.Trial) -> int:
        """The trial's seed, stored with it (and the threads it trains on). A trial retried
        after its worker died inherits the dead trial's user attrs, seed included: it is the
        same trial again, with the same parameters and seed."""
        # (1 thread where the training process had to be forked after Torch ran in this one)
        attrs = {THREADS_ATTR: 1 if self.trainer.one_thread else self.threads}
        if SEED_ATTR in trial.user_attrs:
            seed = trial.user_attrs[SEED_ATTR]
        else:
            seed = attrs[SEED_ATTR] = trial_seed(self.spec.seed, trial.number)
        set_user_attrs(trial, attrs)
        return seed

    @staticmethod
    def _user_error(trial: optuna.Trial, message: str) -> None:
        """The user's code failed: the trial fails, counts toward the budget (as a diverged
        trial does: another run would fail the same way) and says where."""
        trial.set_user_attr(FAIL_REASON_ATTR, f"your code: {message}")
        trial.set_user_attr(USER_ERROR_ATTR, True)

    def _should_prune(self, trial: optuna.Trial, val_accuracy: list[float], epoch: int) -> bool:
        """Report the epoch's validation accuracy and ask the pruner. In a multi-objective
        study (where Trial.report raises) the study's pruner is asked by hpsearch, on the
        validation accuracy alone (search/pareto.py)."""
        if self.pruner is None:
            trial.report(val_accuracy[-1], step=epoch)
            return trial.should_prune()
        view = AccuracyView(trial.study)
        now = view.with_curve(
            internals.storage_of(trial.study).get_trial(internals.trial_id(trial)), val_accuracy
        )
        return self.pruner.prune(view, now)

    def _record_class_weights(self, trial: optuna.Trial, value: float) -> None:
        """For linear models, each class's weights as an image, when the trial beats the best.

        Stored as uint8 (each class scaled to 0-255 on its own): the report draws them from the
        database alone, and only new bests are kept, so a study stores a handful of them.
        """
        completed = own_trials(
            trial.study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        )
        if completed and value <= max(accuracy(t) for t in completed):
            return
        images = self.trainer.call(jobs.class_weight_images, self.data.image_shape)
        images = images.astype(np.float64)
        flat = images.reshape(len(images), -1)
        low, high = flat.min(axis=1, keepdims=True), flat.max(axis=1, keepdims=True)
        scaled = np.round(255 * (flat - low) / np.maximum(high - low, 1e-12)).astype(np.uint8)
        trial.set_user_attr(
            CLASS_WEIGHTS_ATTR,
            {
                "shape": list(images.shape),
                "classes": [str(c) for c in self.data.classes],
                "uint8_base64": base64.b64encode(scaled.tobytes()).decode("ascii"),
            },
        )

    @staticmethod
    def _record(
        trial: optuna.Trial, curves: dict[str, Any], seconds: float, more: dict[str, Any]
    ) -> None:
        # (sent with the tell that follows, in its transaction)
        attrs = {**more, CURVES_ATTR: curves, SECONDS_ATTR: round(seconds, 4)}
        set_user_attrs(trial, attrs, send=False)


def set_user_attrs(trial: optuna.Trial, attrs: dict[str, Any], send: bool = True) -> None:
    """Several user attrs of a running trial in one transaction: a trial's cost in database
    round trips must not grow with what it records (issue 32). Not `send`: with the trial's
    next transaction (search/own_trial.py)."""
    storage = internals.storage_of(trial.study)
    if not hasattr(storage, "set_trial_user_attrs"):  # a storage without hpsearch's wrapper
        for key, value in attrs.items():
            trial.set_user_attr(key, value)
        return
    storage.set_trial_user_attrs(internals.trial_id(trial), attrs, send=send)
