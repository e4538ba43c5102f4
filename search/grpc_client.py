"""A client of `hpsearch proxy` (search/proxy.py): storage URLs of the form grpc://HOST:PORT.

Through the proxy, workers hold no database connection; Optuna's gRPC client caches the
study's trials, and the proxy recovers dead workers' trials."""

from __future__ import annotations

import os
import warnings
from typing import TYPE_CHECKING
from typing import Any

from hpsearch.errors import UsageError

if TYPE_CHECKING:
    from hpsearch.storage import StorageURL

GRPC_SCHEME = "grpc://"
# `hpsearch proxy`'s defaults (here, where the command line reads them without importing
# the proxy's storage code).
DEFAULT_PORT = 13000
DEFAULT_THREADS = 8

# What a client and `hpsearch proxy` agree on beyond Optuna's protocol (search/proxy.py): the
# number grows whenever that changes; a client asks for the study of this name to learn it.
PROXY_PROTOCOL = 2
PROXY_PROTOCOL_NAME = "hpsearch:proxy-protocol"


def is_proxy(url: str) -> bool:
    """Whether a storage URL names Optuna's gRPC storage proxy (`hpsearch proxy`)."""
    return url.startswith(GRPC_SCHEME)


def proxy_address(target: StorageURL) -> tuple[str, int]:
    """`grpc://HOST:PORT` -> (HOST, PORT), or one line saying what is allowed."""
    from urllib.parse import urlsplit

    problem = f"{target.origin}: cannot read {target.shown!r} as grpc://HOST:PORT"
    try:
        parts = urlsplit(target.url)
        host, port = parts.hostname, parts.port
    except ValueError:
        raise UsageError(f"{problem}; the port must be a number from 1 to 65535") from None
    if not host or port is None or parts.path not in ("", "/") or parts.query:
        raise UsageError(f"{problem} (for example grpc://127.0.0.1:13000)")
    return host, port


def open_proxy(target: StorageURL, *, heartbeat_s: int | None, log=None) -> Any:
    """A client of `hpsearch proxy` at grpc://HOST:PORT, once it answers; with `heartbeat_s`
    (for processes that run trials) wrapped to retry through outages and beat that often."""
    try:
        import grpc  # noqa: F401
        from optuna.storages import GrpcStorageProxy
    except ImportError:
        raise UsageError(
            f"{target.origin}: {target.shown} needs the Python package 'grpcio', which is "
            "not installed; pip install 'hpsearch[grpc]'"
        ) from None
    host, port = proxy_address(target)
    wait = float(os.environ.get(PROXY_CONNECT_ENV) or PROXY_CONNECT_TIMEOUT_S)
    with warnings.catch_warnings():  # Optuna calls the proxy experimental
        warnings.simplefilter("ignore")
        proxy = GrpcStorageProxy(host=host, port=port)
    try:
        proxy.wait_server_ready(timeout=wait)
    except ConnectionError:
        proxy.close()
        raise UsageError(
            f"{target.origin}: nothing answers at {host}:{port} after {wait:.0f} s; start the "
            f"proxy there with `hpsearch proxy --storage postgresql://... --host {host} "
            f"--port {port}`"
        ) from None
    if heartbeat_s is None:  # reads only: any Optuna proxy serves them
        return proxy
    _check_protocol(proxy, target, host, port)
    from hpsearch.retrying import RetryingStorage

    return RetryingStorage(
        proxy,
        log=log or (lambda message: None),
        shown=target.shown,
        heartbeat_s=heartbeat_s,
    )


def _check_protocol(proxy: Any, target: StorageURL, host: str, port: int) -> None:
    """For a process that runs trials: one line, unless an `hpsearch proxy` that writes this
    release's heartbeats and batches answers (a plain Optuna proxy, or one of another
    release, would store them as attrs)."""
    try:
        protocol = proxy.get_study_id_from_name(PROXY_PROTOCOL_NAME)
    except KeyError:
        protocol = None
    if protocol != PROXY_PROTOCOL:
        proxy.close()
        raise UsageError(
            f"{target.origin}: {target.shown} is not an `hpsearch proxy` of this release "
            f"(it speaks {'no' if protocol is None else protocol} hpsearch protocol, this "
            f"worker {PROXY_PROTOCOL}); start the proxy at {host}:{port} with this release's "
            "`hpsearch proxy --storage postgresql://...`"
        )


# How long a client waits for `hpsearch proxy` to answer before saying so.
PROXY_CONNECT_TIMEOUT_S = 10
PROXY_CONNECT_ENV = "HPSEARCH_PROXY_CONNECT_TIMEOUT"
