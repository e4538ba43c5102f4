"""The budget counted in the transaction that creates a trial's row: no surplus rows.

A worker counts the trials ahead of a new one before asking for it (search/worker.py,
BudgetGuard): those that use up the budget (records.counts_toward_budget) and those in flight.
Counted from a read made before the row is created, several workers at the end of a study can
each find a place left and each create a row; all but one are then surplus (11 of 64 workers
in benchmarks/scale.py). Counted in SQL inside the transaction that creates the row, under the
lock Optuna takes on the study's row for every new trial, exactly as many get a place as there
are places.
"""

from __future__ import annotations

from typing import Any

from hpsearch.optuna_internals import trial_table
from hpsearch.optuna_internals import user_attr_table
from hpsearch.records import DIVERGED_ATTR
from hpsearch.records import ENDED_ATTRS
from hpsearch.records import USER_ERROR_ATTR
from hpsearch.records import WARM_ATTR


class BudgetFull(Exception):
    """No row was created: the trials ahead already fill the budget."""


def trials_ahead(session: Any, study_id: int) -> int:
    """The study's trials as BudgetGuard counts them: complete and pruned ones, failed ones that
    failed by their own (diverged, the user's code, a crash, a timeout), running and waiting
    ones; warm-start copies never."""
    import sqlalchemy as sa
    from optuna.trial import TrialState as S

    trials, attrs = trial_table().__table__, user_attr_table().__table__

    def has(*keys: str, true: bool = False) -> Any:
        found = sa.exists().where(attrs.c.trial_id == trials.c.trial_id, attrs.c.key.in_(keys))
        return found.where(attrs.c.value_json == "true") if true else found

    own_failure = has(DIVERGED_ATTR, USER_ERROR_ATTR, *ENDED_ATTRS, true=True)
    used = sa.or_(
        trials.c.state.in_([S.COMPLETE, S.PRUNED]),
        sa.and_(trials.c.state == S.FAIL, own_failure),
    )
    counted = sa.or_(trials.c.state.in_([S.RUNNING, S.WAITING]), sa.and_(~has(WARM_ATTR), used))
    query = sa.select(sa.func.count()).where(trials.c.study_id == study_id, counted)
    return int(session.execute(query).scalar_one())


def budget_full(session: Any, study_id: int, budget: int) -> bool:
    """Whether the trials ahead fill `budget` (a count of the rows first: below the budget,
    nothing more is read)."""
    import sqlalchemy as sa

    trials = trial_table().__table__
    rows = sa.select(sa.func.count()).where(trials.c.study_id == study_id)
    if session.execute(rows).scalar_one() < budget:
        return False
    return trials_ahead(session, study_id) >= budget
