"""The logging store's contract, as tests every adapter of MessageStore passes: a subclass named Test... gives
the fixtures `store` (a new, empty store of its adapter) and `full_read_page` (sets how many texts one piece
of a full read holds)."""

from __future__ import annotations

import time

from lab_common.contracts import LoggedMessage
from logging_service.service import MessageLog


def everything(message_log: MessageLog) -> list[LoggedMessage]:
    """The full read (what GET /logging answers), decoded."""
    return [LoggedMessage.from_text(text) for page in message_log.messages_as_json() for text in page]


class LoggingStoreContract:
    def test_duplicate_uuid_is_stored_once(self, store):
        message_log = MessageLog(store, "logging-1")
        first = message_log.record("u1", "msg1")
        second = message_log.record("u1", "msg1 again")
        assert first.created and not second.created
        assert (second.message.msg, second.message.logged_by) == ("msg1", "logging-1")
        assert [(m.uuid, m.msg) for m in everything(message_log)] == [("u1", "msg1")]  # the first stands

    def test_the_lab_dedup_protocol_three_posts_of_one_id_store_one_entry(self, store):
        message_log = MessageLog(store, "logging-1")
        results = [message_log.record("1111-2222-3333", "Duplicate test") for _ in range(3)]
        assert [r.created for r in results] == [True, False, False]
        assert [(m.uuid, m.msg) for m in everything(message_log)] == [("1111-2222-3333", "Duplicate test")]

    def test_messages_are_read_back_in_posting_order(self, store):
        message_log = MessageLog(store, "logging-1")
        for i in range(30):
            message_log.record(f"u{i}", f"msg{i}")
        assert [m.msg for m in everything(message_log)] == [f"msg{i}" for i in range(30)]

    def test_the_full_read_goes_piece_by_piece_without_losing_or_repeating_one(self, store, full_read_page):
        full_read_page(7)
        message_log = MessageLog(store, "logging-1")
        for i in range(30):
            message_log.record(f"u{i}", f"msg{i}")
        later = time.time_ns() + 5 * 10**9
        twins = MessageLog(store, "logging-2", clock=lambda: later)  # all at one seq, across piece ends
        for i in range(13):
            twins.record(f"twin{i}", "same time")
        assert [m.uuid for m in everything(message_log)] == [f"u{i}" for i in range(30)] + \
            sorted(f"twin{i}" for i in range(13))

    def test_paged_read_walks_every_message_once_in_order(self, store):
        message_log = MessageLog(store, "logging-1")
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

    def test_a_page_never_ends_inside_a_seq_that_several_messages_share(self, store):
        at = iter([1_000_000_000] + [2_000_000_000] * 4 + [3_000_000_000])
        message_log = MessageLog(store, "logging-1", clock=lambda: next(at))
        for i in range(6):
            message_log.record(f"u{i}", f"msg{i}")
        first = message_log.page(None, 2)
        assert [m.uuid for m in first] == ["u0", "u1", "u2", "u3", "u4"]
        assert [m.uuid for m in message_log.page(first[-1].seq, 2)] == ["u5"]

    def test_unicode_round_trips(self, store):
        message_log = MessageLog(store, "logging-1")
        text = "Слава Україні 🇺🇦 — «лапки» ґ"
        message_log.record("u1", text)
        assert everything(message_log)[0].msg == text

    def test_a_write_that_took_its_seq_first_but_stored_second_is_read(self, store):
        """Two requests on one copy's threads: the one with the smaller seq stores after the other."""
        seqs = iter([3_000_000_000, 2_000_000_000])
        message_log = MessageLog(store, "logging-1", clock=lambda: next(seqs))
        message_log.record("stored-first", "b")
        message_log.record("stored-second", "a")
        assert [m.uuid for m in message_log.page(None, 10)] == ["stored-second", "stored-first"]
        assert [m.uuid for m in everything(message_log)] == ["stored-second", "stored-first"]

    def test_a_page_of_one_from_seq_0_or_from_the_last_possible_seq_answers_and_later_reads_still_work(self, store):
        """Found by schemathesis on the Hazelcast store: with limit=1 its scan windows never widened, and a
        cursor far before the data made the next window overflow a long."""
        message_log = MessageLog(store, "logging-1")
        for i in range(5):
            message_log.record(f"u{i}", f"msg{i}")
        assert [m.msg for m in message_log.page(0, 1)] == ["msg0"]
        assert message_log.page(2**63 - 1, 10) == []
        assert [m.msg for m in everything(message_log)] == [f"msg{i}" for i in range(5)]
        assert [m.msg for m in message_log.page(None, 3)] == ["msg0", "msg1", "msg2"]

    def test_an_empty_store_reads_as_nothing(self, store):
        message_log = MessageLog(store, "logging-1")
        assert everything(message_log) == []
        assert message_log.page(None, 10) == []
