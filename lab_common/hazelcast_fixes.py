"""Two fixes for hazelcast-python-client 5.7.0's reactor, applied when lab_common.cluster is imported.

1. The waker race.

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

2. The idle spin. The reactor polls with a 10 ms timeout whether or not anything is due, 100 loops a
second in every idle process. With the waker sound, a queued request interrupts the poll anyway, so
the loop can sleep until its next timer is due (the client re-arms one every 0.1 s): the patched loop
does that, and falls back to 10 ms while timers added by other threads wait to join the heap.
"""

from __future__ import annotations

import asyncore
import os
import time

from hazelcast import reactor

BUSY_POLL = 0.01  # the client's own poll timeout
LONGEST_POLL = 0.1


def _drain_then_lower(self) -> None:
    try:
        while len(os.read(self._read_fd, 4096)) == 4096:
            pass
    except OSError:  # EAGAIN: drained
        pass
    self.awake = False


def poll_timeout(loop, now: float) -> float:
    """How long the reactor may wait for its sockets: until its next timer is due, within bounds."""
    if loop._new_timers:
        return BUSY_POLL
    if not loop._timers:
        return LONGEST_POLL
    return min(LONGEST_POLL, max(0.0, loop._timers[0][0] - now))


def _poll_until_next_timer(self) -> None:
    asyncore.loop(timeout=poll_timeout(self, time.time()), use_poll=True, map=self._map, count=1)


def apply() -> None:
    """Patch the waker and the loop of the pinned client version (pyproject.toml); a client without them
    is left alone."""
    waker = getattr(reactor, "_PipedWaker", None)
    if waker is not None and getattr(waker.handle_read, "__name__", "") != _drain_then_lower.__name__:
        waker.handle_read = _drain_then_lower
    loop = getattr(reactor, "_WakeableLoop", None)
    if waker is not None and loop is not None and loop._waker_class is waker:
        loop.run_loop = _poll_until_next_timer
