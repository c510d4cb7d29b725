"""Three fixes for hazelcast-python-client 5.7.0, installed by `apply()`, which each composition root that
connects to the cluster calls before it does (the services' bootstraps, the benchmark's pieces): in its
reactor, the waker race (a lost wake-up made every request wait 10 ms) and the idle spin (a 10 ms poll loop
in every idle process); in its connection manager, an authentication that waited without a bound on a member
that accepts connections and never answers (a hung member held a client being built for the whole hang).
Why and how: docs/internals.md, "The Hazelcast client".
"""

from __future__ import annotations

import asyncore
import os
import time

from hazelcast.errors import TargetDisconnectedError

from hazelcast import connection, reactor

BUSY_POLL = 0.01  # the client's own poll timeout
LONGEST_POLL = 0.1


def _drain_then_lower(self) -> None:
    """Drain the pipe, then lower the flag: invariant, flag up => a byte pending."""
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


def _bounded(authenticate):
    """`authenticate`, with the connection closed when its authentication is not answered within the
    client's connection timeout: the client then tries another member, as after a refused connection."""

    def authenticate_within(self, conn):
        answer = authenticate(self, conn)
        seconds = self._config.connection_timeout

        def give_up() -> None:
            if not answer.done():
                conn.close_connection(f"authentication not answered within {seconds:g} s",
                                      TargetDisconnectedError(f"{conn} did not answer authentication"))

        timer = self._reactor.add_timer(seconds, give_up)
        answer.add_done_callback(lambda _answer: timer.cancel())
        return answer

    authenticate_within.bounded = True
    return authenticate_within


def apply() -> None:
    """Patch the waker, the loop and the authentication of the pinned client version (pyproject.toml); a
    client without them is left alone."""
    manager = getattr(connection, "ConnectionManager", None)
    authenticate = getattr(manager, "_authenticate", None)
    if authenticate is not None and not getattr(authenticate, "bounded", False):
        manager._authenticate = _bounded(authenticate)
    waker = getattr(reactor, "_PipedWaker", None)
    if waker is not None and getattr(waker.handle_read, "__name__", "") != _drain_then_lower.__name__:
        waker.handle_read = _drain_then_lower
    loop = getattr(reactor, "_WakeableLoop", None)
    if waker is not None and loop is not None and loop._waker_class is waker:
        loop.run_loop = _poll_until_next_timer
