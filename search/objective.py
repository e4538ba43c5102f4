"""The objective: build a model from a trial's parameters, train it epoch by epoch, report.

The objective owns the epoch loop (optuna's Trial.report pattern); models never import optuna.
A trial's value is the validation accuracy of the weights it would export: the final ones, or
with early stopping (`patience`) those of the best epoch.
"""

from __future__ import annotations

import base64
import contextlib
import signal
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING
from typing import Any

import numpy as np
import optuna
from optuna.trial import TrialState

from hpsearch import optuna_internals as internals
from hpsearch.algorithms import make_pruner
from hpsearch.costs import measure_costs
from hpsearch.models import resolve
from hpsearch.models.protocol import Classifier
from hpsearch.models.protocol import DrawsClassWeights
from hpsearch.models.threads import training_threads
from hpsearch.models.training import History
from hpsearch.models.training import TrainingDiverged
from hpsearch.models.training import train
from hpsearch.models.usercode import Interrupted
from hpsearch.models.usercode import UserCodeError
from hpsearch.pareto import AccuracyView
from hpsearch.records import CLASS_WEIGHTS_ATTR
from hpsearch.records import CURVES
from hpsearch.records import CURVES_ATTR
from hpsearch.records import DIVERGED_ATTR
from hpsearch.records import FAIL_REASON_ATTR
from hpsearch.records import SECONDS_ATTR
from hpsearch.records import SEED_ATTR
from hpsearch.records import SURPLUS_ATTR
from hpsearch.records import THREADS_ATTR
from hpsearch.records import TRAIN_METRICS_ATTR
from hpsearch.records import USER_ERROR_ATTR
from hpsearch.records import accuracy
from hpsearch.records import own_trials
from hpsearch.space import suggest
from hpsearch.worker import BudgetGuard
from hpsearch.worker import Surplus

if TYPE_CHECKING:
    from hpsearch.models.data import Dataset
    from hpsearch.spec import StudySpec


def derive_seed(*numbers: int) -> int:
    """A 32-bit seed that depends on every number given (NumPy's SeedSequence mixing)."""
    return int(np.random.SeedSequence(list(numbers)).generate_state(1)[0])


def trial_seed(study_seed: int, trial_number: int) -> int:
    """Every random choice inside a trial comes from this seed."""
    return derive_seed(study_seed, trial_number)


