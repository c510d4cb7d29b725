"""Helpers shared by the test suites."""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

from scripts.launcher import System, Topology

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


@contextmanager
def started_system(run_dir: Path, label: str, **topology) -> Iterator[System]:
    """A whole system started by the launcher in `run_dir` on a cluster of its own (named after `label`), with
    `topology`'s fields (port_offset, transport, ...), stopped afterwards whatever happened."""
    system = System(run_dir)
    try:
        system.start(Topology(cluster_name=f"{label}-{uuid.uuid4().hex[:8]}", **topology), timeout=120)
        yield system
    finally:
        system.stop()
