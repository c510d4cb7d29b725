"""The discovery modes, the one place that knows them all: how a caller finds the copies of a service (config
server or Consul), what the discovery adds to a service's settings before it starts, and how a copy makes
itself findable while it serves. Services reach Consul only through these three."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

from lab_common.settings import CallerSettings, ServiceSettings

if TYPE_CHECKING:  # imported where used: a service's master process reads its settings here, and stays small
    from lab_common.discovery import Discovery
    from lab_common.http_pool import HttpPool

S = TypeVar("S", bound=ServiceSettings)
Built = Callable[[S], "tuple[object, Callable[[], None]]"]


def make_discovery(settings: CallerSettings, http: HttpPool) -> Discovery:
    from lab_common.discovery import CachedDiscovery, config_server_lookup

    if settings.discovery == "consul":
        from lab_common.consul_support import agent, consul_discovery

        return consul_discovery(settings, agent(settings, timeout=settings.http_timeout))
    lookup = config_server_lookup(settings.config_server, http, settings.http_timeout)
    return CachedDiscovery(lookup, ttl=settings.discovery_ttl, source=settings.config_server)


def settled(settings: S) -> S:
    """The settings as the discovery completes them, before the service starts: in Consul mode the cluster's
    and the objects' names read from KV (waiting, bounded, for every key; SettingsError if they never come);
    the config server's registry adds nothing."""
    if settings.discovery != "consul":
        return settings
    from lab_common.consul_support import agent, settings_from_kv

    return settings_from_kv(settings, agent(settings))


def findable(build: Built) -> Built:
    """A composition root's `build`, made findable: in Consul mode the copy is registered (with its health
    check, kept registered while it serves) once its app is built, and deregistered first on the way out, so
    no caller is sent to a copy that is closing. The config server's registry is a file: nothing to do."""

    @functools.wraps(build)
    def built_and_registered(settings):
        app, close = build(settings)
        if settings.discovery != "consul":
            return app, close
        from lab_common.consul_support import Registration, agent

        registration = Registration(settings, agent(settings)).keep()

        def deregister_then_close():
            registration.deregister()
            close()

        return app, deregister_then_close

    return built_and_registered
