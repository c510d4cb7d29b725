"""Serving a Flask app: gunicorn with gthread workers (default) or Flask's development server.

The app, and so its Hazelcast client and background threads, is built inside the worker after
the fork: nothing connects at import time and nothing is preloaded.
"""

from __future__ import annotations

import logging
import signal
from collections.abc import Callable
from typing import TYPE_CHECKING

from gunicorn.app.base import BaseApplication

from lab_common.settings import Settings

if TYPE_CHECKING:
    from flask import Flask

log = logging.getLogger(__name__)

AppFactory = Callable[[], "tuple[Flask, Callable[[], None]]"]


class _Gunicorn(BaseApplication):
    def __init__(self, settings: Settings, build: AppFactory):
        self._settings = settings
        self._build = build
        self._close: Callable[[], None] | None = None
        super().__init__()

    def load_config(self):
        s = self._settings
        self.cfg.set("bind", f"{s.host}:{s.port}")
        self.cfg.set("workers", 1)
        self.cfg.set("worker_class", "gthread")
        self.cfg.set("threads", s.threads)
        self.cfg.set("keepalive", 30)
        self.cfg.set("graceful_timeout", 10)
        self.cfg.set("timeout", 60)
        self.cfg.set("accesslog", None)
        self.cfg.set("loglevel", "warning")
        self.cfg.set("proc_name", s.instance)
        self.cfg.set("worker_exit", self._worker_exit)

    def load(self):
        app, self._close = self._build()
        return app

    def _worker_exit(self, server, worker):
        if self._close is not None:
            self._close()


def serve(settings: Settings, build: AppFactory) -> None:
    """Serve until SIGTERM or SIGINT, then release what the app holds (cluster, registrations)."""
    if settings.server == "gunicorn":
        _Gunicorn(settings, build).run()
        return
    app, close = build()

    def stop(signum, frame):
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, stop)
    try:
        app.run(host=settings.host, port=settings.port, threaded=True, use_reloader=False)
    finally:
        close()
