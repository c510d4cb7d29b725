"""Consul: the second discovery mode. Registration with an HTTP health check (and, for a copy that also
serves gRPC, a second service with a gRPC health check), discovery through the passing instances only, and
the cluster settings kept in Consul KV.

py-consul is the maintained fork of python-consul (abandoned in 2018); both install the module `consul`.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Callable
from typing import TypeVar

import consul
import requests

from lab_common.contracts import GRPC_TAG, grpc_service
from lab_common.discovery import CachedDiscovery
from lab_common.errors import Unavailable
from lab_common.settings import CallerSettings, GrpcServerSettings, ServiceSettings, SettingsError

log = logging.getLogger(__name__)

KV_PREFIX = "lab/"
# Consul KV key -> the settings field it sets (in each service whose settings have that field).
KV_SETTINGS: dict[str, str] = {
    "hazelcast/cluster-name": "hz_cluster_name",
    "hazelcast/members": "hz_members",
    "names/logging-map": "logging_map",
    "names/messages-queue": "messages_queue",
    "names/received-map": "received_map",
}
CONSUL_ERRORS = (consul.ConsulException, requests.RequestException)
S = TypeVar("S", bound=ServiceSettings)


def agent(settings: ServiceSettings, timeout: float = 2.0) -> consul.Consul:
    host, _, port = settings.consul.rpartition(":")
    return consul.Consul(host=host, port=int(port), connections_timeout=timeout)


def kv_defaults(settings: ServiceSettings) -> dict[str, str]:
    """What `seed_kv` writes: the values the settings hold (the repo's defaults unless overridden); they
    must have every KV field, as messages-service's settings do."""
    values = {}
    for key, name in KV_SETTINGS.items():
        value = getattr(settings, name)
        values[key] = ",".join(value) if isinstance(value, tuple) else str(value)
    return values


def seed_kv(client: consul.Consul, values: dict[str, str]) -> None:
    for key, value in values.items():
        client.kv.put(KV_PREFIX + key, value)


def settings_from_kv(settings: S, client: consul.Consul, *, wait: float = 60.0,
                     sleep: Callable[[float], None] = time.sleep) -> S:
    """The settings with the cluster and object names read from KV, waiting (bounded) for every key; a
    service takes the values of the fields its settings have."""
    deadline = time.monotonic() + wait
    announced = False
    while True:
        try:
            found = {key: client.kv.get(KV_PREFIX + key)[1] for key in KV_SETTINGS}
        except CONSUL_ERRORS as err:
            found, problem = {}, f"Consul at {settings.consul} unreachable ({type(err).__name__})"
        else:
            missing = [KV_PREFIX + k for k, item in found.items() if item is None]
            problem = f"waiting for Consul KV keys {', '.join(missing)} (seed them: labctl consul-seed)"
            if not missing:
                break
        if time.monotonic() > deadline:
            raise SettingsError(f"{problem}; gave up after {wait:.0f}s")
        if not announced:
            log.warning("%s", problem)
            announced = True
        sleep(1.0)
    parsers = {f.name: f.metadata["parse"] for f in dataclasses.fields(settings) if "parse" in f.metadata}
    changes = {name: parsers[name](found[key]["Value"].decode()) for key, name in KV_SETTINGS.items()
               if name in parsers}
    log.info("settings from Consul KV: %s", changes)
    return dataclasses.replace(settings, **changes)


class Registration:
    """This copy's entry in Consul: registered on start, with an HTTP check on /health every second; a copy
    with a gRPC port is also registered as `<service>-grpc`, tagged grpc, checked by grpc.health.v1.

    A keeper thread registers it again whenever the agent has forgotten it (an agent restarted in dev
    mode keeps nothing), so a copy never has to be restarted to become discoverable again."""

    def __init__(self, settings: ServiceSettings, client: consul.Consul, *, recheck_seconds: float = 3.0):
        self._settings = settings
        self._client = client
        self._recheck_seconds = recheck_seconds
        self._stop = threading.Event()
        self.service_id = f"{settings.service}-{settings.instance}-{settings.port}"
        grpc_port = settings.grpc_port if isinstance(settings, GrpcServerSettings) else 0
        self.grpc_service_id = (f"{grpc_service(settings.service)}-{settings.instance}-{grpc_port}" if grpc_port
                                else None)

    @property
    def ids(self) -> list[str]:
        return [self.service_id, *([self.grpc_service_id] if self.grpc_service_id else [])]

    def keep(self) -> Registration:
        """Register, then keep the registration in place until `deregister`."""
        try:
            self.register()
        except CONSUL_ERRORS as err:
            log.warning("Consul unreachable, registration will be retried: %s", type(err).__name__)
        threading.Thread(target=self._keep, name="consul-registration", daemon=True).start()
        return self

    def _keep(self) -> None:
        while not self._stop.wait(self._recheck_seconds):
            try:
                known = self._client.agent.services()
                if any(service_id not in known for service_id in self.ids):
                    self.register()
            except CONSUL_ERRORS:
                log.debug("Consul unreachable; will register when it is back", exc_info=True)

    def register(self) -> None:
        s = self._settings
        address = s.advertise or ("127.0.0.1" if s.host in ("0.0.0.0", "") else s.host)
        check = consul.Check.http(f"http://{address}:{s.port}/health", interval="1s", timeout="1s",
                                  deregister="1m")
        self._client.agent.service.register(s.service, service_id=self.service_id, address=address, port=s.port,
                                            check=check, meta={"instance": s.instance})
        if self.grpc_service_id:  # SERVING only while the copy can store (lab_common.grpc_support.StoreHealth)
            check = consul.Check.grpc(f"{address}:{s.grpc_port}", interval="1s", timeout="1s", deregister="1m")
            self._client.agent.service.register(grpc_service(s.service), service_id=self.grpc_service_id,
                                                address=address, port=s.grpc_port, tags=[GRPC_TAG], check=check,
                                                meta={"instance": s.instance})
        log.info("registered in Consul as %s", ", ".join(self.ids))

    def deregister(self) -> None:
        self._stop.set()
        for service_id in self.ids:
            try:
                self._client.agent.service.deregister(service_id)
                log.info("deregistered %s from Consul", service_id)
            except CONSUL_ERRORS as err:
                log.warning("could not deregister %s: %s", service_id, type(err).__name__)


def consul_discovery(settings: CallerSettings, client: consul.Consul) -> CachedDiscovery:
    """Base URLs of the passing instances only (host:port targets for those tagged grpc), cached for about a
    check interval."""

    def lookup(service: str) -> list[str]:
        try:
            _, entries = client.health.service(service, passing=True)
        except CONSUL_ERRORS as err:
            raise Unavailable(f"Consul at {settings.consul} unreachable: {type(err).__name__}") from err
        addresses = [address_of(e["Service"]) for e in entries]
        if not addresses:
            raise Unavailable(f"Consul lists no passing instance of {service!r}")
        return addresses

    return CachedDiscovery(lookup, ttl=min(settings.discovery_ttl, 1.0), source=f"consul {settings.consul}")


def address_of(service: dict) -> str:
    """How a caller reaches a registered instance: http://host:port, or host:port for gRPC."""
    target = f"{service['Address']}:{service['Port']}"
    return target if GRPC_TAG in (service.get("Tags") or ()) else f"http://{target}"
