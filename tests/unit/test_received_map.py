"""ReceivedMap.record over a fake of the map proxy: which answers count as this copy's records."""

from __future__ import annotations

from hazelcast.core import HazelcastJsonValue
from hazelcast.errors import TargetDisconnectedError
from hazelcast.future import ImmediateExceptionFuture, ImmediateFuture

from lab_common.contracts import QueueItem
from messages_service.adapters.hazelcast import ReceivedMap


class FakeReceivedProxy:
    """put_if_absent on a dict. `sent_twice`: uuids whose put lands, then is answered as a retry that found
    it (the member died before answering and the client sent it again); `unanswered`: uuids that fail."""

    def __init__(self, sent_twice=(), unanswered=()):
        self.entries: dict[str, HazelcastJsonValue] = {}
        self._sent_twice = set(sent_twice)
        self._unanswered = set(unanswered)

    def put_if_absent(self, key, value):
        if key in self._unanswered:
            return ImmediateExceptionFuture(TargetDisconnectedError("gone"))
        existing = self.entries.setdefault(key, value)
        if key in self._sent_twice:
            return ImmediateFuture(existing)
        return ImmediateFuture(None if existing is value else existing)


class Connection:
    operation_timeout = 1.0

    def __init__(self, proxy):
        self._proxy = proxy

    def proxy(self, kind, name, *, blocking=True):
        return self._proxy


def items(*uuids: str) -> list[QueueItem]:
    return [QueueItem(uuid, f"text of {uuid}", at=1) for uuid in uuids]


def test_a_put_answered_with_the_very_record_it_wrote_counts_as_recorded_by_this_copy():
    proxy = FakeReceivedProxy(sent_twice={"b"})
    outcome = ReceivedMap(Connection(proxy), "received").record("messages-2", items("a", "b"))
    assert [m.uuid for m in outcome.recorded] == ["a", "b"]
    assert (outcome.unanswered, outcome.failure) == (0, None)


def test_a_uuid_another_record_holds_is_not_this_copys_and_a_failed_put_is_unanswered():
    proxy = FakeReceivedProxy(unanswered={"c"})
    proxy.entries["a"] = HazelcastJsonValue('{"uuid": "a", "received_by": "messages-1"}')
    outcome = ReceivedMap(Connection(proxy), "received").record("messages-2", items("a", "b", "c"))
    assert [m.uuid for m in outcome.recorded] == ["b"]
    assert outcome.unanswered == 1 and isinstance(outcome.failure, TargetDisconnectedError)
