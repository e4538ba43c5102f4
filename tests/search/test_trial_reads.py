"""A process's read of a study's trials (search/trial_reads.py) against Optuna's own read of the
same real database: whole, and light (the trials in flight by their state alone) as trials
finish in any order; which samplers and pruners allow light reads; the proxy's threads reading
at once."""

from __future__ import annotations

import optuna
import pytest
from optuna.trial import TrialState

from hpsearch import optuna_internals as internals
from hpsearch.algorithms import reads_finished_only
from hpsearch.spec import AlgorithmSpec
from hpsearch.storage import StorageURL
from hpsearch.storage import open_storage
from hpsearch.study_file import parse_study

pytestmark = pytest.mark.filterwarnings("ignore:Heartbeat of storage")


def _plain(db) -> optuna.Study:
    """Another process's view: a plain Optuna storage of its own."""
    return optuna.load_study(study_name="s", storage=f"sqlite:///{db}")


def _trial(study: optuna.Study, finish: bool) -> optuna.Trial:
    trial = study.ask()
    trial.suggest_float("lr", 1e-3, 1.0, log=True)
    trial.set_user_attr("seed", trial.number)
    trial.report(0.5, step=0)
    if finish:
        study.tell(trial, 0.1 * trial.number)
    return trial


def test_finished_trials_whole_and_the_rest_by_state_as_they_finish_in_any_order(tmp_path):
    db = tmp_path / "light.db"
    optuna.create_study(study_name="s", storage=f"sqlite:///{db}", direction="maximize")
    other = _plain(db)  # the other workers
    first = _trial(other, finish=False)  # stays in flight while later ones finish
    for _ in range(3):
        _trial(other, finish=True)
    storage = open_storage(StorageURL(f"sqlite:///{db}", "test"), heartbeat=True)
    storage.light_reads = True
    study_id = storage.get_study_id_from_name("s")

    def check() -> list[optuna.trial.FrozenTrial]:
        got = storage.fresh_trials(study_id)
        whole = _plain(db).get_trials(deepcopy=False)
        assert [t.number for t in got] == [t.number for t in whole]
        for mine, theirs in zip(got, whole, strict=True):
            assert mine.state == theirs.state and mine.datetime_start == theirs.datetime_start
            if theirs.state.is_finished():  # whole: what samplers and pruners look into
                assert mine == theirs
            else:  # by its state alone
                assert mine.params == {} and mine.user_attrs == {}
                assert internals.trial_id(mine) == internals.trial_id(theirs)
        return got

    assert [t.state for t in check()] == [TrialState.RUNNING] + [TrialState.COMPLETE] * 3
    later = _trial(other, finish=False)
    check()
    other.tell(later, 0.9)  # the later one finishes first ...
    check()
    other.tell(first, 0.8)  # ... then the first: read whole although older than the rest
    got = check()
    assert all(t.state == TrialState.COMPLETE for t in got) and got[0].value == 0.8


@pytest.fixture(params=["sqlite", "postgresql"])
def any_url(request, tmp_path):
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'whole.db'}"
    return request.getfixturevalue("pg_url")


@pytest.mark.clock  # times are stored in UTC and given in local time: CI runs it in two zones
@pytest.mark.parametrize("light", [True, False])
def test_trials_read_whole_as_optuna_reads_them(any_url, monkeypatch, light):
    """Every kind of content a trial holds, read by plain queries (in chunks of two ids here),
    equals Optuna's own read of the same database; light, a trial in flight is a stub."""
    monkeypatch.setattr("hpsearch.trial_reads._CHUNK", 2)
    other = optuna.create_study(study_name="s", storage=any_url, directions=["maximize"] * 2)
    for number in range(6):
        trial = other.ask()
        trial.suggest_float("lr", 1e-4, 1.0, log=True)
        trial.suggest_int("width", 8, 256, step=8)
        trial.suggest_categorical("activation", ["relu", None, 3.5])
        trial.set_user_attr("curves", {"val": [0.1 * number, float("nan")], "note": "é"})
        trial_id = internals.trial_id(trial)
        trial.storage.set_trial_system_attr(trial_id, "sys", [number])
        for step in range(number):  # reports, as a pruner's study (report() takes one objective)
            value = [0.5, float("inf"), -float("inf")][step % 3]
            trial.storage.set_trial_intermediate_value(trial_id, step, value)
        if number == 1:
            other.tell(trial, state=TrialState.FAIL)
        elif number == 3:
            other.tell(trial, state=TrialState.PRUNED)
        elif number < 5:  # the last stays in flight
            other.tell(trial, [0.25 * number, -float("inf")])
    storage = open_storage(StorageURL(any_url, "test"), heartbeat=True)
    storage.light_reads = light
    got = storage.fresh_trials(storage.get_study_id_from_name("s"))
    theirs = optuna.load_study(study_name="s", storage=any_url).get_trials(deepcopy=False)
    assert [t.state for t in got] == [t.state for t in theirs]
    assert got[:5] == theirs[:5]  # FrozenTrial's == compares every field
    assert got[5].state == TrialState.RUNNING
    if light:
        assert got[5].params == {} and got[5].user_attrs == {}
    else:
        assert got[5] == theirs[5]


