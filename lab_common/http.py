"""Calls to other services: pooled keep-alive connections, a timeout on every call, and tenacity
retries that fail over to another copy on each attempt."""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass

import orjson
import requests
from requests.adapters import HTTPAdapter
from tenacity import RetryError, Retrying, retry_if_exception_type, stop_after_attempt, wait_exponential

from lab_common.discovery import Discovery
from lab_common.errors import Unavailable

log = logging.getLogger(__name__)


def pooled_session(pool_size: int = 32) -> requests.Session:
    session = requests.Session()
    adapter = HTTPAdapter(pool_connections=8, pool_maxsize=pool_size, max_retries=0)
    session.mount("http://", adapter)
    return session


class CopyFailed(Exception):
    """One copy did not answer usefully (connection error, timeout or 5xx); another may."""


@dataclass(frozen=True)
class Reply:
    copy: str
    status: int
    body: dict


class ServiceClient:
    """Calls one named service, choosing a random copy and another one on each retry."""

    def __init__(self, service: str, discovery: Discovery, session: requests.Session, *,
                 timeout: float, attempts: int, backoff: float = 0.05):
        self.service = service
        self._discovery = discovery
        self._session = session
        self._timeout = timeout
        self._attempts = attempts
        self._backoff = backoff

    def call(self, method: str, path: str, **kwargs) -> Reply:
        """The first reply below 500; Unavailable when every attempt failed."""
        copies = self._copies_in_random_order()
        retrying = Retrying(
            stop=stop_after_attempt(self._attempts),
            wait=wait_exponential(multiplier=self._backoff, max=1.0),
            retry=retry_if_exception_type(CopyFailed),
            reraise=False,
        )
        failures: list[str] = []
        try:
            for attempt in retrying:
                with attempt:
                    copy = copies[(attempt.retry_state.attempt_number - 1) % len(copies)]
                    try:
                        return self._call_copy(copy, method, path, **kwargs)
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

    def call_copy(self, copy: str, method: str, path: str, **kwargs) -> Reply:
        """One call to one given copy, no retries; Unavailable if it does not answer."""
        try:
            return self._call_copy(copy, method, path, **kwargs)
        except CopyFailed as err:
            raise Unavailable(str(err)) from err

    def _copies_in_random_order(self) -> list[str]:
        copies = self._discovery.addresses(self.service)
        return random.sample(copies, len(copies))

    def _call_copy(self, copy: str, method: str, path: str, **kwargs) -> Reply:
        try:
            kwargs.setdefault("timeout", self._timeout)
            response = self._session.request(method, copy + path, **kwargs)
        except requests.RequestException as err:
            log.warning("%s %s%s failed: %s", method, copy, path, type(err).__name__)
            raise CopyFailed(f"{copy}: {type(err).__name__}") from err
        if response.status_code >= 500:
            log.warning("%s %s%s answered %s", method, copy, path, response.status_code)
            raise CopyFailed(f"{copy}: HTTP {response.status_code}")
        try:
            body = orjson.loads(response.content)
        except orjson.JSONDecodeError as err:
            raise CopyFailed(f"{copy}: answer is not JSON") from err
        return Reply(copy=copy, status=response.status_code, body=body)
