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
    storage.record_heartbeat(internals.trial_id(trial))
    with storage.backend.engine.connect() as conn:
        states = conn.execute(sqlalchemy.select(trials.state)).scalars().all()
        beating = conn.execute(sqlalchemy.select(beats.trial_id)).scalars().all()
    assert states == [TrialState.RUNNING] and beating == [internals.trial_id(trial)]


def test_stale_trial_ids_finds_a_trial_whose_heartbeat_is_old(study):
    storage = internals.storage_of(study)
    old, fresh = study.ask(), study.ask()
    for trial in (old, fresh):
        storage.record_heartbeat(internals.trial_id(trial))
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
