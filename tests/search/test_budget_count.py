"""The budget counted in SQL in the transaction that creates a trial (search/budget_count.py):
the same count as BudgetGuard's, on real SQLite and PostgreSQL databases, and no row beyond it."""

from __future__ import annotations

import optuna
import pytest
from optuna.trial import TrialState

from hpsearch import optuna_internals as internals
from hpsearch.budget_count import BudgetFull
from hpsearch.budget_count import trials_ahead
from hpsearch.records import counts_toward_budget
from hpsearch.storage import StorageURL
from hpsearch.storage import open_storage

pytestmark = pytest.mark.filterwarnings("ignore:Heartbeat of storage")


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request, tmp_path):
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'budget.db'}"
    return request.getfixturevalue("pg_url")


def _every_kind(study: optuna.Study) -> None:
    """A trial of every kind the budget tells apart."""

    def told(state: TrialState, **attrs) -> None:
        trial = study.ask()
        for key, value in attrs.items():
            trial.set_user_attr(key, value)
        study.tell(trial, 0.5 if state == TrialState.COMPLETE else None, state=state)

    told(TrialState.COMPLETE)
    told(TrialState.COMPLETE, warm_start={"from": "x"})  # a warm-start copy: never counts
    told(TrialState.PRUNED)
    told(TrialState.FAIL, diverged=True, fail_reason="diverged: nan")
    told(TrialState.FAIL, user_error=True, fail_reason="your code: boom")
    told(TrialState.FAIL, crashed=True, fail_reason="crashed")
    told(TrialState.FAIL, timed_out=True, fail_reason="timeout")
    told(TrialState.FAIL, fail_reason="interrupted")  # failed through no fault of its own
    told(TrialState.FAIL, surplus=True, fail_reason="surplus: ...")
    told(TrialState.FAIL, user_error=False, fail_reason="?")
    study.ask()  # running
    study.enqueue_trial({})  # waiting


def test_the_sql_count_is_the_budget_guards_count(url):
    study = optuna.create_study(study_name="b", storage=url, direction="maximize")
    _every_kind(study)
    trials = study.get_trials(deepcopy=False)
    in_flight = (TrialState.RUNNING, TrialState.WAITING)
    expected = sum(counts_toward_budget(t) or t.state in in_flight for t in trials)
    assert expected == 8  # what BudgetGuard counts, spelled out: 1 + 1 + 4 + 2
    rdb = open_storage(StorageURL(url, "test"), create=False)
    with rdb.scoped_session() as session:
        assert trials_ahead(session, internals.study_id(study)) == expected


def test_no_row_is_created_beyond_the_budget(url):
    storage = open_storage(StorageURL(url, "test"), heartbeat=True)
    study = optuna.create_study(study_name="b", storage=storage, direction="maximize")
    _every_kind(study)
    study.tell(study.ask(), 0.5)  # (the enqueued one, taken and finished)
    rows = len(study.get_trials())
    storage.for_worker(light_reads=False, budget=8)  # 8 ahead: full
    with pytest.raises(BudgetFull):
        study.ask()
    assert len(study.get_trials()) == rows
    storage.for_worker(light_reads=False, budget=9)  # one place left
    assert study.ask().number == rows
    with pytest.raises(BudgetFull):
        study.ask()
