"""A Hazelcast operation is waited for at most the invocation timeout (README, "No request hangs"): the
client's own timeout bounds its retries, not the wait for a member that holds an operation unanswered."""

import threading
import time

import pytest
from hazelcast.errors import HazelcastError, TargetDisconnectedError
from hazelcast.future import Future, ImmediateFuture

from facade_service.adapters.hazelcast import HazelcastQueue
from lab_common.cluster import BoundedProxy, ClusterConnection, NoAnswer, QuorumWatch, answer_within
from lab_common.errors import Unavailable
from lab_common.settings import HazelcastSettings


class FakeQueueProxy:
    """A fake of the client's non-blocking queue proxy: each offer answers the next prepared future."""

    name = "messages"

    def __init__(self, *answers: Future):
        self.answers = list(answers)
        self.offered: list[object] = []

    def offer(self, item):
        self.offered.append(item)
        return self.answers.pop(0)

    def blocking(self):  # the client's own blocking proxy: never to be used for the services' calls
        raise AssertionError("a blocking proxy waits without a bound")


def test_an_answer_the_cluster_never_gives_is_given_up_after_the_bound():
    began = time.monotonic()
    with pytest.raises(NoAnswer, match=r"messages.offer: no answer from the cluster within 0.2 s"):
        BoundedProxy(FakeQueueProxy(Future()), 0.2).offer("item")
    assert time.monotonic() - began >= 0.2
    assert issubclass(NoAnswer, HazelcastError)  # every adapter's HazelcastError handling answers 503


def test_an_answer_in_time_is_the_result_and_a_failure_is_raised_as_the_clients():
    late = Future()
    threading.Timer(0.05, late.set_result, args=(True,)).start()
    assert answer_within(late, 5.0, "offer") is True
    assert BoundedProxy(FakeQueueProxy(ImmediateFuture(False)), 5.0).offer("item") is False
    failed = Future()
    failed.set_exception(TargetDisconnectedError("gone"))
    with pytest.raises(TargetDisconnectedError):
        BoundedProxy(FakeQueueProxy(failed), 5.0).offer("item")


def test_what_is_not_a_call_or_answers_no_future_passes_through():
    proxy = BoundedProxy(FakeQueueProxy(), 5.0)
    assert proxy.name == "messages"
    with pytest.raises(AssertionError):
        proxy.blocking()


class FakeConnection:
    """A fake ClusterConnection whose queue proxy is bounded as the real one's is."""

    def __init__(self, proxy, seconds: float):
        self.bounded = BoundedProxy(proxy, seconds)
        self.quorum = QuorumWatch(lambda: None)

    unavailable = ClusterConnection.unavailable  # the real mapping of the client's errors

    def proxy(self, kind: str, name: str, *, blocking: bool = True):
        return self.bounded


def test_the_facade_answers_503_once_for_an_offer_a_hung_member_holds_and_does_not_offer_it_again():
    held = FakeQueueProxy(Future(), Future(), Future())
    queue = HazelcastQueue(FakeConnection(held, 0.1), "messages")
    with pytest.raises(Unavailable, match="no answer from the cluster"):
        queue.offer("u-1", "m")
    assert len(held.offered) == 1


def test_the_facade_offers_again_when_the_connection_was_lost():
    lost = Future()
    lost.set_exception(TargetDisconnectedError("gone"))
    flaky = FakeQueueProxy(lost, ImmediateFuture(True))
    HazelcastQueue(FakeConnection(flaky, 1.0), "messages").offer("u-1", "m")
    assert len(flaky.offered) == 2


def test_the_connection_bounds_its_blocking_proxies_by_the_invocation_timeout():
    class FakeClient:
        def get_queue(self, name):
            return FakeQueueProxy(Future())

    connection = ClusterConnection(HazelcastSettings(hz_invocation_timeout=0.1))
    connection._client = FakeClient()
    connection._connected.set()
    with pytest.raises(NoAnswer):
        connection.proxy("queue", "messages").offer("item")
    assert isinstance(connection.proxy("queue", "messages", blocking=False).offer("item"), Future)
