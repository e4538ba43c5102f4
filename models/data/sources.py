"""Where each named dataset comes from, and the published SHA-256 of every file.

IDX files (MNIST, Fashion-MNIST) are verified on their decompressed bytes: mirrors and Debian
re-compress the .gz files (Debian's dataset-fashion-mnist .gz files do not match Zalando's
published MD5s), while the decompressed content is the same everywhere. The CIFAR-10 archive is
verified as downloaded, before it is extracted or unpickled.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class RemoteFile:
    """One file of a dataset."""

    name: str  # the file name on the mirrors and in the cache
    sha256: str  # of the decompressed bytes when `gzipped`, else of the file itself
    gzipped: bool = False  # stored decompressed in the cache


@dataclass(frozen=True)
class Source:
    """A dataset that hpsearch can fetch by name."""

    files: tuple[RemoteFile, ...]
    mirrors: tuple[str, ...]  # base URLs, tried in order
    local_dirs: tuple[str, ...] = ()  # folders that may already hold the files (or their .gz)


def _idx_files(hashes: dict[str, str]) -> tuple[RemoteFile, ...]:
    return tuple(RemoteFile(f"{name}.gz", sha, gzipped=True) for name, sha in hashes.items())


SOURCES: dict[str, Source] = {
    "mnist": Source(
        files=_idx_files(
            {
                "train-images-idx3-ubyte": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
                "train-labels-idx1-ubyte": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
                "t10k-images-idx3-ubyte": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
                "t10k-labels-idx1-ubyte": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
            }
        ),
        mirrors=(
            "https://ossci-datasets.s3.amazonaws.com/mnist/",
            "https://storage.googleapis.com/cvdf-datasets/mnist/",
        ),
    ),
    "fashion-mnist": Source(
        files=_idx_files(
            {
                "train-images-idx3-ubyte": "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
                "train-labels-idx1-ubyte": "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
                "t10k-images-idx3-ubyte": "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
                "t10k-labels-idx1-ubyte": "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
            }
        ),
        mirrors=(
            "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
            "https://github.com/zalandoresearch/fashion-mnist/raw/master/data/fashion/",
        ),
        local_dirs=("/usr/share/datasets/fashion-mnist",),  # Debian's dataset-fashion-mnist
    ),
    "cifar10": Source(
        files=(
            RemoteFile(
                "cifar-10-python.tar.gz",
                "6d958be074577803d12ecdefd02955f39262c83c16fe9348329d7fe0b5c001ce",
            ),
        ),
        mirrors=("https://www.cs.toronto.edu/~kriz/",),
    ),
}
