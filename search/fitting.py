"""Training one configuration exactly as a trial would, outside a study: for `confirm` and
`retrain`, with a progress bar over epochs."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING
from typing import Any

from hpsearch.models import Classifier
from hpsearch.models import resolve
from hpsearch.models.threads import THREADS_ENV
from hpsearch.models.training import History
from hpsearch.models.training import train

if TYPE_CHECKING:
    from hpsearch.models.data import Dataset


def short(x: float) -> float:
    return float(f"{x:.6g}")  # the precision trials store their accuracies with


@contextmanager
def _torch_threads(threads: int | None) -> Iterator[None]:
    """Torch trains on `threads` CPU threads inside (None: as configured)."""
    if threads is None:
        yield
        return
    before = os.environ.get(THREADS_ENV)
    os.environ[THREADS_ENV] = str(threads)
    try:
        yield
    finally:
        if before is None:
            del os.environ[THREADS_ENV]
        else:
            os.environ[THREADS_ENV] = before


def fit(
    kind: str,
    params: dict[str, Any],
    seed: int,
    data: Dataset,
    label: str,
    progress: bool,
    threads: int | None = None,
) -> tuple[Classifier, History]:
    """Train one configuration exactly as a trial would, with a progress bar over epochs;
    Torch models on `threads` CPU threads when given (the trial's: their sums depend on it)."""
    from tqdm import tqdm

    model = resolve(kind, params).build(params, seed)
    images = model.wants_images
    bar = tqdm(
        total=model.epochs,
        desc=label,
        unit="epoch",
        file=sys.stderr,
        disable=not progress,
        leave=False,
    )

    def progress(epoch: int, history: History) -> None:
        bar.set_postfix_str(f"val acc {history.val_accuracy[-1]:.4f}", refresh=False)
        bar.update(1)

    try:
        with _torch_threads(threads):
            history = train(
                model,
                *data.split("train", images),
                *data.split("val", images),
                classes=data.classes,
                on_epoch=progress,
            )
    finally:
        bar.close()
    return model, history
