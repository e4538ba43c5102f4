"""Optuna's private names that hpsearch's guarantees need, in one place.

The worker loop's exact budget, its dead-trial recovery and its storage retries need a few
things Optuna keeps private: the study's storage and ids, the heartbeat base class, the cached
storage Optuna itself wraps around an RDB backend, the trial and heartbeat tables, and the
stale-trial query. Everything else hpsearch does uses Optuna's public API.

Checked against Optuna `CHECKED_WITH`. tests/search/test_optuna_internals.py exercises every
name here on a real SQLite study and fails loudly (naming what moved) on an Optuna release
that changes one of them; update this module, then `CHECKED_WITH`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING
from typing import Any

if TYPE_CHECKING:
    import optuna

CHECKED_WITH = "5.0.0"


def storage_of(study: optuna.Study) -> Any:
    """The storage a study reads and writes through (hpsearch's RetryingStorage)."""
    return study._storage


def study_id(study: optuna.Study) -> int:
    return study._study_id


def trial_id(trial: optuna.trial.BaseTrial) -> int:
    """A Trial's or FrozenTrial's id in the storage (its number counts within the study)."""
    return trial._trial_id


def heartbeat_base() -> type:
    """The base class through which Optuna finds a storage's heartbeat support."""
    from optuna.storages._heartbeat import BaseHeartbeat

    return BaseHeartbeat


def cached_storage(backend: optuna.storages.RDBStorage) -> Any:
    """The cache Optuna puts in front of an RDB backend when given a URL."""
    import optuna

    return optuna.storages._CachedStorage(backend)


def trial_table() -> Any:
    """The SQLAlchemy model of Optuna's trials table (for one conditional UPDATE)."""
    from optuna.storages._rdb.models import TrialModel

    return TrialModel


def heartbeat_table() -> Any:
    """The SQLAlchemy model of Optuna's trial heartbeats table."""
    from optuna.storages._rdb.models import TrialHeartbeatModel

    return TrialHeartbeatModel


def grpc_proxy_server(storage: Any, host: str, port: int, threads: int) -> Any:
    """A gRPC server (not started) serving `storage` with Optuna's proxy service, as
    `optuna.storages.run_grpc_proxy_server` builds it, but refusing a port another server
    holds (gRPC's default SO_REUSEPORT would let two proxies share one port unseen).

    Raises:
        RuntimeError: gRPC cannot bind host:port.
    """
    from concurrent.futures import ThreadPoolExecutor

    import grpc
    from optuna.storages._grpc.auto_generated import api_pb2_grpc
    from optuna.storages._grpc.servicer import OptunaStorageProxyService

    server = grpc.server(
        ThreadPoolExecutor(max_workers=threads), options=[("grpc.so_reuseport", 0)]
    )
    api_pb2_grpc.add_StorageServiceServicer_to_server(OptunaStorageProxyService(storage), server)
    server.add_insecure_port(f"{host}:{port}")
    return server


def delete_study_user_attr(storage: Any, study: int, key: str) -> None:
    """Remove a user attr of study id `study` (Optuna has no public call for it), through
    `storage`: an RDB storage, or hpsearch's retrying wrapper around one."""
    import sqlalchemy
    from optuna.storages._rdb.models import StudyUserAttributeModel

    rdb = getattr(storage, "backend", storage)
    rdb = getattr(rdb, "_backend", rdb)  # the cache Optuna puts in front of it
    if not hasattr(rdb, "engine"):
        return  # a client of `hpsearch proxy`, which has no call for it
    table = StudyUserAttributeModel
    with rdb.engine.begin() as conn:
        conn.execute(sqlalchemy.delete(table).where(table.study_id == study, table.key == key))


def set_trial_user_attrs(rdb: optuna.storages.RDBStorage, trial: int, attrs: dict) -> None:
    """Several user attrs of trial id `trial` in one transaction (Optuna's public call commits
    one at a time), checked as Optuna checks one: the trial must still be running."""
    from optuna.storages._rdb.models import TrialUserAttributeModel
    from optuna.storages._rdb.storage import _create_scoped_session

    with _create_scoped_session(rdb.scoped_session, True) as session:
        for key, value in attrs.items():
            rdb._set_trial_attr_without_commit(session, TrialUserAttributeModel, trial, key, value)


def create_trial(rdb: optuna.storages.RDBStorage, study: int, template: Any = None) -> Any:
    """A new trial of study id `study`, as Optuna creates it, returned whole: Optuna's public
    call returns only its id, and reading it back costs a transaction."""
    return rdb._create_new_trial(study, template)


def create_trial_unless(rdb: optuna.storages.RDBStorage, study: int, full: Any) -> Any:
    """A new RUNNING trial of study id `study`, returned whole, unless `full(session)` (asked
    in the same transaction, under the lock Optuna takes on the study's row to number every
    new trial) says no trial may be added; then None, and nothing is written."""
    from optuna.storages._rdb import models
    from optuna.storages._rdb.storage import _create_scoped_session

    with _create_scoped_session(rdb.scoped_session) as session:
        models.StudyModel.find_or_raise_by_id(study, session, for_update=True)
        if full(session):
            return None
        row = rdb._get_prepared_new_trial(study, None, session)
        return bare_trial(row.trial_id, row.number, row.state, row.datetime_start)


def bare_trial(trial_id: int, number: int, state: Any, start: Any) -> Any:
    """A FrozenTrial with its id, number, state and start, and nothing written to it yet."""
    from optuna.trial import FrozenTrial

    return FrozenTrial(
        number=number,
        state=state,
        value=None,
        datetime_start=start,
        datetime_complete=None,
        params={},
        distributions={},
        user_attrs={},
        system_attrs={},
        intermediate_values={},
        trial_id=trial_id,
    )


def user_attr_table() -> Any:
    """The SQLAlchemy model of Optuna's trial user attributes table."""
    from optuna.storages._rdb.models import TrialUserAttributeModel

    return TrialUserAttributeModel


def write_trial(rdb: optuna.storages.RDBStorage, trial: int, writes: Any) -> None:
    """`writes` (search/own_trial.py's Writes) to the running trial id `trial` in one
    transaction, each checked as Optuna's own call checks it; with a finished `writes.state`
    the trial row is locked first, as Optuna's set_trial_state_values locks it.

    Raises:
        optuna.exceptions.UpdateFinishedTrialError: the trial is no longer running.
    """
    from datetime import datetime

    import sqlalchemy
    from optuna.storages._rdb import models
    from optuna.storages._rdb.storage import _create_scoped_session

    telling = writes.state is not None
    # A write retried after its commit was lost meets its own rows: ignored, as Optuna's
    # single writes ignore it (a state change is recognised by the caller instead).
    with _create_scoped_session(rdb.scoped_session, not telling) as session:
        if telling:  # (each write below checks the trial's state itself)
            row = models.TrialModel.find_or_raise_by_id(trial, session, for_update=True)
            rdb.check_trial_is_updatable(trial, row.state)
        for name, value, distribution, previous in writes.params:
            rdb._set_trial_param_without_commit(
                session, trial, name, value, distribution, previous
            )
        for model, attrs in (
            (models.TrialUserAttributeModel, writes.user_attrs),
            (models.TrialSystemAttributeModel, writes.system_attrs),
        ):
            for key, value in attrs.items():
                rdb._set_trial_attr_without_commit(session, model, trial, key, value)
        for step, value in writes.intermediate:
            rdb._set_trial_intermediate_value_without_commit(session, trial, step, value)
        if writes.heartbeat:
            beat = models.TrialHeartbeatModel.where_trial_id(trial, session, True)
            if beat is None:
                session.add(models.TrialHeartbeatModel(trial_id=trial))
            else:
                beat.heartbeat = session.execute(sqlalchemy.func.now()).scalar_one()
        if telling:
            for objective, value in enumerate(writes.values or ()):
                rdb._set_trial_value_without_commit(session, row, objective, value)
            row.state = writes.state
            if writes.state.is_finished():
                row.datetime_complete = datetime.now()


def trial_tables() -> Any:
    """The tables of a trial's contents, with Optuna's stored forms of its values, to read
    trials whole with plain queries (search/trial_reads.py)."""
    from types import SimpleNamespace

    from optuna.storages._rdb import models

    return SimpleNamespace(
        trials=models.TrialModel.__table__,
        params=models.TrialParamModel.__table__,
        values=models.TrialValueModel.__table__,
        user_attrs=models.TrialUserAttributeModel.__table__,
        system_attrs=models.TrialSystemAttributeModel.__table__,
        intermediate=models.TrialIntermediateValueModel.__table__,
        value_of=models.TrialValueModel.stored_repr_to_value,
        intermediate_of=models.TrialIntermediateValueModel.stored_repr_to_intermediate_value,
    )


def stale_trial_ids(storage: Any, study: int) -> list[int]:
    """RUNNING trials of study id `study` whose heartbeat is older than the grace period, by
    the database server's clock (through `storage`: an RDB storage, or hpsearch's retrying
    wrapper around one)."""
    return storage._get_stale_trial_ids(study)
