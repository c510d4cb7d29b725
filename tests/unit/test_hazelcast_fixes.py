"""The Hazelcast client fixes, against the client library's own classes (no cluster needed), and who installs
them: each composition root, before it connects."""

import os

import pytest

from hazelcast import reactor
from lab_common import hazelcast_fixes

hazelcast_fixes.apply()


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


def test_importing_the_cluster_module_patches_nothing():
    """The patches are installed by an explicit call, never as a side effect of an import."""
    import subprocess
    import sys

    code = ("import lab_common.cluster, facade_service.bootstrap, logging_service.bootstrap\n"
            "import messages_service.bootstrap\n"
            "from hazelcast import reactor\n"
            "print(reactor._PipedWaker.handle_read.__name__)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.strip() == "handle_read"


class ConnectionMade(Exception):
    pass


@pytest.fixture
def applied_before_connecting(monkeypatch):
    """Records, for each cluster connection a composition root makes, whether the fixes were applied
    first; the connection itself is not made (ConnectionMade)."""
    import lab_common.cluster
    import messages_service.bootstrap

    applied, seen = [], []
    monkeypatch.setattr(hazelcast_fixes, "apply", lambda: applied.append(True))

    def connection(*args, **kwargs):
        seen.append(bool(applied))
        raise ConnectionMade

    monkeypatch.setattr(lab_common.cluster, "ClusterConnection", connection)
    monkeypatch.setattr(messages_service.bootstrap, "ClusterConnection", connection)  # imported at its top
    return seen


def test_each_service_applies_the_fixes_before_it_connects(applied_before_connecting, tmp_path):
    from facade_service import bootstrap as facade
    from facade_service.settings import FacadeSettings
    from logging_service import bootstrap as logging_root
    from logging_service.settings import LoggingSettings
    from messages_service import bootstrap as messages
    from messages_service.settings import MessagesSettings

    def load(settings_class):
        return settings_class.load("test-service", default_port=9999, environ={}, argv=[], instance="test-1",
                                   **({"journal": str(tmp_path / "journal.jsonl")}
                                      if settings_class is MessagesSettings else {}))

    attempts = [
        lambda: facade.connect_cluster(facade.Wiring(load(FacadeSettings), http=None, discovery=None)),
        lambda: logging_root.hazelcast_store(load(LoggingSettings)),
        lambda: messages.build(load(MessagesSettings)),
    ]
    for attempt in attempts:
        with pytest.raises(ConnectionMade):
            attempt()
    assert applied_before_connecting == [True, True, True]
