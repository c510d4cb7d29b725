import pytest

from lab_common.contracts import LoggedMessage, ReceivedMessage
from messages_service.app import create_app
from messages_service.consumer import QueueConsumer
from messages_service.redelivery import Redelivery
from messages_service.service import Batch, NotCommitted
from tests.helpers import eventually
from tests.unit.fakes import BatchesInbox, FakeClock, FakeInbox, FakeJournal, FakeMessagesCluster, FakeRedeliveryPort


def received(uuid: str, seq: int = 1) -> ReceivedMessage:
    return ReceivedMessage(uuid, f"text of {uuid}", "messages-1", seq)


def test_the_consumer_counts_what_its_inbox_took_recorded_and_dropped_and_the_transactions_that_took_any():
    # the inbox took "a" twice in the first transaction and recorded it once (put_if_absent's answer); the
    # second transaction took an offer redelivery had made again
    inbox = BatchesInbox(Batch([received("a"), received("b")], taken=3),
                         Batch([received("c")], taken=1, redelivered=1))
    consumer = QueueConsumer(inbox, "messages-1", journal=FakeJournal(), batch=3)
    assert [consumer.step() for _ in range(3)] == [2, 1, 0]  # the third took nothing: not a transaction counted
    ok, detail = consumer.health()
    assert {key: detail[key] for key in ("received", "taken", "dropped", "redelivered", "transactions")} == \
        {"received": 3, "taken": 4, "dropped": 1, "redelivered": 1, "transactions": 2}
    assert detail["not_committed"] == detail["unanswered"] == 0


def test_what_a_transaction_recorded_before_its_commit_failed_counts_as_received_and_is_logged(caplog):
    # its records stand (GET /messages of this copy lists them); its items come back and are dropped then
    failed = NotCommitted("queue transaction failed: TargetDisconnectedError", [received("a")], unanswered=1,
                          request_ids={"a": "trace-1"})
    inbox = BatchesInbox(failed, Batch([], taken=1))
    consumer = QueueConsumer(inbox, "messages-1", journal=FakeJournal())
    caplog.set_level("INFO", logger="messages_service.consumer")
    with pytest.raises(NotCommitted):
        consumer.step()
    consumer.step()
    detail = consumer.health()[1]
    assert {key: detail[key] for key in ("received", "not_committed", "unanswered", "taken", "dropped")} == \
        {"received": 1, "not_committed": 1, "unanswered": 1, "taken": 1, "dropped": 1}
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("received ")]
    assert lines == ["received uuid=a request_id=trace-1 msg='text of a'"]


def test_a_received_message_is_logged_once_with_the_request_that_queued_it_and_a_dropped_one_not_at_all(caplog):
    inbox = BatchesInbox(Batch([received("a")], taken=2, request_ids={"a": "trace-9", "b": "trace-10"}))
    caplog.set_level("INFO", logger="messages_service.consumer")
    QueueConsumer(inbox, "messages-1", journal=FakeJournal()).step()
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("received ")]
    assert lines == ["received uuid=a request_id=trace-9 msg='text of a'"]


def test_the_log_line_of_a_received_message_shows_only_the_start_of_a_long_one(caplog):
    cluster = FakeMessagesCluster()
    cluster.queue.append({"uuid": "a", "msg": "m" * 70_000})
    caplog.set_level("INFO", logger="messages_service.consumer")
    QueueConsumer(FakeInbox(cluster), "messages-1", journal=FakeJournal()).step()
    [line] = [r.getMessage() for r in caplog.records if "uuid=a" in r.getMessage()]
    assert line.endswith(f"msg={'m' * 32 + '…'!r} (70000 chars)")


def test_consumer_keeps_going_after_errors_and_reports_itself_unhealthy_meanwhile():
    cluster = FakeMessagesCluster()
    inbox = FakeInbox(cluster)
    inbox.fail_next = 3
    cluster.offer_logged("a", "1")
    consumer = QueueConsumer(inbox, "messages-1", journal=FakeJournal(), poll_seconds=0.01, max_backoff=0.05).start()
    try:
        eventually(lambda: not consumer.health()[0] or cluster.received, timeout=5)
        eventually(lambda: "a" in cluster.received, timeout=5)
        eventually(lambda: consumer.health()[0], timeout=5)
    finally:
        consumer.stop()
    assert not consumer.running


def test_get_messages_answers_this_copys_messages_and_never_clears_them(settings):
    cluster = FakeMessagesCluster()
    inbox = FakeInbox(cluster)
    cluster.offer_logged("a", "Привіт")
    QueueConsumer(inbox, settings.instance, journal=FakeJournal()).step()
    client = create_app(settings, inbox=inbox, journal=FakeJournal()).test_client()
    for _ in range(2):
        body = client.get("/messages").json
        assert [m["msg"] for m in body["messages"]] == ["Привіт"]
        assert body["copy"] == settings.instance


@pytest.mark.parametrize("method", ["post", "delete"])
def test_messages_rejects_other_methods(settings, method):
    client = create_app(settings, inbox=FakeInbox(), journal=FakeJournal()).test_client()
    assert getattr(client, method)("/messages").status_code == 405


def us(seconds: float) -> int:
    """A seq or an offer time: microseconds."""
    return int(seconds * 1e6)