@pytest.mark.parametrize(
    ("sampler", "pruner", "light"),
    [
        (AlgorithmSpec("tpe"), AlgorithmSpec("wilcoxon"), True),
        (AlgorithmSpec("random"), AlgorithmSpec("median"), True),
        (AlgorithmSpec("tpe", {"constant_liar": True}), AlgorithmSpec("none"), False),
        (AlgorithmSpec("grid"), AlgorithmSpec("none"), False),
        (AlgorithmSpec("tpe"), AlgorithmSpec("successive_halving"), False),
        (AlgorithmSpec("tpe"), AlgorithmSpec("hyperband"), False),
    ],
)
def test_only_samplers_and_pruners_that_look_into_finished_trials_read_light(
    sampler, pruner, light
):
    import dataclasses
    import tomllib

    from tests.conftest import TINY

    spec = parse_study(tomllib.loads(TINY), "tiny.toml")
    spec = dataclasses.replace(spec, sampler=sampler, pruner=pruner)
    assert reads_finished_only(spec) is light


def test_a_worker_samples_and_prunes_the_same_trials_with_light_reads(
    write_study, tmp_path, monkeypatch
):
    """One seeded worker, TPE and the default pruner: the same parameters, values and states
    whether it reads the trials in flight light or whole."""
    import hpsearch
    from tests.conftest import TINY

    text = TINY.replace('pruner = "none"\n', "").replace("n_trials = 6", "n_trials = 8")
    path = write_study(text)

    def trials(light: bool) -> list[tuple]:
        monkeypatch.setattr("hpsearch.runner.reads_finished_only", lambda spec: light)
        url = f"sqlite:///{tmp_path / f'light-{light}.db'}"
        study = hpsearch.run(path, storage=url, progress=False)
        return [(t.params, t.values, t.state) for t in study.get_trials()]

    assert trials(light=True) == trials(light=False)


def test_threads_reading_at_once_each_get_every_trial(pg_url):
    """`hpsearch proxy` reads for its clients from several threads while trials finish: every
    read holds every trial created before it began, whole, and none twice."""
    import threading

    other = optuna.create_study(study_name="s", storage=pg_url)
    storage = open_storage(StorageURL(pg_url, "test"), heartbeat=True, connections=4)
    storage.serve_many()
    study_id = storage.get_study_id_from_name("s")
    created = [0]
    problems: list[str] = []
    done = threading.Event()

    def read() -> None:
        while not done.is_set():
            before = created[0]
            got = storage.get_all_trials(study_id, deepcopy=False)
            if [t.number for t in got] != list(range(len(got))) or len(got) < before:
                problems.append(f"{before} created, read {[t.number for t in got]}")
            if any(t.number < before and "lr" not in t.params for t in got):
                problems.append("a trial in flight read without its parameter")

    readers = [threading.Thread(target=read) for _ in range(4)]
    for reader in readers:
        reader.start()
    for number in range(20):
        trial = other.ask()
        trial.suggest_float("lr", 1e-3, 1.0)
        created[0] = number + 1
        if number % 3:
            other.tell(trial, 0.5)
    done.set()
    for reader in readers:
        reader.join()
    assert problems == []
    assert storage.get_all_trials(study_id) == other.get_trials()
