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
        configure_logging(settings.instance, settings.log_level)
        if settings.discovery == "consul":
            from lab_common.consul_support import agent, settings_from_kv

            settings = settings_from_kv(settings, agent(settings))
    except SettingsError as err:
        sys.stderr.write(f"{service}: {err}\n")
        return 2
    log.info("starting %s on %s (%s server, %s discovery)", settings.instance, settings.base_url, settings.server,
             settings.discovery)
    serve(settings, lambda: _registered(settings, build))
    log.info("%s stopped", settings.instance)
    return 0


def _registered(settings: Settings, build: Builder) -> tuple[Flask, Callable[[], None]]:
    """Build the app; in Consul mode also register this copy, and deregister it first on the way out."""
    app, close = build(settings)
    if settings.discovery != "consul":
        return app, close
    from lab_common.consul_support import Registration, agent

    registration = Registration(settings, agent(settings)).keep()

    def deregister_then_close():
        registration.deregister()
        close()

    return app, deregister_then_close
