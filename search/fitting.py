"""Training one configuration exactly as a trial would, outside a study: for `confirm` and
`retrain`, in a training process of its own (search/trial_process.py), with a progress bar
over epochs."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING
from typing import Any

if TYPE_CHECKING:
    from hpsearch.models.data import Dataset
    from hpsearch.models.training import History
    from hpsearch.trial_process import Trainer


def short(x: float) -> float:
    return float(f"{x:.6g}")  # the precision trials store their accuracies with


@contextmanager
def fitted(
    kind: str,
    params: dict[str, Any],
    seed: int,
    data: Dataset,
    label: str,
    progress: bool,
    threads: int | None = None,
) -> Iterator[tuple[Trainer, History]]:
    """Train one configuration exactly as a trial would, with a progress bar over epochs, on
    `threads` CPU threads (the trial's: the sums of BLAS and Torch depend on the count).

    Yields the training process, whose model is the one trained
    (search/jobs.py: save, evaluate, get_weights), and the history. A training process that
    ends raises TrainingEnded: one line naming how and where.
    """
    from tqdm import tqdm

    from hpsearch import jobs
    from hpsearch.errors import TrainingEnded
    from hpsearch.models import is_user_code
    from hpsearch.trial_process import ProcessEnded
    from hpsearch.trial_process import Trainer
    from hpsearch.trial_process import where

    bar = tqdm(desc=label, unit="epoch", file=sys.stderr, disable=not progress, leave=False)

    def on_epoch(report: jobs.EpochReport) -> str:
        bar.set_postfix_str(f"val acc {report.values['val_accuracy']:.4f}", refresh=False)
        bar.update(1)
        return "go"

    state = {"data": data, "threads": threads}
    with Trainer(state, kind) as trainer:
        try:
            try:
                trained = trainer.call(jobs.train_model, kind, params, seed, on_epoch=on_epoch)
            finally:
                bar.close()
            yield trainer, trained.history
        except ProcessEnded as e:
            who = "your code" if is_user_code(kind) else "training"
            raise TrainingEnded(
                f"{who} {e.how} in {where(e, kind)} ({label}); nothing was written"
            ) from None
