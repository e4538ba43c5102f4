"""Fetch a dataset's files into the cache: local copy or mirrors, verified, never half-written.

Every file is written to a temporary name in the cache folder, its SHA-256 is checked, and only
then is it renamed to its final name; a failed or interrupted fetch leaves the cache as it was.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import os
import sys
import tempfile
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from hpsearch.models.data.errors import DataError
from hpsearch.models.data.sources import RemoteFile
from hpsearch.models.data.sources import Source

CHUNK = 1 << 20
TIMEOUT_S = 30  # per connection attempt and per read, so a dead mirror fails over quickly
MIRROR_ENV = "HPSEARCH_DATA_MIRROR"  # a base URL tried before the built-in mirrors


def cache_dir() -> Path:
    """HPSEARCH_DATA_DIR, else ~/.cache/hpsearch."""
    return Path(os.environ.get("HPSEARCH_DATA_DIR") or Path.home() / ".cache" / "hpsearch")


def _chunks(stream: BinaryIO) -> Iterator[bytes]:
    while chunk := stream.read(CHUNK):
        yield chunk


def _copy_verified(stream: BinaryIO, target: Path, file: RemoteFile, what: str) -> None:
    """Write `stream` (decompressed when the file is gzipped) to `target` if its hash matches."""
    created = not target.parent.exists()
    target.parent.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    fd, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part")
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out:
            source = gzip.GzipFile(fileobj=stream) if file.gzipped else stream
            try:
                for chunk in _chunks(source):
                    digest.update(chunk)
                    out.write(chunk)
            except (OSError, EOFError, gzip.BadGzipFile) as e:
                raise DataError(
                    f"{what}: cannot be read as {'gzip' if file.gzipped else 'data'}"
                    f" ({e}); the cache was left unchanged"
                ) from None
        if digest.hexdigest() != file.sha256:
            raise DataError(
                f"{what}: SHA-256 mismatch (got {digest.hexdigest()[:16]}..., "
                f"expected {file.sha256[:16]}...); the file is corrupt or not the "
                "published one, and the cache was left unchanged"
            )
        os.chmod(tmp, 0o644)  # mkstemp makes it private; the cache may be shared
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
        if created and not target.exists():
            with contextlib.suppress(OSError):
                target.parent.rmdir()  # leave no empty folder behind either


class _Progress:
    """Wrap a response so that reading it advances a tqdm bar on stderr."""

    def __init__(self, response: BinaryIO, total: int | None, label: str) -> None:
        from tqdm import tqdm

        self.response = response
        self.bar = tqdm(
            total=total,
            unit="B",
            unit_scale=True,
            desc=label,
            file=sys.stderr,
            leave=False,
            disable=None,
        )

    def read(self, n: int = -1) -> bytes:
        data = self.response.read(n)
        self.bar.update(len(data))
        return data

    def close(self) -> None:
        self.bar.close()


def _mirrors(source: Source) -> list[str]:
    own = os.environ.get(MIRROR_ENV)
    return ([own.rstrip("/") + "/"] if own else []) + list(source.mirrors)


def _sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in _chunks(f):
            digest.update(chunk)
    return digest.hexdigest()


def fetch(name: str, source: Source, file: RemoteFile) -> Path:
    """The file in the cache, verified, copied from a local folder or downloaded if needed.

    A file already in the cache is verified again (raw files are read only when the prepared
    cache is built, so this costs little), and a mismatch is reported, never deleted: the user
    may have put it there. Local folders are the dataset's cache folder itself (for a .gz the
    user put there) and the dataset's known copies, such as Debian's.
    """
    folder = cache_dir() / name
    target = folder / file.name.removesuffix(".gz") if file.gzipped else folder / file.name
    if target.exists():
        if _sha256_of(target) != file.sha256:
            raise DataError(
                f"{target}: SHA-256 mismatch; it is not the published file. Delete "
                "it to have hpsearch fetch the file again"
            )
        return target
    for local in [folder / file.name, *(Path(d) / file.name for d in source.local_dirs)]:
        if local != target and local.exists():
            with local.open("rb") as stream:
                _copy_verified(stream, target, file, str(local))
            return target
    failures = []
    for base in _mirrors(source):
        url = base + file.name
        try:
            with urllib.request.urlopen(url, timeout=TIMEOUT_S) as response:
                length = response.headers.get("Content-Length")
                progress = _Progress(response, int(length) if length else None, file.name)
                try:
                    _copy_verified(progress, target, file, url)  # type: ignore[arg-type]
                finally:
                    progress.close()
            return target
        except (urllib.error.URLError, OSError, DataError) as e:
            failures.append(f"{url}: {getattr(e, 'reason', e)}")
    raise DataError(
        f"{name}: could not fetch {file.name} ({'; '.join(failures)}); download it yourself "
        f"from {_mirrors(source)[0] + file.name} and put it at {folder / file.name}"
    )
