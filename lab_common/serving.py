"""Serving a Flask app: granian (default), gunicorn with gthread workers, or Flask's development server.

The app is built inside the worker process after the fork and released when the worker stops (see
docs/internals.md, "Serving").
"""

from __future__ import annotations

import logging
import signal
from collections.abc import Callable
from typing import TYPE_CHECKING

from lab_common.settings import ServiceSettings

if TYPE_CHECKING:
    from flask import Flask

log = logging.getLogger(__name__)

AppFactory = Callable[[], "tuple[Flask, Callable[[], None]]"]

HEADER_READ_TIMEOUT_MS = 10_000  # a client that has not sent its request head by then is cut off
GRACEFUL_SECONDS = 10  # requests under way on SIGTERM get this long to finish
HEAD_BYTES = 32 * 1024  # request line and headers larger than this are refused (431) before the app sees them


def serve(settings: ServiceSettings, build: AppFactory) -> None:
    """Serve until SIGTERM or SIGINT, then release what the app holds (cluster, registrations)."""
    {"granian": _granian, "gunicorn": _gunicorn, "dev": _dev}[settings.server](settings, build)


class _QuietThreadAdvice(logging.Filter):
    """granian advises against more Python threads than 2 × cores + 1; ours mostly wait on I/O."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith("Configuration allows spawning")


def _granian(settings: ServiceSettings, build: AppFactory) -> None:
    from granian.constants import HTTPModes, Interfaces
    from granian.http import HTTP1Settings
    from granian.log import LogLevels
    from granian.server import Server

    closers: list[Callable[[], None]] = []  # filled in the worker process, where the app lives

    def load_app():
        app, close = build()
        closers.append(close)
        return app

    def worker(*args):  # granian's own WSGI worker (pinned in pyproject.toml), then the app's close
        try:
            Server._spawn_wsgi_worker(*args)
        finally:
            for close in closers:
                close()

    # granian's records go through the service's own log format
    logging.getLogger("_granian").addFilter(_QuietThreadAdvice())
    log_config = {"version": 1, "disable_existing_loggers": False,
                  "loggers": {"_granian": {"level": "WARNING", "propagate": True, "handlers": []}}}
    server = Server(
        settings.instance,  # granian's name for the target; load_app is what it loads
        address=settings.host, port=settings.port, interface=Interfaces.WSGI,
        workers=1, blocking_threads=settings.threads, runtime_threads=1, http=HTTPModes.http1,
        http1_settings=HTTP1Settings(header_read_timeout=HEADER_READ_TIMEOUT_MS, max_buffer_size=HEAD_BYTES),
        log_level=LogLevels.warning, log_dictconfig=log_config, workers_kill_timeout=GRACEFUL_SECONDS,
        respawn_failed_workers=True,
    )
    server.serve(spawn_target=worker, target_loader=load_app, wrap_loader=False)


def _gunicorn(settings: ServiceSettings, build: AppFactory) -> None:
    from gunicorn.app.base import BaseApplication

    class Gunicorn(BaseApplication):
        def load_config(self):
            s = settings
            for key, value in {"bind": f"{s.host}:{s.port}", "workers": 1, "worker_class": "gthread",
                               "threads": s.threads, "keepalive": 30, "graceful_timeout": GRACEFUL_SECONDS,
                               "timeout": 60, "accesslog": None, "loglevel": "warning", "proc_name": s.instance,
                               "worker_exit": self._worker_exit}.items():
                self.cfg.set(key, value)

        def load(self):
            app, self._close = build()
            return app

        def _worker_exit(self, server, worker):
            close = getattr(self, "_close", None)
            if close is not None:
                close()

    Gunicorn().run()


def _dev(settings: ServiceSettings, build: AppFactory) -> None:
    app, close = build()

    def stop(signum, frame):
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, stop)
    try:
        app.run(host=settings.host, port=settings.port, threaded=True, use_reloader=False)
    finally:
        close()
