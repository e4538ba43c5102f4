"""Starting from the package alone (issue 34): `hpsearch init` writes a study to start from,
the shipped studies travel with the package, `--help` says where to start, and the flags every
command takes may come before the command too."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from hpsearch.cli import main
from hpsearch.examples import examples

ROOT = Path(__file__).resolve().parents[2]


def test_every_study_in_the_repository_is_shipped():
    shipped = {e.name for e in examples().values()}
    in_repo = {p.stem for p in (ROOT / "studies").rglob("*.toml")}
    assert shipped == in_repo


def test_init_writes_the_quickstart_and_never_overwrites(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["init"]) == 0
    written = tmp_path / "quickstart.toml"
    assert written.read_text() == (ROOT / "studies" / "quickstart.toml").read_text()
    assert "now: hpsearch run quickstart.toml" in capsys.readouterr().out
    written.write_text("# mine\n")
    assert main(["init"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == (
        f"init: {written} exists already and is left as it is; run `hpsearch init` in "
        "another folder, or move the file away"
    )
    assert written.read_text() == "# mine\n"


def test_init_of_an_example_with_a_class_copies_the_class_and_it_validates(
    tmp_path, monkeypatch, capsys
):
    monkeypatch.chdir(tmp_path)
    assert main(["init", "hinge_linear"]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["hinge_linear.py", "hinge_linear.toml"]
    capsys.readouterr()
    assert main(["validate", "hinge_linear.toml"]) == 0
    doc = tomllib.loads((tmp_path / "hinge_linear.toml").read_text())
    assert doc["model"]["kind"] == "hinge_linear.py:HingeLinear"


def test_init_that_cannot_write_is_one_line(tmp_path, monkeypatch, capsys):
    # A name that leads nowhere writable (a link into a missing folder): what a read-only
    # folder does for a user who is not root.
    (tmp_path / "quickstart.toml").symlink_to(tmp_path / "missing" / "x.toml")
    monkeypatch.chdir(tmp_path)
    assert main(["init"]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "Traceback" not in err, err
    assert err.startswith(f"init: cannot write {tmp_path / 'quickstart.toml'}: ")
    assert err.endswith("run it in a folder you can write to")


def test_init_lists_and_names_a_close_example(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["init", "--list"]) == 0
    listed = capsys.readouterr().out.splitlines()
    assert any(line.startswith("quickstart ") for line in listed)
    assert len(listed) == len(examples())
    assert main(["init", "quickstrat"]) == 2
    err = capsys.readouterr().err.strip()
    assert "init: no example named 'quickstrat' (did you mean 'quickstart'?)" in err
    assert list(tmp_path.iterdir()) == []


def test_help_says_where_to_start(capsys):
    with pytest.raises(SystemExit) as done:
        main(["--help"])
    assert done.value.code == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "Start here: `hpsearch init` writes quickstart.toml" in out


def test_the_storage_and_debug_flags_also_come_before_the_command(tmp_path, capsys):
    url = f"sqlite:///{tmp_path / 'h.db'}"
    assert main(["--storage", url, "studies"]) == 2  # no database there yet: read from it
    assert str(tmp_path / "h.db") in capsys.readouterr().err
    with pytest.raises(SystemExit) as refused:  # argparse's way out, exit code 2
        main(["--storage", url, "validate", str(ROOT / "studies" / "quickstart.toml")])
    assert refused.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("hpsearch: --storage: `hpsearch validate` reads no database")
    assert main(["--debug", "validate", str(tmp_path / "none.toml")]) == 2
    assert "Traceback" in capsys.readouterr().err


def test_the_last_line_says_how_many_trials_this_process_trained_and_why_it_stopped(
    write_study, db_url, capsys
):
    path = write_study()
    assert main(["run", str(path), "--storage", db_url, "--quiet", "--n-trials", "2"]) == 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert last.startswith("this run took ")
    assert "and trained 2 trials; it stopped because the study has its 2 finished trials" in last
    # A worker whose time is up before its first trial.
    code = main(["worker", "tiny", "--storage", db_url, "--quiet", "--timeout", "0.001"])
    assert code == 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert "this worker took" in last
    assert (
        "and trained 0 trials; it stopped because its --timeout ([study].timeout) was up" in last
    )


def test_the_readmes_example_study_is_named_apart_and_outputs_are_ignored():
    readme = (ROOT / "README.md").read_text()
    block = readme.split("```toml", 1)[1].split("```", 1)[0]
    name = tomllib.loads(block)["study"]["name"]
    shipped = {tomllib.loads(e.study.read_text())["study"]["name"] for e in examples().values()}
    assert name not in shipped  # both in ./hpsearch.db, they would collide
    ignored = (ROOT / ".gitignore").read_text().splitlines()
    assert {"report.html", "best.json", "retrained/"} <= set(ignored)
