"""Installed as a user installs it (issue 34): a wheel in a new environment, used from an empty
folder, goes from `hpsearch init` to a best trial; and neither the wheel nor the README's
editable install can be shadowed by a clone named `hpsearch` in the folder Python starts in.

Nothing is downloaded: the wheel is built with this environment's setuptools, and the new
environments see this one's dependencies through a .pth file, never its hpsearch."""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DEPENDENCIES = sysconfig.get_paths()["purelib"]  # numpy, optuna, ... of this environment


def _sh(*argv, cwd=None, env=None) -> subprocess.CompletedProcess:
    done = subprocess.run(
        [str(a) for a in argv], capture_output=True, text=True, cwd=cwd, env=env, timeout=600
    )
    assert done.returncode == 0, f"{argv}\n{done.stdout}\n{done.stderr}"
    return done


def _environment(where: Path) -> Path:
    """A new virtual environment (no pip of its own) that sees this one's dependencies."""
    _sh(sys.executable, "-m", "venv", "--without-pip", where)
    site = next((where / "lib").glob("python*/site-packages"))
    (site / "dependencies.pth").write_text(DEPENDENCIES + "\n")
    return where / "bin" / "python"


def _clone_named_hpsearch(folder: Path) -> Path:
    """What a `git clone` of hpsearch looks like to Python: a folder without __init__.py."""
    clone = folder / "hpsearch"
    (clone / "search").mkdir(parents=True)
    (clone / "README.md").write_text("a clone\n")
    return folder


def _pip(python: Path, *args, env=None) -> None:
    _sh(sys.executable, "-m", "pip", "--python", python, *args, env=env)


def _user_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "HPSEARCH_STORAGE")}


@pytest.mark.slow
def test_a_wheel_in_a_new_environment_goes_from_init_to_a_best_trial(tmp_path):
    dist = tmp_path / "dist"
    _sh(
        sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-w", dist, ROOT
    )
    (wheel,) = dist.glob("hpsearch-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert any(n.endswith(".dist-info/licenses/LICENSE") or n.endswith("/LICENSE") for n in names)
    assert "hpsearch/studies/quickstart.toml" in names
    assert "hpsearch/studies/custom/hinge_linear.py" in names
    python = _environment(tmp_path / "venv")
    _pip(python, "install", "--no-deps", "--no-index", wheel)
    work = _clone_named_hpsearch(tmp_path / "empty")
    hpsearch = python.parent / "hpsearch"
    env = _user_env()
    assert "Start here" in _sh(hpsearch, "--help", cwd=work, env=env).stdout
    _sh(hpsearch, "init", cwd=work, env=env)
    ran = _sh(hpsearch, "run", "quickstart.toml", "--n-trials", "3", "--quiet", cwd=work, env=env)
    assert "best validation accuracy" in ran.stdout
    shown = _sh(hpsearch, "show", "quickstart", cwd=work, env=env).stdout
    assert "best trial" in shown
    api = _sh(python, "-c", "import hpsearch; print(hpsearch.run.__module__)", cwd=work, env=env)
    assert api.stdout.strip() == "hpsearch.api"


@pytest.mark.slow
def test_the_readmes_editable_install_cannot_be_shadowed(tmp_path):
    readme = (ROOT / "README.md").read_text()
    assert "export PIP_CONFIG_SETTINGS=editable_mode=strict" in readme
    python = _environment(tmp_path / "venv")
    env = {**_user_env(), "PIP_CONFIG_SETTINGS": "editable_mode=strict"}
    # Built in a copy: an editable build writes into the tree it installs.
    checkout = tmp_path / "checkout"
    _sh("git", "clone", "-q", "--no-hardlinks", ROOT, checkout)
    _pip(python, "install", "--no-deps", "--no-build-isolation", "-e", checkout, env=env)
    work = _clone_named_hpsearch(tmp_path / "elsewhere")
    api = _sh(python, "-c", "import hpsearch; print(hpsearch.run.__module__)", cwd=work)
    assert api.stdout.strip() == "hpsearch.api"
