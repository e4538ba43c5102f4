"""Where a training process is: the user's file, the method it is in, the epoch.

The process that trains a trial (search/trial_process.py) writes these into a page of memory
it shares with the worker supervising it, so that when it dies (os._exit, a segfault, the
out-of-memory killer) or hangs, the worker can still say where: "in mine.py, Mine.partial_fit,
epoch 3". A write is a few bytes copied; with no page attached (training in the process that
asked for it), nothing is written.
"""

from __future__ import annotations

import mmap
import struct
from dataclasses import dataclass

SIZE = 4096
_EPOCH = struct.Struct("i")  # bytes 0-3; -1 before the first epoch
_WHAT_AT, _WHAT_MAX = 4, 256  # a length byte pair, then the method's name
_FILE_AT = _WHAT_AT + 2 + _WHAT_MAX  # a length byte pair, then the user's file

_page: mmap.mmap | None = None


@dataclass(frozen=True)
class Place:
    file: str  # the user's file, "" for the built-in kinds
    what: str  # e.g. "Mine.partial_fit"; "" between calls into the user's code
    epoch: int  # -1 before the first epoch

    def describe(self) -> str:
        """`mine.py, Mine.partial_fit, epoch 3`, leaving out what is not known."""
        parts = [self.file, self.what, f"epoch {self.epoch}" if self.epoch >= 0 else ""]
        return ", ".join(p for p in parts if p) or "before training started"


def clear(page: mmap.mmap) -> None:
    page[:SIZE] = bytes(SIZE)
    _EPOCH.pack_into(page, 0, -1)


def attach(page: mmap.mmap | None) -> None:
    """This process reports its whereabouts into `page` from now on (None: nowhere)."""
    global _page
    _page = page


def _put(at: int, limit: int, text: str) -> None:
    raw = text.encode("utf-8", "replace")[:limit]
    _page[at : at + 2] = len(raw).to_bytes(2, "little")
    _page[at + 2 : at + 2 + len(raw)] = raw


def _get(page: mmap.mmap, at: int, limit: int) -> str:
    n = min(int.from_bytes(page[at : at + 2], "little"), limit)
    return page[at + 2 : at + 2 + n].decode("utf-8", "replace")


def set_file(path: object) -> None:
    if _page is not None:
        _put(_FILE_AT, SIZE - _FILE_AT - 2, "" if path is None else str(path))


def set_epoch(epoch: int) -> None:
    if _page is not None:
        _EPOCH.pack_into(_page, 0, epoch)


def enter(what: str) -> str:
    """Now in `what` (a method of the user's); returns where it was, for `leave`."""
    if _page is None:
        return ""
    before = _get(_page, _WHAT_AT, _WHAT_MAX)
    _put(_WHAT_AT, _WHAT_MAX, what)
    return before


def leave(before: str) -> None:
    if _page is not None:
        _put(_WHAT_AT, _WHAT_MAX, before)


def read(page: mmap.mmap) -> Place:
    return Place(
        _get(page, _FILE_AT, SIZE - _FILE_AT - 2),
        _get(page, _WHAT_AT, _WHAT_MAX),
        _EPOCH.unpack_from(page, 0)[0],
    )
