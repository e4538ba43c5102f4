"""The database is plain Optuna: the optuna CLI and optuna-dashboard read it as it is."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from hpsearch.cli import main
from tests.search.dashboard import dashboard

BIN = Path(sys.executable).parent


@pytest.fixture
def finished_db(write_study, db_url) -> str:
    assert main(["run", str(write_study()), "--storage", db_url, "--quiet"]) == 0
    return db_url


@pytest.mark.slow
def test_the_console_script_starts_and_validates(write_study):
    done = subprocess.run([BIN / "hpsearch", "--help"], capture_output=True, text=True)
    assert done.returncode == 0 and "validate" in done.stdout
    done = subprocess.run(
        [BIN / "hpsearch", "validate", str(write_study())], capture_output=True, text=True
    )
    assert done.returncode == 0 and "valid" in done.stdout


@pytest.mark.slow
def test_the_optuna_cli_lists_the_study_and_its_trials(finished_db):
    done = subprocess.run(
        [BIN / "optuna", "trials", "--study-name", "tiny", "--storage", finished_db, "-f", "json"],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    trials = json.loads(done.stdout)
    assert len(trials) == 6 and {t["state"] for t in trials} == {"COMPLETE"}


@pytest.mark.slow
def test_optuna_dashboard_serves_the_study_over_http(finished_db):
    with dashboard(finished_db) as base:
        with urllib.request.urlopen(f"{base}/api/studies", timeout=30) as response:
            summaries = json.load(response)["study_summaries"]
        assert [s["study_name"] for s in summaries] == ["tiny"]
        with urllib.request.urlopen(
            f"{base}/api/studies/{summaries[0]['study_id']}", timeout=30
        ) as response:
            detail = json.load(response)
        assert len(detail["trials"]) == 6
        assert all("curves" in {a["key"] for a in t["user_attrs"]} for t in detail["trials"])
