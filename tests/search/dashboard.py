"""optuna-dashboard served for real on 127.0.0.1, for the tests that read a study through it."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from wsgiref.simple_server import WSGIRequestHandler
from wsgiref.simple_server import make_server

import optuna_dashboard


class _Quiet(WSGIRequestHandler):
    def log_message(self, *args) -> None:
        pass


@contextlib.contextmanager
def dashboard(db_url: str) -> Iterator[str]:
    """optuna-dashboard's WSGI app served on 127.0.0.1 in a thread; yields its base URL."""
    server = make_server("127.0.0.1", 0, optuna_dashboard.wsgi(db_url), handler_class=_Quiet)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
