"""Helpers shared by the test suites."""

from __future__ import annotations

import os
import socket
import subprocess
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

from labctl.launcher import System, Topology

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


def rendered(url: str) -> str:
    """A page's DOM after its script has run, as Debian's chromium renders it headless (its virtual time lets
    the status page's first refresh land)."""
    from labctl.deps import ensure_chromium

    with tempfile.TemporaryDirectory() as profile:
        result = subprocess.run(
            [ensure_chromium(), "--headless=new", "--no-sandbox", "--disable-gpu", f"--user-data-dir={profile}",
             "--virtual-time-budget=4000", "--dump-dom", url],
            capture_output=True, text=True, timeout=60, check=True)
    return result.stdout


class SilentServer:
    """A server on a port of its own that accepts every connection and never answers, as a hung process
    does (its kernel still accepts): a silent logging copy, or a frozen Hazelcast member. How long each caller
    held its connection before giving up (closing it) is recorded in `held` (from when this thread got to
    accept it: on a busy machine that can be later than the caller connected, so the caller's own clock says
    how long it waited)."""

    def __init__(self):
        self._server = socket.create_server(("127.0.0.1", 0))
        self._lock = threading.Lock()
        self._open: list[socket.socket] = []
        self.held: list[float] = []
        self.accepted = 0
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self._server.getsockname()[1]}"

    @property
    def url(self) -> str:
        return f"http://{self.address}"

    def _accept(self) -> None:
        while True:
            try:
                connection, _ = self._server.accept()
            except OSError:  # closed
                return
            with self._lock:
                self.accepted += 1
                self._open.append(connection)
            threading.Thread(target=self._hold, args=(connection, time.monotonic()), daemon=True).start()

    def _hold(self, connection: socket.socket, since: float) -> None:
        try:
            while connection.recv(65536):  # read the request, answer nothing, until the caller hangs up
                pass
        except OSError:
            return
        with self._lock:
            self.held.append(time.monotonic() - since)

    def forget(self, within: float = 60.0) -> None:
        """Start counting afresh, once every caller so far has given its connection up."""
        eventually(lambda: len(self.held) == self.accepted, timeout=within)
        with self._lock:
            self.accepted, self.held = 0, []

    def close(self) -> None:
        self._server.close()
        with self._lock:
            for connection in self._open:
                connection.close()


def assert_real_png(path: Path, *, width: int, height: int, min_bytes: int = 10_000) -> None:
    """The file is a PNG of that size, and not blank: its pixels are not all one colour (a chart or a
    screenshot with something drawn on it)."""
    from matplotlib import image

    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    assert len(data) >= min_bytes, f"{path}: {len(data)} bytes"
    pixels = image.imread(path)
    assert pixels.shape[:2] == (height, width), pixels.shape
    flat = pixels.reshape(-1, pixels.shape[-1])
    assert (flat != flat[0]).any(axis=1).mean() > 0.01, f"{path} is (almost) one colour"
