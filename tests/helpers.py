"""Helpers shared by the test suites."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def eventually(check: Callable[[], T], timeout: float = 10.0, interval: float = 0.1) -> T:
    """Call `check` until it stops raising AssertionError (or returns truthy); re-raise at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            result = check()
            if result is None or result:
                return result
            raise AssertionError(f"{check} returned {result!r}")
        except AssertionError:
            if time.monotonic() > deadline:
                raise
        time.sleep(interval)


def port_offset(suite_default: int) -> int:
    """A suite's port offset: its own default, moved by LAB_TEST_PORT_SHIFT (a small number such as 40) so
    that two test runs on one machine can go side by side without sharing a port."""
    return suite_default + int(os.environ.get("LAB_TEST_PORT_SHIFT", "0"))
