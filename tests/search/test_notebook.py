"""docs/tutorial.ipynb, executed headless as a user would run it, and a notebook folder that
shadows hpsearch's packages."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

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
    text = "\n".join(
        o.get("text", "") or str(o.get("data", {}).get("text/plain", "")) for o in outputs
    )
    assert "(12, 0.965157)" in text  # the quickstart's best trial, as the manual says
    assert "(reproduced: True)" in text
    assert "on 297; labels ['eight', 'five', 'four']..." in text  # arrays, own splits, names
    figures = [o for o in outputs if "application/vnd.plotly.v1+json" in o.get("data", {})]
    assert len(figures) == 2  # the history and the curves, inline
    assert (tmp_path / "tutorial.db").exists() and (tmp_path / "retrained").is_dir()


@pytest.mark.parametrize(
    ("shadow", "statement"),
    [
        ("models.py", "import search; search.run"),
        ("models/__init__.py", "import search; search.run"),
        ("models.py", "import hpsearch; hpsearch.run"),
        # `import search` would load the user's file itself; `import hpsearch` names it.
        ("search.py", "import hpsearch; hpsearch.run"),
        ("search/__init__.py", "import hpsearch; hpsearch.run"),
    ],
)
def test_a_folder_with_its_own_module_of_our_names_is_named(tmp_path, shadow, statement):
    target = tmp_path / shadow
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text("x = 1\n")
    done = subprocess.run(
        [sys.executable, "-c", statement], cwd=tmp_path, capture_output=True, text=True
    )
    assert done.returncode == 1
    last = done.stderr.strip().splitlines()[-1]
    package = Path(shadow).parts[0].removesuffix(".py")
    assert last == (
        f"ImportError: {target} shadows hpsearch's package '{package}': Python finds it first "
        "(it is in the current folder or on sys.path). Rename it, or work from another folder"
    )


def test_hpsearch_is_the_same_api_as_search(tmp_path):
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            "import hpsearch, search; "
            "print(all(getattr(hpsearch, n) is getattr(search, n) for n in search.__all__))",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert done.stdout.strip() == "True", done.stderr


def test_installed_copies_do_not_trip_the_shadow_check(tmp_path):
    copy = tmp_path / "site"
    shutil.copytree(ROOT / "search", copy / "search")
    shutil.copytree(ROOT / "models", copy / "models")
    shutil.copytree(ROOT / "hpsearch", copy / "hpsearch")
    done = subprocess.run(
        [sys.executable, "-c", "import search; print(search.__file__)"],
        cwd=copy,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
