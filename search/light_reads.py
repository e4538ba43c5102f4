"""A worker's read of its study's trials, with the trials in flight by their state alone.

Every worker reads the study's trials before each trial (the budget, the sampler). Optuna's
cached storage reads each finished trial once, but every trial still in flight whole, with its
parameters, attributes and reports, at every read: with K workers a read builds about K trials
that nobody looks into, and a worker's CPU per trial grew with K (issue 32). TPE, random and
QMC sampling, and the Wilcoxon, curve, median and percentile pruners look only into finished
trials, and hpsearch's own loop only counts the others by state; for a study with those
(search/algorithms.py: `reads_finished_only`), a worker reads:

- one light query for the trials after the last one it knows to be finished with everything
  before it: id, number, state and start of each;
- the trials among them that finished since its last read, whole, once;

and returns the finished trials it holds, with the trials in flight as stubs (their state,
number and start; no parameters, attributes or reports). A stub's contents are read when the
trial finishes. Trial ids grow in the order trials are created (Optuna locks the study's row
to number them), so "every trial up to this id is finished" stays true.
"""

from __future__ import annotations

import datetime
from typing import Any

from hpsearch.optuna_internals import bare_trial
from hpsearch.optuna_internals import finished_trials
from hpsearch.optuna_internals import trial_id as id_of
from hpsearch.optuna_internals import trial_table


class LightReads:
    """What one worker holds of each study's finished trials."""

    def __init__(self) -> None:
        self.finished: dict[int, dict[int, Any]] = {}  # study id -> trial id -> FrozenTrial
        self.known_up_to: dict[int, int] = {}  # study id -> every trial id up to it finished

    def read(self, rdb: Any, study_id: int) -> list[Any]:
        import sqlalchemy

        finished = self.finished.setdefault(study_id, {})
        after = self.known_up_to.get(study_id, -1)
        table = trial_table().__table__
        query = (
            sqlalchemy.select(
                table.c.trial_id, table.c.number, table.c.state, table.c.datetime_start
            )
            .where(table.c.study_id == study_id, table.c.trial_id > after)
            .order_by(table.c.trial_id)
        )
        # One transaction: the light query opens it on the thread's session of Optuna's, and
        # Optuna's read of the newly finished trials, on that same session, ends it.
        session = rdb.scoped_session()
        try:
            rows = session.execute(query).all()
            new = [row[0] for row in rows if row[2].is_finished() and row[0] not in finished]
            if new:
                for trial in finished_trials(rdb, study_id, new):
                    finished[id_of(trial)] = trial
            else:
                session.commit()
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()
        for row in rows:
            if row[0] not in finished:
                break
            after = row[0]
        self.known_up_to[study_id] = after
        stubs = [_stub(*row) for row in rows if row[0] not in finished]
        return sorted([*finished.values(), *stubs], key=lambda t: t.number)


def _stub(trial_id: int, number: int, state: Any, start_utc: Any) -> Any:
    """A trial in flight: its state, number and start (in local time, as Optuna gives it)."""
    start = None
    if start_utc is not None:
        start = start_utc.replace(tzinfo=datetime.UTC).astimezone().replace(tzinfo=None)
    return bare_trial(trial_id, number, state, start)
