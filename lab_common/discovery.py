"""Where a service's copies are: the config server (default) or Consul, behind one small interface."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Protocol

import orjson

from lab_common import metrics
from lab_common.errors import Unavailable
from lab_common.http_pool import HttpPool, TransportError

log = logging.getLogger(__name__)


class NoCopies(Unavailable):
    """The source answered, and lists no copy of the service: a system without it (the lab's Task 3 has no
    messages copies). Not a fault of the source: its cached addresses are not served instead."""


class Discovery(Protocol):
    def addresses(self, service: str) -> list[str]:
        """Base URLs of the service's copies; raises Unavailable when none is known."""

    def invalidate(self, service: str) -> None:
        """Forget what is cached, so the next call asks again (after a call to a copy failed)."""

    def status(self) -> dict:
        """For /health: is the source reachable, and what is served from cache."""


class CachedDiscovery:
    """TTL cache over a lookup function. When the source is down, the last known answer is served."""

    def __init__(self, lookup: Callable[[str], list[str]], *, ttl: float, source: str, clock=time.monotonic):
        self._lookup = lookup
        self._ttl = ttl
        self._source = source
        self._clock = clock
        self._cache: dict[str, tuple[float, list[str]]] = {}
        self._lock = threading.Lock()
        self._source_error: str | None = None

    def addresses(self, service: str) -> list[str]:
        now = self._clock()
        with self._lock:
            cached = self._cache.get(service)
        if cached and now - cached[0] < self._ttl:
            metrics.record_lookup(service, "cached")
            return cached[1]
        try:
            found = self._lookup(service)
        except NoCopies:
            self._source_error = None
            metrics.record_lookup(service, "none")
            raise
        except Unavailable as err:
            self._source_error = err.message
            if cached:
                log.warning("%s; using the last known addresses of %s", err.message, service)
                metrics.record_lookup(service, "stale")
                return cached[1]
            metrics.record_lookup(service, "failed")
            raise
        metrics.record_lookup(service, "fetched")
        self._source_error = None
        with self._lock:
            self._cache[service] = (now, found)
        return found

    def invalidate(self, service: str) -> None:
        with self._lock:
            cached = self._cache.get(service)
            if cached:
                self._cache[service] = (float("-inf"), cached[1])

    def status(self) -> dict:
        return {
            "source": self._source,
            "reachable": self._source_error is None,
            **({"error": self._source_error, "serving": "cached addresses"} if self._source_error else {}),
        }


def config_server_lookup(base_url: str, http: HttpPool, timeout: float) -> Callable[[str], list[str]]:
    def lookup(service: str) -> list[str]:
        try:
            response = http.request("GET", base_url.rstrip("/"), f"/services/{service}", timeout=timeout)
            body = orjson.loads(response.data) if response.status == 200 else {}
        except TransportError as err:
            raise Unavailable(f"config server {base_url} unreachable: {type(err).__name__}") from err
        except orjson.JSONDecodeError as err:
            raise Unavailable(f"config server answered something not JSON for {service!r}") from err
        if response.status == 404:
            raise Unavailable(f"config server knows no service {service!r}")
        if response.status != 200:
            raise Unavailable(f"config server answered {response.status} for {service!r}")
        addresses = body.get("addresses") or []
        if not addresses:
            raise NoCopies(f"config server lists no copies of {service!r}")
        return list(addresses)

    return lookup
