"""The reactor waker fix, against the client library's own waker class (no cluster needed)."""

import os

import lab_common.cluster  # noqa: F401  (applies the fix on import)
from hazelcast import reactor


def pending_bytes(waker) -> int:
    try:
        return len(os.read(waker._read_fd, 4096))
    except BlockingIOError:
        return 0


def test_a_wake_that_races_the_drain_leaves_no_raised_flag_over_an_empty_pipe(monkeypatch):
    waker = reactor._PipedWaker({})
    try:
        waker.wake()  # a request queued: flag up, one byte in the pipe
        real_read = os.read
        raced = []

        def read_while_another_thread_wakes(fd, n):
            if not raced:
                raced.append(True)
                waker.wake()  # another thread queues a request while the reactor drains the pipe
            return real_read(fd, n)

        monkeypatch.setattr(os, "read", read_while_another_thread_wakes)
        waker.handle_read()
        monkeypatch.setattr(os, "read", real_read)
        # the invariant the reactor relies on: a raised flag means a byte is waiting to wake it
        assert not waker.awake or pending_bytes(waker) > 0
        waker.wake()
        assert waker.awake and pending_bytes(waker) == 1  # the next wake really writes
    finally:
        waker.close()


def test_the_reactor_sleeps_until_its_next_timer_within_bounds():
    from collections import deque
    from types import SimpleNamespace

    from lab_common.hazelcast_fixes import BUSY_POLL, LONGEST_POLL, poll_timeout

    def loop(timers=(), new=()):
        return SimpleNamespace(_timers=list(timers), _new_timers=deque(new))

    assert poll_timeout(loop(), now=100.0) == LONGEST_POLL
    assert abs(poll_timeout(loop([(100.03, None)]), now=100.0) - 0.03) < 1e-9
    assert poll_timeout(loop([(99.0, None)]), now=100.0) == 0.0  # overdue: look at once
    assert poll_timeout(loop([(105.0, None)]), now=100.0) == LONGEST_POLL
    assert poll_timeout(loop([(105.0, None)], new=[(100.5, None)]), now=100.0) == BUSY_POLL


def test_the_patched_loop_is_the_one_the_client_runs():
    from lab_common.hazelcast_fixes import _poll_until_next_timer

    assert reactor._WakeableLoop.run_loop is _poll_until_next_timer


def test_a_member_that_accepts_and_never_answers_holds_a_connection_attempt_for_the_connection_timeout_only():
    """A hung member's kernel accepts the client's connection; the member never answers its authentication.
    The client as released waits for that answer without a bound (its constructor never returns); with the
    fix each attempt is given up after `connection_timeout`, the client tries again, and it gives up on the
    cluster after `cluster_connect_timeout` as it does when no member is there at all."""
    import threading

    from hazelcast.errors import IllegalStateError

    import hazelcast
    from tests.helpers import SilentServer

    member = SilentServer()
    outcome = []

    def build_client():
        try:
            hazelcast.HazelcastClient(cluster_members=[member.address], cluster_name="silent", connection_timeout=0.5,
                                      cluster_connect_timeout=3.0, statistics_enabled=False)
        except Exception as err:  # noqa: BLE001 (the outcome is the assertion)
            outcome.append(err)

    builder = threading.Thread(target=build_client, daemon=True)
    builder.start()
    builder.join(60)  # not a speed bound: without the fix the thread never ends
    member.close()
    assert not builder.is_alive(), "the client is still waiting for the silent member's authentication answer"
    assert len(outcome) == 1 and isinstance(outcome[0], IllegalStateError)
    assert member.accepted >= 2  # each attempt gave up and the client tried again
