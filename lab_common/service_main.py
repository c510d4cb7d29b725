"""The one `main` every service shares: settings, logging, build the app, serve, close."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable, Sequence

from flask import Flask

from lab_common.logs import configure_logging
from lab_common.serving import serve
from lab_common.settings import Settings, SettingsError

log = logging.getLogger(__name__)

Builder = Callable[[Settings], tuple[Flask, Callable[[], None]]]


def run_service(service: str, default_port: int, build: Builder, argv: Sequence[str] | None = None) -> int:
    try:
        settings = Settings.load(service, default_port=default_port, environ=os.environ, argv=argv)
    except SettingsError as err:
        sys.stderr.write(f"{service}: {err}\n")
        return 2
    configure_logging(settings.instance, settings.log_level)
    log.info("starting %s on %s (%s server)", settings.instance, settings.base_url, settings.server)
    serve(settings, lambda: build(settings))
    log.info("%s stopped", settings.instance)
    return 0
