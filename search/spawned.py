"""A worker process of `run --workers` (search/pool.py): `python -P -m hpsearch.spawned`.

Its task (`WorkerTask`) and the storage URL come in its environment. It joins the stored study
and runs trials until the budget is finished, stopping cleanly once its parent is gone; its
exit code says how it ended (search/exits.py).
"""

from __future__ import annotations

import os
import sys

from hpsearch.exits import guarded
from hpsearch.pool import WorkerTask


def main() -> int:
    from hpsearch.runner import join_study
    from hpsearch.storage import resolve_url
    from hpsearch.worker import watch_parent

    task = WorkerTask.from_env(dict(os.environ))
    watch_parent(task.parent)
    if task.folder not in sys.path:  # a user's module beside the study still imports by name
        sys.path.append(task.folder)

    def work() -> int:
        outcome = join_study(
            task.study,
            resolve_url(None),
            n_trials=task.budget,
            timeout=task.timeout,
            bar=False,
            failures=task.progress,
            trial_timeout=task.trial_timeout,
            hint=False,  # the parent says it, once
        )
        return outcome.exit_code

    return guarded(work, debug=task.debug)


if __name__ == "__main__":
    sys.exit(main())
