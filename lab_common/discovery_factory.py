"""Builds the discovery the settings ask for (config server or Consul)."""

from __future__ import annotations

from collections.abc import Callable

import requests

from lab_common.discovery import CachedDiscovery, Discovery, config_server_lookup
from lab_common.settings import Settings


def make_discovery(settings: Settings, session: requests.Session) -> tuple[Discovery, Callable[[], None]]:
    if settings.discovery == "config-server":
        lookup = config_server_lookup(settings.config_server, session, settings.http_timeout)
        return CachedDiscovery(lookup, ttl=settings.discovery_ttl, source=settings.config_server), lambda: None
    raise ValueError(f"unknown discovery {settings.discovery!r}")
