import pytest

from messages_service.app import create_app
from messages_service.consumer import QueueConsumer
from tests.helpers import eventually
from tests.unit.fakes import FakeInbox


def test_consumer_records_what_it_takes_and_drops_a_repeated_uuid():
    inbox = FakeInbox()
    inbox.queue.extend([{"uuid": "a", "msg": "1"}, {"uuid": "a", "msg": "1"}, {"uuid": "b", "msg": "2"}])
    consumer = QueueConsumer(inbox, "messages-1")
    assert consumer.step() == 2
    assert [m.uuid for m in inbox.received_by("messages-1")] == ["a", "b"]


def test_consumer_keeps_going_after_errors_and_reports_itself_unhealthy_meanwhile():
    inbox = FakeInbox()
    inbox.fail_next = 3
    inbox.queue.append({"uuid": "a", "msg": "1"})
    consumer = QueueConsumer(inbox, "messages-1", poll_seconds=0.01, max_backoff=0.05).start()
    try:
        eventually(lambda: not consumer.health()[0] or inbox.received, timeout=5)
        eventually(lambda: "a" in inbox.received, timeout=5)
        eventually(lambda: consumer.health()[0], timeout=5)
    finally:
        consumer.stop()
    assert not consumer.running


def test_get_messages_answers_this_copys_messages_and_never_clears_them(settings):
    inbox = FakeInbox()
    inbox.queue.append({"uuid": "a", "msg": "Привіт"})
    QueueConsumer(inbox, settings.instance).step()
    client = create_app(settings, inbox=inbox).test_client()
    for _ in range(2):
        body = client.get("/messages").json
        assert [m["msg"] for m in body["messages"]] == ["Привіт"]
        assert body["copy"] == settings.instance


@pytest.mark.parametrize("method", ["post", "delete"])
def test_messages_rejects_other_methods(settings, method):
    client = create_app(settings, inbox=FakeInbox()).test_client()
    assert getattr(client, method)("/messages").status_code == 405


def test_logged_but_never_received_messages_are_queued_again_once_after_the_grace():
    from messages_service.consumer import Redelivery

    now = {"t": 1000.0}
    inbox = FakeInbox()
    inbox.logged = [{"uuid": "stranded", "msg": "m", "seq": int(990 * 1e6)},
                    {"uuid": "fresh", "msg": "n", "seq": int(999 * 1e6)}]
    redelivery = Redelivery(inbox, grace=5, horizon=60, span=120, clock=lambda: now["t"])
    assert redelivery.step() == 1
    assert list(inbox.queue) == [{"uuid": "stranded", "msg": "m"}]
    QueueConsumer(inbox, "messages-1").step()
    now["t"] = 1010.0
    assert redelivery.step() == 1  # "fresh" is past the grace now; "stranded" was received meanwhile
    assert inbox.queue[-1]["uuid"] == "fresh"
    assert redelivery.step() == 0
