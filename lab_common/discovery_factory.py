"""Builds the discovery the settings ask for (config server or Consul)."""

from __future__ import annotations

from lab_common.discovery import CachedDiscovery, Discovery, config_server_lookup
from lab_common.http_pool import HttpPool
from lab_common.settings import CallerSettings


def make_discovery(settings: CallerSettings, http: HttpPool) -> Discovery:
    if settings.discovery == "consul":
        from lab_common.consul_support import agent, consul_discovery

        return consul_discovery(settings, agent(settings, timeout=settings.http_timeout))
    lookup = config_server_lookup(settings.config_server, http, settings.http_timeout)
    return CachedDiscovery(lookup, ttl=settings.discovery_ttl, source=settings.config_server)