def clocked_cluster(*logged: tuple[str, str, float], now: float = 1000.0) -> tuple[FakeMessagesCluster, FakeClock]:
    """A fake cluster whose logging map holds (uuid, msg, logged at second) and whose offers are timed by
    the returned clock, which a Redelivery under test shares."""
    clock = FakeClock(now)
    cluster = FakeMessagesCluster()
    cluster.clock = clock
    cluster.logged = [LoggedMessage(uuid, msg, "logging-1", us(at)) for uuid, msg, at in logged]
    return cluster, clock


def test_logged_but_never_received_messages_are_queued_again_after_the_grace():
    cluster, clock = clocked_cluster(("stranded", "m", 990), ("fresh", "n", 999), ("delivered", "o", 991))
    cluster.received["delivered"] = ReceivedMessage("delivered", "o", "messages-2", 1)
    redelivery = Redelivery(FakeRedeliveryPort(cluster), grace=5, horizon=60, span=120, clock=clock)
    assert redelivery.step() == 1
    assert list(cluster.queue) == [{"uuid": "stranded", "msg": "m", "at": us(1000)}]
    QueueConsumer(FakeInbox(cluster), "messages-1", journal=FakeJournal()).step()
    clock.now = 1010.0
    assert redelivery.step() == 1  # "fresh" is past the grace now; "stranded" was received meanwhile
    assert cluster.queue[-1]["uuid"] == "fresh"
    assert redelivery.outstanding == 1
    QueueConsumer(FakeInbox(cluster), "messages-1", journal=FakeJournal()).step()
    clock.now = 1020.0
    assert redelivery.step() == 0
    assert redelivery.outstanding == 0


def test_a_message_offered_again_is_offered_again_while_no_copy_receives_it_with_growing_pauses():
    cluster, clock = clocked_cluster(("stranded", "m", 990))
    redelivery = Redelivery(FakeRedeliveryPort(cluster), grace=5, horizon=60, max_pause=20, clock=clock)
    offered_at = []
    for second in range(1000, 1061):
        clock.now = float(second)
        if redelivery.step():
            offered_at.append(second)
        cluster.queue.clear()  # the queue loses every offer, like a queue that came back empty from a takeover
    assert offered_at == [1000, 1005, 1015, 1035, 1055]  # pauses 5, 10, 20, then at most 20
    assert redelivery.outstanding == 1
    FakeRedeliveryPort(cluster).requeue([("stranded", "m")])
    QueueConsumer(FakeInbox(cluster), "messages-1", journal=FakeJournal()).step()
    clock.now = 1100.0
    assert redelivery.step() == 0
    assert redelivery.outstanding == 0


def test_nothing_is_offered_again_while_it_may_still_be_waiting_in_a_backed_up_queue():
    cluster, clock = clocked_cluster(("waiting", "w", 979.9))
    # consumers are 30 s behind: the head of the queue was offered at 970, our message at 980
    cluster.queue.extend([{"uuid": "head", "msg": "h", "at": us(970)}, {"uuid": "waiting", "msg": "w", "at": us(980)}])
    redelivery = Redelivery(FakeRedeliveryPort(cluster), grace=5, horizon=60, clock=clock)
    assert redelivery.step() == 0
    assert len(cluster.queue) == 2
    # the head leaves; "waiting" is the head now
    QueueConsumer(FakeInbox(cluster), "messages-1", journal=FakeJournal(), batch=1).step()
    clock.now = 1005.0
    assert redelivery.step() == 0
    QueueConsumer(FakeInbox(cluster), "messages-1", journal=FakeJournal(), batch=1).step()
    clock.now = 1010.0
    assert redelivery.step() == 0  # it was received, not stranded
    assert not cluster.queue and redelivery.requeued == 0


def test_a_copy_started_again_scans_on_from_where_the_copies_left_off():
    cluster, clock = clocked_cluster()
    Redelivery(FakeRedeliveryPort(cluster), grace=5, horizon=60, clock=clock).step()
    assert cluster.mark == us(995)
    # both copies down for five minutes while a message was logged and the queue lost it
    cluster.logged = [LoggedMessage("while-down", "m", "logging-1", us(1100))]
    clock.now = 1300.0
    restarted = Redelivery(FakeRedeliveryPort(cluster), grace=5, horizon=60, span=600, clock=clock)
    assert restarted.step() == 1
    assert cluster.queue[-1]["uuid"] == "while-down"


def test_a_copy_on_a_fresh_cluster_looks_back_only_the_horizon_and_a_restarted_one_at_most_the_catch_up():
    cluster, clock = clocked_cluster(("ancient", "m", 100), ("recent", "n", 950))
    assert Redelivery(FakeRedeliveryPort(cluster), grace=5, horizon=60, span=600, clock=clock).step() == 1
    assert [item["uuid"] for item in cluster.queue] == ["recent"]
    cluster.mark = us(50)
    cluster.queue.clear()
    assert Redelivery(FakeRedeliveryPort(cluster), grace=5, catch_up=600, span=600, clock=clock).step() == 1
    assert [item["uuid"] for item in cluster.queue] == ["recent"]  # 900 s back is past the catch-up
