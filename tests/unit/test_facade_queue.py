"""The facade's queue adapter against a fake of the cluster connection: offers made while one is on its
way leave together, and a failed add_all reaches every offer in it."""

import threading

import orjson
import pytest
from hazelcast.errors import TargetDisconnectedError
from hazelcast.future import Future

from facade_service.adapters import HazelcastQueue
from lab_common.errors import Unavailable
from tests.helpers import eventually


class FakeQueueProxy:
    """add_all answers a Hazelcast future the test completes; every call is recorded."""

    def __init__(self):
        self.calls: list[list[str]] = []
        self.futures: list[Future] = []
        self.lock = threading.Lock()

    def add_all(self, items):
        with self.lock:
            self.calls.append([orjson.loads(item)["uuid"] for item in items])
            self.futures.append(Future())
            return self.futures[-1]


class FakeConnection:
    def __init__(self, proxy: FakeQueueProxy | None):
        self.queue = proxy

    def proxy(self, kind, name, *, blocking=True):
        assert kind == "queue" and not blocking
        if self.queue is None:
            raise Unavailable("Hazelcast cluster unavailable: fake")
        return self.queue


def offer_in_thread(queue: HazelcastQueue, uuid: str, outcome: dict) -> threading.Thread:
    def run():
        try:
            queue.offer(uuid, f"msg of {uuid}")
            outcome[uuid] = "queued"
        except Unavailable as err:
            outcome[uuid] = err.message

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def test_offers_made_while_one_is_on_its_way_leave_together_in_the_next_add_all():
    proxy = FakeQueueProxy()
    queue = HazelcastQueue(FakeConnection(proxy), "q")
    outcome: dict = {}
    first = offer_in_thread(queue, "a", outcome)
    eventually(lambda: proxy.calls == [["a"]], timeout=5)
    others = [offer_in_thread(queue, uuid, outcome) for uuid in ("b", "c")]
    eventually(lambda: len(queue._waiting) == 2, timeout=5)
    assert proxy.calls == [["a"]]  # nothing else leaves while the first is on its way
    proxy.futures[0].set_result(True)
    eventually(lambda: len(proxy.calls) == 2, timeout=5)
    assert sorted(proxy.calls[1]) == ["b", "c"]
    proxy.futures[1].set_result(True)
    for thread in (first, *others):
        thread.join(5)
    assert outcome == {"a": "queued", "b": "queued", "c": "queued"}
    assert queue._sending is False


def test_a_failed_add_all_reaches_every_offer_in_it_and_each_is_tried_again():
    proxy = FakeQueueProxy()
    queue = HazelcastQueue(FakeConnection(proxy), "q")
    outcome: dict = {}
    threads = [offer_in_thread(queue, "a", outcome)]
    eventually(lambda: proxy.calls == [["a"]], timeout=5)
    threads.append(offer_in_thread(queue, "b", outcome))
    eventually(lambda: len(queue._waiting) == 1, timeout=5)
    proxy.futures[0].set_exception(TargetDisconnectedError("member gone"))  # "a" may or may not have landed
    eventually(lambda: len(proxy.calls) >= 2, timeout=5)
    while any(t.is_alive() for t in threads):  # answer every add_all from now on
        with proxy.lock:
            for future in proxy.futures:
                if not future.done():
                    future.set_result(True)
        threads[0].join(0.05)
    sent = [uuid for call in proxy.calls for uuid in call]
    assert sent.count("a") == 2 and sent.count("b") == 1  # "a" was tried again; consumers drop a repeat
    assert outcome == {"a": "queued", "b": "queued"}


def test_without_a_cluster_an_offer_is_unavailable_at_once():
    queue = HazelcastQueue(FakeConnection(None), "q")
    with pytest.raises(Unavailable, match="cluster unavailable"):
        queue.offer("a", "m")
    assert queue._sending is False
