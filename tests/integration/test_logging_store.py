import time

import pytest

from lab_common.contracts import LoggedMessage
from logging_service import store
from logging_service.service import MessageLog
from logging_service.store import HazelcastMessageStore

pytestmark = pytest.mark.integration


def everything(message_log: MessageLog) -> list[LoggedMessage]:
    """The full read (what GET /logging answers), decoded."""
    return [LoggedMessage.from_text(text) for page in message_log.messages_as_json() for text in page]


@pytest.fixture
def message_log(connect, unique_name):
    return MessageLog(HazelcastMessageStore(connect(), unique_name), "logging-1")


def test_duplicate_uuid_is_stored_once_in_the_distributed_map(message_log):
    first = message_log.record("u1", "msg1")
    second = message_log.record("u1", "msg1")
    assert first.created and not second.created
    assert second.message.logged_by == "logging-1"
    assert [m.uuid for m in everything(message_log)] == ["u1"]


def test_copies_on_different_connections_share_one_map_and_dedup_between_them(connect, cluster_settings, unique_name):
    log_a = MessageLog(HazelcastMessageStore(connect(), unique_name), "logging-1")
    second_member = cluster_settings.hz_members[1:2]  # wherever LAB_TEST_PORT_SHIFT put it
    log_b = MessageLog(HazelcastMessageStore(connect(hz_members=second_member), unique_name), "logging-2")
    assert log_a.record("u1", "m").created
    assert not log_b.record("u1", "m").created
    assert log_b.record("u2", "n").created
    assert [(m.uuid, m.logged_by) for m in everything(log_a)] == [("u1", "logging-1"), ("u2", "logging-2")]


def test_messages_are_read_back_in_posting_order(message_log):
    for i in range(30):
        message_log.record(f"u{i}", f"msg{i}")
    assert [m.msg for m in everything(message_log)] == [f"msg{i}" for i in range(30)]


def test_the_full_read_goes_page_by_page_without_losing_or_repeating_one(message_log, monkeypatch):
    monkeypatch.setattr(store, "FULL_READ_PAGE", 7)
    for i in range(30):
        message_log.record(f"u{i}", f"msg{i}")
    later = time.time_ns() + 5 * 10**9
    twins = MessageLog(message_log._store, "logging-2", clock=lambda: later)  # all at one seq, across page ends
    for i in range(13):
        twins.record(f"twin{i}", "same time")
    assert [m.uuid for m in everything(message_log)] == [f"u{i}" for i in range(30)] + \
        sorted(f"twin{i}" for i in range(13))


def test_paged_read_walks_every_message_once_in_order(message_log):
    for i in range(25):
        message_log.record(f"u{i}", f"msg{i}")
    seen, after = [], None
    while True:
        page = message_log.page(after, 10)
        if not page:
            break
        seen += [m.msg for m in page]
        after = page[-1].seq
    assert seen == [f"msg{i}" for i in range(25)]


def test_unicode_round_trips_through_the_map(message_log):
    text = "Слава Україні 🇺🇦 — «лапки» ґ"
    message_log.record("u1", text)
    assert everything(message_log)[0].msg == text


def test_first_page_starts_at_the_smallest_seq_when_copies_first_writes_race(connect, unique_name):
    late = MessageLog(HazelcastMessageStore(connect(), unique_name), "logging-1", clock=lambda: 2_000_000_000)
    early = MessageLog(HazelcastMessageStore(connect(), unique_name), "logging-2", clock=lambda: 1_000_000_000)
    late.record("second", "b")
    early.record("first", "a")  # arrives later, but was logged with the smaller seq
    assert [m.uuid for m in late.page(None, 10)] == ["first", "second"]


def test_a_write_that_took_its_seq_first_but_stored_second_is_read(connect, unique_name):
    """Two requests on one copy's threads: the one with the smaller seq stores after the other."""
    seqs = iter([3_000_000_000, 2_000_000_000])
    message_log = MessageLog(HazelcastMessageStore(connect(), unique_name), "logging-1", clock=lambda: next(seqs))
    message_log.record("stored-first", "b")
    message_log.record("stored-second", "a")
    assert [m.uuid for m in message_log.page(None, 10)] == ["stored-second", "stored-first"]
    assert [m.uuid for m in everything(message_log)] == ["stored-second", "stored-first"]


def test_a_page_of_one_from_seq_0_or_from_the_last_possible_seq_answers_and_later_reads_still_work(message_log):
    """Found by schemathesis: with limit=1 the scan windows never widened, so after=0 scanned 50 ms at a time
    from 1970 on (a request that never ended); and a cursor far before the data made the next window so wide
    its bound overflowed a long (a 503 for every full read after it)."""
    for i in range(5):
        message_log.record(f"u{i}", f"msg{i}")
    assert [m.msg for m in message_log.page(0, 1)] == ["msg0"]
    assert message_log.page(2**63 - 1, 10) == []
    assert [m.msg for m in everything(message_log)] == [f"msg{i}" for i in range(5)]
    assert [m.msg for m in message_log.page(None, 3)] == ["msg0", "msg1", "msg2"]
