"""A fix for hazelcast-python-client 5.7.0's reactor waker, applied when lab_common.cluster is imported.

The reactor thread sleeps in poll() for up to 10 ms; a thread that queues a request wakes it by writing
a byte to a pipe, but only when the waker's `awake` flag is down, and the reactor's `handle_read` lowers
the flag *before* draining the pipe. A thread that wakes it between those two steps raises the flag and
writes a byte that the drain then swallows: the flag stays up with the pipe empty, nobody writes again,
and from then on every request waits for poll()'s 10 ms timeout. Concurrent requests hit this within a
few hundred calls: a map get went from 0.3 ms to 11 ms for the rest of the process's life, and a consumer
transaction (two round trips per message) from ~20 ms to ~1 s per 50 messages.

The fix drains first and lowers the flag after: a wake that comes in before the flag is lowered finds
it up and writes nothing, but its request is already queued, so the reactor's next poll() sees the
connection writable; one that comes after finds it down and writes. Invariant: flag up => a byte pending.
"""

from __future__ import annotations

import os

from hazelcast import reactor


def _drain_then_lower(self) -> None:
    try:
        while len(os.read(self._read_fd, 4096)) == 4096:
            pass
    except OSError:  # EAGAIN: drained
        pass
    self.awake = False


def apply() -> None:
    """Patch the waker of the pinned client version (pyproject.toml); a client without it is left alone."""
    waker = getattr(reactor, "_PipedWaker", None)
    if waker is not None and getattr(waker.handle_read, "__name__", "") != _drain_then_lower.__name__:
        waker.handle_read = _drain_then_lower
