"""Failover across a service's copies, whatever the transport: a random copy first, another one on each
retry (tenacity), discovery asked again after a copy failed. HTTP calls (lab_common.http.ServiceClient) and
the facade's gRPC log calls (facade_service.grpc_logging) both go through it."""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

from tenacity import RetryError, Retrying, retry_if_exception_type, stop_after_attempt, wait_exponential

from lab_common import metrics
from lab_common.errors import Unavailable

if TYPE_CHECKING:
    from lab_common.discovery import Discovery

T = TypeVar("T")


class CopyFailed(Exception):
    """One copy did not answer usefully (connection error, timeout, 5xx or a gRPC UNAVAILABLE); another may."""


class Failover:
    """Calls copies of one named service until one answers, at most `attempts` calls in all."""

    def __init__(self, service: str, discovery: Discovery, *, attempts: int, backoff: float = 0.05):
        self.service = service
        self._discovery = discovery
        # its state lives in thread-locals: one Retrying serves every request thread
        self._retrying = Retrying(stop=stop_after_attempt(attempts), wait=wait_exponential(multiplier=backoff, max=1.0),
                                  retry=retry_if_exception_type(CopyFailed), reraise=False)

    def run(self, call: Callable[[str], T]) -> T:
        """`call(address)` on one copy after another until one does not raise CopyFailed; Unavailable,
        naming every failure, when no attempt succeeded. Any other error ends it at once."""
        copies = self._copies_in_random_order()
        failures: list[str] = []
        try:
            for attempt in self._retrying:
                with attempt:
                    address = copies[(attempt.retry_state.attempt_number - 1) % len(copies)]
                    if attempt.retry_state.attempt_number > 1:
                        metrics.record_retry(self.service)
                    try:
                        return call(address)
                    except CopyFailed as err:
                        failures.append(str(err))
                        self._discovery.invalidate(self.service)
                        fresh = self._discovery.addresses(self.service)
                        if set(fresh) != set(copies):
                            copies = random.sample(fresh, len(fresh))
                        raise
        except RetryError:
            pass
        raise Unavailable(f"no copy of {self.service} answered", attempts=failures)

    def _copies_in_random_order(self) -> list[str]:
        copies = self._discovery.addresses(self.service)
        return random.sample(copies, len(copies))
