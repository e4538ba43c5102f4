"""What a training process does (search/trial_process.py): each job is
`job(state, channel, *args)`, run there, its return value sent back to the worker.

`state` holds the dataset (inherited when the process was forked) and the model last trained,
which the later jobs of a trial (class weights, costs) and of `retrain` (save, test) use.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from typing import Any

from hpsearch.models import whereabouts
from hpsearch.models.usercode import Interrupted
from hpsearch.records import CURVES

if TYPE_CHECKING:
    from hpsearch.models.training import History
    from hpsearch.trial_child import Channel


@dataclass(frozen=True)
class EpochReport:
    """One epoch, as the training process reports it to the worker."""

    epoch: int
    values: dict[str, float]  # the last value of each curve (records.CURVES)
    train_metrics: str  # "batches" or "pass" (models.training.History)
    threads: int | None  # the CPU threads a Torch model chose


@dataclass(frozen=True)
class Trained:
    """A training's outcome: its history, or None when the worker pruned it."""

    history: History | None
    draws_class_weights: bool  # a linear model: its weights can be drawn as class images


class _Pruned(Exception):
    pass


def in_users_code(error: BaseException, entry: Any) -> str | None:
    """The error in one line with the user's file and line, when the traceback passes
    through the file of a user's class or network; None otherwise (the built-in kinds)."""
    from hpsearch.models.usercode import describe
    from hpsearch.models.usercode import location

    file = getattr(entry, "file", None)
    path = file() if callable(file) else None
    if path is None or location(error, path) is None:
        return None
    return describe(error, path)


def train_model(
    state: dict[str, Any], channel: Channel, kind: str, params: dict[str, Any], seed: int
) -> Trained:
    """Build the model of `kind` from `params` (fixed and sampled) and train it on the
    dataset, reporting every epoch; the worker's answer may prune or stop it."""
    from hpsearch.models import resolve
    from hpsearch.models.protocol import DrawsClassWeights
    from hpsearch.models.torch_training import TorchMissing
    from hpsearch.models.training import TrainingDiverged
    from hpsearch.models.training import train
    from hpsearch.models.usercode import UserCodeError

    data = state["data"]
    state["model"] = None
    entry = resolve(kind, params)
    try:
        whereabouts.set_file(entry.file() if entry.user_code else "")
        model = state["model"] = entry.build(params, seed)
        images = model.wants_images  # a CNN takes (N, C, H, W) views

        def on_epoch(epoch: int, history: History) -> None:
            values = {name: getattr(history, name)[-1] for name in CURVES}
            threads = getattr(model, "threads_", None)
            answer = channel.epoch(EpochReport(epoch, values, history.train_metrics, threads))
            if answer == "prune":
                raise _Pruned
            if answer == "stop":
                raise Interrupted

        history = train(
            model,
            *data.split("train", images),
            *data.split("val", images),
            classes=data.classes,
            on_epoch=on_epoch,
            guard=state["interrupts"].training,
        )
    except _Pruned:
        history = None
    except (TrainingDiverged, UserCodeError, TorchMissing, KeyboardInterrupt):
        raise
    except Exception as e:
        # A user's network can fail deep inside hpsearch's trainer (a custom autograd
        # function, a layer given the wrong input): the traceback passes through the user's
        # file. Anything else is hpsearch's own error.
        message = in_users_code(e, entry)
        if message is None:
            raise
        raise UserCodeError(message) from e
    return Trained(history, isinstance(state["model"], DrawsClassWeights))


def class_weight_images(state: dict[str, Any], channel: Channel, shape: tuple) -> Any:
    """The last model's weights of each class as an image (linear models)."""
    return state["model"].class_weight_images(shape)


def costs(state: dict[str, Any], channel: Channel, specs: Any, seconds: float) -> list[float]:
    """The last model's costs, measured on the validation split (multi-objective studies)."""
    from hpsearch.costs import measure_costs

    model = state["model"]
    X_val = state["data"].split("val", model.wants_images)[0]
    return measure_costs(specs, model, X_val, seconds)


def weights_name(state: dict[str, Any], channel: Channel) -> str:
    """The file name the last model's weights are saved under (weights.npz or model.pkl)."""
    from hpsearch.weight_files import weights_file

    return weights_file(state["model"])


def save(state: dict[str, Any], channel: Channel, path: Path) -> str | None:
    """Save the last model to `path`; the reason it could not be, or None."""
    from hpsearch.weight_files import save_model

    try:
        save_model(state["model"], path)
    except OSError as e:
        return e.strerror or str(e)
    return None


def evaluate(state: dict[str, Any], channel: Channel, split: str) -> tuple[float, float]:
    """(loss, accuracy) of the last model on a split of the dataset."""
    model = state["model"]
    return model.evaluate(*state["data"].split(split, model.wants_images))


def get_weights(state: dict[str, Any], channel: Channel) -> dict[str, Any]:
    return state["model"].get_weights()
