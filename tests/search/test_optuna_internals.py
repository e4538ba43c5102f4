"""Every private Optuna name hpsearch uses (search/optuna_internals.py), exercised on a real
SQLite study: an Optuna release that moves or changes one fails here, by name, instead of in a
worker's dead-trial recovery."""

from __future__ import annotations

from datetime import UTC
from datetime import datetime
from datetime import timedelta

import optuna
import pytest
import sqlalchemy
from optuna.trial import TrialState

from hpsearch import optuna_internals as internals
from hpsearch.storage import StorageURL
from hpsearch.storage import open_storage

# Optuna warns that heartbeats are meant for Study.optimize; hpsearch's worker loop records them.
pytestmark = pytest.mark.filterwarnings("ignore:Heartbeat of storage")


@pytest.fixture
def study(tmp_path):
    storage = open_storage(StorageURL(f"sqlite:///{tmp_path / 'h.db'}", "test"), heartbeat=True)
    return optuna.create_study(study_name="s", storage=storage)


def test_the_study_and_trial_accessors_name_the_stored_ids(study):
    storage = internals.storage_of(study)
    assert isinstance(storage, optuna.storages.BaseStorage)
    assert internals.study_id(study) == storage.get_study_id_from_name("s")
    trial = study.ask()
    expected = storage.get_trial_id_from_study_id_trial_number(
        internals.study_id(study), trial.number
    )
    assert internals.trial_id(trial) == expected
    assert internals.trial_id(study.get_trials()[0]) == expected


def test_the_heartbeat_base_is_what_optuna_checks_for_heartbeats(study):
    from optuna.storages import RDBStorage

    assert issubclass(RDBStorage, internals.heartbeat_base())
    assert isinstance(internals.storage_of(study), internals.heartbeat_base())
    for method in ("record_heartbeat", "get_heartbeat_interval", "_get_stale_trial_ids"):
        assert callable(getattr(internals.heartbeat_base(), method, None)), method


def test_the_cached_storage_wraps_an_rdb_backend(tmp_path):
    backend = optuna.storages.RDBStorage(f"sqlite:///{tmp_path / 'c.db'}")
    cached = internals.cached_storage(backend)
    study_id = cached.create_new_study(
        directions=[optuna.study.StudyDirection.MAXIMIZE], study_name="c"
    )
    assert backend.get_study_id_from_name("c") == study_id


def test_the_tables_have_the_columns_hpsearch_queries(study):
    trials, beats = internals.trial_table(), internals.heartbeat_table()
    for column in ("trial_id", "state", "datetime_complete"):
        assert hasattr(trials, column), f"TrialModel.{column}"
    for column in ("trial_id", "heartbeat"):
        assert hasattr(beats, column), f"TrialHeartbeatModel.{column}"
    # And they are the tables Optuna writes: a trial and its heartbeat are found there.
    trial = study.ask()
    storage = internals.storage_of(study)
    storage.backend.record_heartbeat(internals.trial_id(trial))
    with storage.backend.engine.connect() as conn:
        states = conn.execute(sqlalchemy.select(trials.state)).scalars().all()
        beating = conn.execute(sqlalchemy.select(beats.trial_id)).scalars().all()
    assert states == [TrialState.RUNNING] and beating == [internals.trial_id(trial)]


def test_stale_trial_ids_finds_a_trial_whose_heartbeat_is_old(study):
    storage = internals.storage_of(study)
    old, fresh = study.ask(), study.ask()
    for trial in (old, fresh):
        storage.backend.record_heartbeat(internals.trial_id(trial))
    beats = internals.heartbeat_table()
    # The old trial's heartbeat moved back by hand, a day (the column holds the server's naive
    # UTC, and this test may run in any zone): no waiting on the wall clock.
    long_ago = datetime.now(UTC).replace(tzinfo=None) - timedelta(days=1)
    with storage.backend.engine.begin() as conn:
        conn.execute(
            sqlalchemy.update(beats)
            .where(beats.trial_id == internals.trial_id(old))
            .values(heartbeat=long_ago)
        )
    stale = internals.stale_trial_ids(storage, internals.study_id(study))
    assert stale == [internals.trial_id(old)]


def test_a_study_user_attr_is_deleted_and_the_others_kept(study, tmp_path):
    study.set_user_attr("gone", 1)
    study.set_user_attr("kept", 2)
    internals.delete_study_user_attr(
        internals.storage_of(study), internals.study_id(study), "gone"
    )
    assert study.user_attrs == {"kept": 2}
    # Also through the cache Optuna puts in front of a URL's storage.
    plain = optuna.load_study(study_name="s", storage=f"sqlite:///{tmp_path / 'h.db'}")
    internals.delete_study_user_attr(plain._storage, plain._study_id, "kept")
    assert optuna.load_study(study_name="s", storage=plain._storage).user_attrs == {}


def test_create_trial_returns_the_trial_as_stored(tmp_path):
    rdb = optuna.storages.RDBStorage(f"sqlite:///{tmp_path / 'c.db'}")
    study_id = rdb.create_new_study([optuna.study.StudyDirection.MAXIMIZE], "c")
    first, second = (internals.create_trial(rdb, study_id) for _ in range(2))
    assert [first.number, second.number] == [0, 1]
    assert rdb.get_trial(internals.trial_id(second)) == second
    assert second.state == TrialState.RUNNING


def test_write_trial_writes_everything_in_one_go_and_only_to_a_running_trial(tmp_path):
    from optuna.distributions import FloatDistribution
    from optuna.exceptions import UpdateFinishedTrialError

    from hpsearch.own_trial import Writes

    with pytest.warns(optuna.exceptions.ExperimentalWarning):
        rdb = optuna.storages.RDBStorage(f"sqlite:///{tmp_path / 'w.db'}", heartbeat_interval=60)
    study_id = rdb.create_new_study([optuna.study.StudyDirection.MAXIMIZE], "w")
    trial_id = internals.trial_id(internals.create_trial(rdb, study_id))
    lr = FloatDistribution(1e-3, 1.0, log=True)
    writes = Writes(
        params=[("lr", 0.01, lr, None)],
        user_attrs={"seed": 7},
        system_attrs={"s": [1]},
        intermediate=[(0, 0.5), (1, 0.6)],
        heartbeat=True,
    )
    internals.write_trial(rdb, trial_id, writes)
    internals.write_trial(rdb, trial_id, Writes(state=TrialState.COMPLETE, values=[0.6]))
    stored = rdb.get_trial(trial_id)
    assert stored.params == {"lr": 0.01} and stored.distributions == {"lr": lr}
    assert stored.user_attrs == {"seed": 7} and stored.system_attrs == {"s": [1]}
    assert stored.intermediate_values == {0: 0.5, 1: 0.6}
    assert stored.state == TrialState.COMPLETE and stored.values == [0.6]
    assert stored.datetime_complete is not None
    beats = internals.heartbeat_table()
    with rdb.engine.connect() as conn:
        assert conn.execute(sqlalchemy.select(beats.trial_id)).scalars().all() == [trial_id]
    with pytest.raises(UpdateFinishedTrialError):
        internals.write_trial(rdb, trial_id, Writes(user_attrs={"late": 1}))
    assert "late" not in rdb.get_trial(trial_id).user_attrs
