"""The one `main` every service shares: settings (as the discovery completes them), logging, build the app,
serve, close. Registration where callers find the copy is the composition root's (`findable`).

A service names its builder as "module:function": it is imported in the server's worker, after the
fork, so the master process stays small (the server and the settings, no Flask, no Hazelcast client).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import importlib
import ipaddress
import logging
import os
import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from lab_common.discovery_factory import settled
from lab_common.logs import configure_logging
from lab_common.serving import serve
from lab_common.settings import ServiceSettings, SettingsError

if TYPE_CHECKING:
    from flask import Flask

log = logging.getLogger(__name__)

Builder = Callable[[ServiceSettings], "tuple[Flask, Callable[[], None]]"]

MALLOC_ARENAS = 2  # glibc's default is 8 per core: request threads then keep freed memory in arenas of their own
M_ARENA_MAX = -8  # mallopt's parameter number, from glibc's malloc.h


def run_service(settings_class: type[ServiceSettings], service: str, default_port: int, build: Builder | str,
                argv: Sequence[str] | None = None) -> int:
    limit_malloc_arenas()
    try:
        settings = settings_class.load(service, default_port=default_port, environ=os.environ, argv=argv)
        configure_logging(settings.instance, settings.log_level)
        settings = settled(settings)
    except SettingsError as err:
        sys.stderr.write(f"{service}: {err}\n")
        return 2
    log.info("starting %s on %s (%s server, %s discovery)", settings.instance, settings.base_url, settings.server,
             settings.discovery)
    if not is_loopback(settings.host):
        log.warning("%s listens on %s, not on loopback: anyone who can reach this host can post, read every "
                    "message and see its health; it has no authentication. Bind 127.0.0.1 unless you mean it.",
                    settings.instance, settings.host)
    serve(settings, lambda: _built(settings, build))
    log.info("%s stopped", settings.instance)
    return 0


def is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def limit_malloc_arenas() -> None:
    """Cap glibc's malloc arenas for this process (and a worker forked from it): after a large full
    read, memory freed by one request thread is then reused by the others instead of staying held."""
    libc_name = ctypes.util.find_library("c")
    if libc_name and hasattr(libc := ctypes.CDLL(libc_name), "mallopt"):
        libc.mallopt(M_ARENA_MAX, MALLOC_ARENAS)


def _resolve(build: Builder | str) -> Builder:
    if callable(build):
        return build
    module, _, name = build.partition(":")
    return getattr(importlib.import_module(module), name)


def _built(settings: ServiceSettings, build: Builder | str) -> tuple[Flask, Callable[[], None]]:
    limit_malloc_arenas()  # again in the worker, in case the server spawned it rather than forked it
    return _resolve(build)(settings)
