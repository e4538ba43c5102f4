"""What depends on clocks, in zones east and west of UTC and with workers in different zones.

Optuna stores a trial's start and end in the writing machine's local time without a zone, so
hpsearch never compares those wall clocks: dead trials are judged by the database server's
clock (stale) or by how long a worker has watched them (silent), and times are shown with
their zone. CI also runs these tests with the whole test process in Asia/Tokyo and in
America/New_York (`pytest -m clock`).
"""

from __future__ import annotations

import os
import re
import subprocess
import time
from datetime import UTC
from datetime import datetime

import optuna
import pytest

from hpsearch.records import fail_reason
from tests.search.faults import HPSEARCH
from tests.search.faults import SLOW
from tests.search.faults import check_exact

pytestmark = [pytest.mark.clock, pytest.mark.slow]
ZONES = ["Asia/Tokyo", "America/New_York"]  # UTC+9 and UTC-5 (or -4)


def _run(args: list[str], tz: str, **env: str) -> subprocess.CompletedProcess:
    done = subprocess.run(
        [HPSEARCH, *args],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "TZ": tz, **env},
    )
    assert done.returncode == 0, done.stderr
    return done


@pytest.fixture
def in_zone(monkeypatch):
    """Put this test process in another time zone for the test."""

    def set_zone(tz: str) -> None:
        monkeypatch.setenv("TZ", tz)
        time.tzset()

    yield set_zone
    monkeypatch.undo()
    time.tzset()


# West of UTC, where a naive local clock would make a trial look hours younger than it is (the
# zone east of it is covered by the fake-clock test below, and CI runs this module in both).
@pytest.mark.parametrize("tz", ["America/New_York"])
def test_a_trial_that_never_beat_is_failed_in_any_zone(write_study, tmp_path, tz):
    url = f"sqlite:///{tmp_path / 'h.db'}"
    path = write_study(
        SLOW.replace("n_trials = 8", "n_trials = 3").replace("epochs = 60", "epochs = 5")
    )
    _run(["run", str(path), "--storage", url, "--n-trials", "1", "--quiet"], tz)
    # A trial opened outside hpsearch's workers: RUNNING, and no heartbeat ever written.
    orphan = optuna.load_study(study_name="tiny", storage=url).ask()
    # Heartbeat every 1 s: stale after 3 s, silent after 9 s of watching it.
    _run(["worker", "tiny", "--storage", url, "--quiet"], tz, HPSEARCH_HEARTBEAT_INTERVAL="1")
    trials = check_exact(url, "tiny", 3)
    assert trials[orphan.number].state.name == "FAIL"
    assert fail_reason(trials[orphan.number]).startswith("silent")
    assert any(t.system_attrs.get("failed_trial") == orphan.number for t in trials)


@pytest.mark.parametrize("tz", ZONES)
@pytest.mark.filterwarnings("ignore:Heartbeat of storage is supposed to be used")
def test_a_trial_started_a_moment_ago_is_not_failed_as_silent(tmp_path, in_zone, tz):
    """Only this worker's own watch counts, never the trial's start time in some zone."""
    from hpsearch.storage import StorageURL
    from hpsearch.storage import open_storage
    from hpsearch.worker import SilentTrials

    in_zone(tz)
    url = f"sqlite:///{tmp_path / 'h.db'}"
    storage = open_storage(StorageURL(url, "--storage"), heartbeat=True)
    study = optuna.create_study(study_name="s", storage=storage)
    now = [1000.0]
    silent = SilentTrials(clock=lambda: now[0])
    young = study.ask()  # no heartbeat yet, as in the first milliseconds of any trial
    limit = 3 * storage.backend.grace_period
    assert silent.check(study) == []
    now[0] += limit - 1
    assert silent.check(study) == []  # watched for less than the limit: left alone
    now[0] += 2
    assert silent.check(study) == [young._trial_id]
    assert study.trials[young.number].state.name == "FAIL"


def test_workers_in_two_zones_share_one_study(write_study, tmp_path):
    """A worker in Tokyo and one in New York on one database: nothing is failed for a clock."""
    url = f"sqlite:///{tmp_path / 'h.db'}"
    study = write_study(SLOW.replace("n_trials = 8", "n_trials = 4"))
    _run(["run", str(study), "--storage", url, "--n-trials", "1", "--quiet"], ZONES[0])
    env = {**os.environ, "HPSEARCH_HEARTBEAT_INTERVAL": "1"}
    procs = [
        subprocess.Popen(
            [HPSEARCH, "worker", "tiny", "--storage", url, "--quiet"],
            env={**env, "TZ": tz},
            stderr=subprocess.PIPE,
            text=True,
        )
        for tz in ZONES
    ]
    for proc in procs:
        assert proc.wait(timeout=300) == 0, proc.stderr.read()
    trials = check_exact(url, "tiny", 4)
    # The only FAIL rows allowed are surplus ones (two workers asking at the same moment).
    assert all(fail_reason(t).startswith("surplus") for t in trials if t.state.name == "FAIL")


def test_studies_shows_the_last_update_in_the_readers_zone(write_study, tmp_path):
    url = f"sqlite:///{tmp_path / 'h.db'}"
    _run(["run", str(write_study()), "--storage", url, "--quiet"], "Asia/Tokyo")
    out = _run(["studies", "--storage", url], "America/New_York").stdout
    stamp = re.search(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d [+-]\d{4}", out).group(0)
    shown = datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S %z")
    assert shown.utcoffset().total_seconds() in (-5 * 3600, -4 * 3600)  # the reader's zone
    assert abs((datetime.now(UTC) - shown).total_seconds()) < 300  # the right instant
