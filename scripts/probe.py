"""Reading the services: waiting on a probe until it answers what is wanted."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

import requests

T = TypeVar("T")


def wait_for(probe: Callable[[], T], ok: Callable[[T], bool], timeout: float,
             interval: float = 0.25) -> tuple[T | None, float | None]:
    """Probe until `ok` holds or `timeout` passes: the last value read, and the seconds it took (None if never).
    A probe that fails (no answer, not JSON) counts as not yet."""
    started = time.monotonic()
    value = None
    while True:
        try:
            value = probe()
        except (requests.RequestException, ValueError, KeyError):
            pass
        else:
            if ok(value):
                return value, time.monotonic() - started
        if time.monotonic() - started > timeout:
            return value, None
        time.sleep(interval)
