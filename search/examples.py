"""The studies shipped with hpsearch (the repository's studies/, the wheel's hpsearch.studies),
and `hpsearch init`, which copies one into the current folder to start from.

A study that trains a class or network of the user's (`kind = "file.py:Name"`, or
torch.network's `network`) names its file relative to the study file's folder: that file is
copied beside it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from hpsearch.errors import UsageError

STARTER = "quickstart"


@dataclass(frozen=True)
class Example:
    name: str  # what `hpsearch init NAME` takes: the file's stem
    study: resources.abc.Traversable  # the .toml
    files: tuple[resources.abc.Traversable, ...]  # the user-code files it names
    summary: str  # the study file's first comment line

    def describe(self) -> str:
        return f"{self.name:<28} {self.summary}"


def _root() -> resources.abc.Traversable:
    return resources.files("hpsearch.studies")


def _code_files(folder: resources.abc.Traversable, text: str) -> tuple:
    """The .py files the study names by a path relative to its folder."""
    names = re.findall(r'"([\w./-]+\.py):[\w.]+"', text)
    return tuple(folder / name for name in names if (folder / name).is_file())


def examples() -> dict[str, Example]:
    """Every shipped study by name, the top folder's first, then custom/ and assignments/."""
    found: dict[str, Example] = {}
    root = _root()
    for folder in (root, root / "custom", root / "assignments"):
        for item in sorted(folder.iterdir(), key=lambda t: t.name):
            if not item.name.endswith(".toml"):
                continue
            text = item.read_text()
            first = next((line for line in text.splitlines() if line.startswith("#")), "#")
            found[item.name.removesuffix(".toml")] = Example(
                item.name.removesuffix(".toml"),
                item,
                _code_files(folder, text),
                first.lstrip("# ").strip(),
            )
    return found


def init(name: str, folder: Path) -> list[Path]:
    """Copy example `name` (with the files of its code) into `folder`; the files written.

    Raises:
        UsageError: no such example, a file of that name is already there (never
            overwritten), or the folder cannot be written.
    """
    shipped = examples()
    if name not in shipped:
        import difflib

        hint = difflib.get_close_matches(name, list(shipped), n=1)
        did_you_mean = f" (did you mean {hint[0]!r}?)" if hint else ""
        raise UsageError(
            f"init: no example named {name!r}{did_you_mean}; `hpsearch init --list` lists them"
        )
    example = shipped[name]
    sources = (example.study, *example.files)
    targets = [folder / source.name for source in sources]
    present = [t for t in targets if t.exists()]
    if present:
        raise UsageError(
            f"init: {present[0]} exists already and is left as it is; run `hpsearch init` in "
            "another folder, or move the file away"
        )
    for source, target in zip(sources, targets, strict=True):
        try:
            target.write_bytes(source.read_bytes())
        except OSError as e:
            raise UsageError(
                f"init: cannot write {target}: {e.strerror}; run it in a folder you can write to"
            ) from None
    return targets