class Interrupts:
    """Ctrl-C and SIGTERM stop the study cleanly, and only inside training code.

    An interrupt that lands inside Optuna's storage calls can leave a trial RUNNING forever.
    The handler therefore raises KeyboardInterrupt at once only while the objective is in
    `training()`; otherwise it records the signal and the objective raises at its next
    `check()`. Either way Optuna marks the running trial FAIL. A second signal always raises.
    """

    def __init__(self) -> None:
        self.signal: int | None = None
        self._interruptible = False

    def _handler(self, signum: int, frame: Any) -> None:
        first = self.signal is None
        self.signal = signum
        if self._interruptible or not first:
            raise Interrupted

    def check(self) -> None:
        if self.signal is not None:
            raise Interrupted

    @contextlib.contextmanager
    def installed(self) -> Iterator[None]:
        previous = {s: signal.signal(s, self._handler) for s in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield
        finally:
            for s, handler in previous.items():
                signal.signal(s, handler)

    @contextlib.contextmanager
    def training(self) -> Iterator[None]:
        self.check()
        self._interruptible = True
        try:
            yield
        finally:
            self._interruptible = False


def _in_users_code(error: BaseException, entry: Any) -> str | None:
    """The error in one line with the user's file and line, when the traceback passes
    through the file of a user's class or network; None otherwise (the built-in kinds)."""
    from hpsearch.models.usercode import describe
    from hpsearch.models.usercode import location

    file = getattr(entry, "file", None)
    path = file() if callable(file) else None
    if path is None or location(error, path) is None:
        return None
    return describe(error, path)


def _short(x: float) -> float:
    return float(f"{x:.6g}")  # six significant digits keep the stored curves small


class Objective:
    """Called by the worker loop (worker.py) with each trial: one model, one report per epoch."""

    def __init__(
        self,
        spec: StudySpec,
        data: Dataset,
        interrupts: Interrupts | None = None,
        guard: BudgetGuard | None = None,
    ) -> None:
        self.spec = spec
        self.data = data
        self.interrupts = interrupts or Interrupts()
        self.guard = guard  # with it, a trial beyond the budget fails as surplus (worker.py)
        # Optuna cannot prune a multi-objective study: hpsearch asks the pruner itself.
        self.pruner = make_pruner(spec) if spec.multi_objective else None

    def __call__(self, trial: optuna.Trial) -> float | list[float]:
        # Over 60 lines: a trial's whole life in one place, each failure recorded by the except
        # clause around exactly the training it comes from.
        spec, data = self.spec, self.data
        if self.guard is not None:
            try:
                self.guard.check(trial)
            except Surplus as e:
                trial.set_user_attr(SURPLUS_ATTR, True)
                trial.set_user_attr(FAIL_REASON_ATTR, str(e))
                raise
        params = suggest(trial, spec.params)
        seed = self._seed(trial)
        entry = resolve(spec.model.kind, dict(spec.model.fixed))
        curves: dict[str, list[float]] = {name: [] for name in CURVES}

        def report(epoch: int, history: History) -> None:
            if epoch == 0:
                trial.set_user_attr(TRAIN_METRICS_ATTR, history.train_metrics)
                if hasattr(model, "threads_"):  # what a Torch model chose
                    trial.set_user_attr(THREADS_ATTR, model.threads_)
            # The rounded numbers are the truth everywhere: curves, reports and the value.
            for name in CURVES:
                curves[name].append(_short(getattr(history, name)[-1]))
            self.interrupts.check()
            if self._should_prune(trial, curves["val_accuracy"], epoch):
                raise optuna.TrialPruned(
                    f"validation accuracy {curves['val_accuracy'][-1]:.4f} after epoch {epoch}"
                )

        start = time.perf_counter()
        try:
            model = entry.build({**spec.model.fixed, **params}, seed)
            images = model.wants_images  # a CNN takes (N, C, H, W) views
            history = train(
                model,
                *data.split("train", images),
                *data.split("val", images),
                classes=data.classes,
                on_epoch=report,
                guard=self.interrupts.training,
            )
            # The weights kept: the final ones, or the best epoch's with early stopping.
            value = curves["val_accuracy"][history.kept_epoch]
            self._record_class_weights(trial, model, value)
            if not spec.multi_objective:
                return value
            X_val = data.split("val", images)[0]
            costs = measure_costs(spec.costs, model, X_val, time.perf_counter() - start)
            return [value, *costs]
        except TrainingDiverged as e:
            trial.set_user_attr(FAIL_REASON_ATTR, f"diverged: {e}")
            trial.set_user_attr(DIVERGED_ATTR, True)
            raise
        except UserCodeError as e:
            self._user_error(trial, str(e))
            raise
        except KeyboardInterrupt:
            trial.set_user_attr(FAIL_REASON_ATTR, "interrupted")
            raise
        except Exception as e:
            # A user's network can fail deep inside hpsearch's trainer (a custom autograd
            # function, a layer given the wrong input): the traceback passes through the
            # user's file. Anything else is hpsearch's own error.
            message = _in_users_code(e, entry)
            if message is None:
                raise
            self._user_error(trial, message)
            raise UserCodeError(message) from e
        finally:
            self._record(trial, curves, time.perf_counter() - start)

    def _seed(self, trial: optuna.Trial) -> int:
        """The trial's seed, stored with it (and the threads it trains on). A trial retried
        after its worker died inherits the dead trial's user attrs, seed included: it is the
        same trial again, with the same parameters and seed."""
        if SEED_ATTR in trial.user_attrs:
            seed = trial.user_attrs[SEED_ATTR]
        else:
            seed = trial_seed(self.spec.seed, trial.number)
            trial.set_user_attr(SEED_ATTR, seed)
        trial.set_user_attr(THREADS_ATTR, training_threads())
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

    def _record_class_weights(self, trial: optuna.Trial, model: Classifier, value: float) -> None:
        """For linear models, each class's weights as an image, when the trial beats the best.

        Stored as uint8 (each class scaled to 0-255 on its own): the report draws them from the
        database alone, and only new bests are kept, so a study stores a handful of them.
        """
        if not isinstance(model, DrawsClassWeights):
            return
        completed = own_trials(
            trial.study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        )
        if completed and value <= max(accuracy(t) for t in completed):
            return
        images = model.class_weight_images(self.data.image_shape).astype(np.float64)
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
    def _record(trial: optuna.Trial, curves: dict[str, Any], seconds: float) -> None:
        trial.set_user_attr(CURVES_ATTR, curves)
        trial.set_user_attr(SECONDS_ATTR, round(seconds, 4))
