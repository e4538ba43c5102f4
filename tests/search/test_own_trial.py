"""A worker keeps its running trial and sends its writes in batches (search/own_trial.py):
what another process reads from the real SQLite file, at each point of a trial's life."""

from __future__ import annotations

import optuna
import pytest
import sqlalchemy
from optuna.trial import TrialState

from hpsearch import optuna_internals as internals
from hpsearch.objective import set_user_attrs
from hpsearch.storage import StorageURL
from hpsearch.storage import open_storage

pytestmark = pytest.mark.filterwarnings("ignore:Heartbeat of storage")


def _worker_study(db) -> optuna.Study:
    storage = open_storage(StorageURL(f"sqlite:///{db}", "test"), heartbeat=True)
    return optuna.create_study(
        study_name="s", storage=storage, direction="maximize", load_if_exists=True
    )


def _stored(db, number: int = 0) -> optuna.trial.FrozenTrial:
    """The trial as another process reads it (a plain Optuna storage of its own)."""
    return optuna.load_study(study_name="s", storage=f"sqlite:///{db}").trials[number]


def _beating(db) -> list[int]:
    beats = internals.heartbeat_table()
    engine = sqlalchemy.create_engine(f"sqlite:///{db}")
    try:
        with engine.connect() as conn:
            return conn.execute(sqlalchemy.select(beats.trial_id)).scalars().all()
    finally:
        engine.dispose()


def test_each_write_reaches_the_database_by_the_transaction_that_must_carry_it(tmp_path):
    db = tmp_path / "own.db"
    study = _worker_study(db)
    trial = study.ask()
    trial.suggest_float("lr", 1e-3, 1.0, log=True)
    trial.set_user_attr("note", "held")
    held = _stored(db)
    assert held.state == TrialState.RUNNING and held.params == {} and held.user_attrs == {}
    # The start of its training (its seed) sends everything, the first heartbeat with it.
    set_user_attrs(trial, {"seed": 11})
    started = _stored(db)
    assert started.params == trial.params and started.user_attrs == {"note": "held", "seed": 11}
    assert _beating(db) == [internals.trial_id(trial)]
    # Each epoch's report is there at once: other workers' pruners compare against it.
    trial.report(0.5, step=0)
    assert _stored(db).intermediate_values == {0: 0.5}
    # What is recorded at the end goes with the tell, in its transaction.
    set_user_attrs(trial, {"curves": [0.5, 0.7]}, send=False)
    assert "curves" not in _stored(db).user_attrs
    told = study.tell(trial, 0.7)
    stored = _stored(db)
    assert stored.state == told.state == TrialState.COMPLETE and stored.value == told.value == 0.7
    assert (
        stored.user_attrs == told.user_attrs == {"note": "held", "seed": 11, "curves": [0.5, 0.7]}
    )
    assert stored.params == told.params and stored.intermediate_values == told.intermediate_values


def test_a_trial_failed_by_another_worker_meanwhile_is_told_as_the_database_has_it(tmp_path):
    db = tmp_path / "own.db"
    study = _worker_study(db)
    trial = study.ask()
    set_user_attrs(trial, {"seed": 3})
    other = open_storage(StorageURL(f"sqlite:///{db}", "test"), heartbeat=True)
    assert other.fail_if_running(internals.trial_id(trial))  # as a recovery would
    set_user_attrs(trial, {"curves": [0.1]}, send=False)
    told = study.tell(trial, 0.9, skip_if_finished=True)
    assert told.state == TrialState.FAIL and told.value is None
    stored = _stored(db)
    assert stored.state == TrialState.FAIL and stored.user_attrs == {"seed": 3}


def test_the_first_heartbeat_waits_for_the_first_transaction_but_not_forever(tmp_path):
    db = tmp_path / "own.db"
    study = _worker_study(db)
    storage = internals.storage_of(study)
    first = study.ask()
    storage.record_heartbeat(internals.trial_id(first))
    assert _beating(db) == []  # it goes with the trial's first transaction ...
    set_user_attrs(first, {"seed": 1})
    assert _beating(db) == [internals.trial_id(first)]
    study.tell(first, 0.1)
    # ... unless the heartbeat thread asks again before that transaction came.
    second = study.ask()
    storage.record_heartbeat(internals.trial_id(second))
    storage.record_heartbeat(internals.trial_id(second))
    assert sorted(_beating(db)) == [internals.trial_id(first), internals.trial_id(second)]


def test_an_enqueued_trial_taken_by_a_worker_is_kept_the_same_way(tmp_path):
    db = tmp_path / "own.db"
    study = _worker_study(db)
    study.enqueue_trial({"lr": 0.1})
    trial = study.ask()
    assert trial.suggest_float("lr", 1e-3, 1.0, log=True) == 0.1
    trial.set_user_attr("note", "queued")
    assert _stored(db).user_attrs == {}
    study.tell(trial, 0.4)
    stored = _stored(db)
    assert stored.state == TrialState.COMPLETE and stored.params == {"lr": 0.1}
    assert stored.user_attrs == {"note": "queued"}


def test_reports_can_wait_until_the_training_has_its_answer(tmp_path):
    """The objective lets each epoch's report wait until the training process has its go or
    prune (search/objective.py): sent then, while the next epoch trains."""
    db = tmp_path / "own.db"
    study = _worker_study(db)
    storage = internals.storage_of(study)
    trial = study.ask()
    set_user_attrs(trial, {"seed": 5})
    storage.reports_wait(internals.trial_id(trial))
    trial.report(0.25, step=0)
    assert not trial.should_prune() and _stored(db).intermediate_values == {}
    storage.send_waiting(internals.trial_id(trial))
    assert _stored(db).intermediate_values == {0: 0.25}
    trial.report(0.5, step=1)  # not yet sent: goes with the tell
    study.tell(trial, 0.5)
    assert _stored(db).intermediate_values == {0: 0.25, 1: 0.5}
