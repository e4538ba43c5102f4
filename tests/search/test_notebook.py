"""docs/tutorial.ipynb, executed headless as a user would run it, and a notebook folder that
shadows hpsearch's packages."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import optuna
import pytest

from hpsearch.records import finished_count

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_the_tutorial_notebook_runs(tmp_path):
    import nbclient
    import nbformat

    notebook = nbformat.read(ROOT / "docs" / "tutorial.ipynb", as_version=4)
    client = nbclient.NotebookClient(
        notebook, timeout=600, kernel_name="python3", resources={"metadata": {"path": tmp_path}}
    )
    client.execute()
    outputs = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    said = "".join(o.get("text", "") for o in outputs if o.output_type == "stream")
    assert "IProgress" not in said and "Warning" not in said, said
    text = "\n".join(
        o.get("text", "") or str(o.get("data", {}).get("text/plain", "")) for o in outputs
    )
    assert "(11, 0.965157)" in text  # the quickstart's best trial, as docs/reports.md says
    quickstart = optuna.load_study(
        study_name="quickstart", storage=f"sqlite:///{tmp_path / 'tutorial.db'}"
    )
    assert finished_count(quickstart.get_trials()) == 30  # the README: 30 trials, >= 0.95
    assert quickstart.best_value >= 0.95
    assert "(reproduced: True)" in text
    assert "on 297; labels ['eight', 'five', 'four']..." in text  # arrays, own splits, names
    figures = [o for o in outputs if "application/vnd.plotly.v1+json" in o.get("data", {})]
    assert len(figures) == 2  # the history and the curves, inline
    assert (tmp_path / "tutorial.db").exists() and (tmp_path / "retrained").is_dir()


@pytest.mark.parametrize(
    "shadow", ["models.py", "models/__init__.py", "search.py", "search/__init__.py"]
)
def test_a_notebook_folder_with_modules_of_our_old_names_does_not_shadow_hpsearch(
    tmp_path, shadow
):
    """One import name: a user's models.py or search.py (the most natural names) beside the
    notebook cannot stand in for any part of hpsearch."""
    target = tmp_path / shadow
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text("raise RuntimeError('the user file was imported')\n")
    statement = "import hpsearch, hpsearch.models, hpsearch.cli; print(hpsearch.run.__module__)"
    done = subprocess.run(
        [sys.executable, "-c", statement], cwd=tmp_path, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "hpsearch.api"


@pytest.mark.slow
def test_the_wheel_holds_one_import_name(tmp_path):
    """The built wheel's top level is hpsearch alone (and its metadata)."""
    import zipfile

    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-w",
            str(tmp_path),
            str(ROOT),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    (wheel,) = tmp_path.glob("hpsearch-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    top = {name.split("/")[0] for name in names if not name.split("/")[0].endswith(".dist-info")}
    assert top == {"hpsearch"}, top
    assert "hpsearch/models/linear.py" in names and "hpsearch/cli.py" in names
    assert "hpsearch/schemas/export.schema.json" in names


def test_a_folder_named_hpsearch_beside_the_notebook_does_not_shadow_it(tmp_path):
    """A clone at ~/hpsearch and Python started in ~: the folder (no __init__.py) must not
    become an empty namespace package. `make` installs in setuptools' strict editable mode (a
    tree of links on sys.path), and a regular install is a regular package: both win."""
    if any(name.startswith("__editable___hpsearch") for name in sys.modules):
        pytest.skip("installed in setuptools' default editable mode; `make` installs strict")
    (tmp_path / "hpsearch" / "studies").mkdir(parents=True)
    done = subprocess.run(
        [sys.executable, "-c", "import hpsearch; print(hpsearch.run.__module__)"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "hpsearch.api"
