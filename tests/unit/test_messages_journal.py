"""The journal of what a messages copy processed: its file adapter (kept across a SIGKILL and a restart, a line
cut short skipped), the consumer writing it before the commit, GET /messages/journal and its paging, and the
count of messages processed more than once across several copies' journals."""

from __future__ import annotations

import dataclasses
import signal
import subprocess
import sys

import orjson
import pytest

from labctl.journals import Journaled, processed_twice, who
from messages_service.adapters.journal_file import FileJournal
from messages_service.app import create_app
from messages_service.consumer import QueueConsumer
from messages_service.service import JournalEntry, JournalUnavailable, NotCommitted
from messages_service.settings import MessagesSettings
from tests.unit.fakes import FakeInbox, FakeJournal, FakeMessagesCluster


def entry(uuid: str, batch: str = "b-1", copy: str = "messages-1") -> JournalEntry:
    return JournalEntry(uuid, 1_765_000_000_000_000, copy, batch)


def uuids(texts: list[str]) -> list[str]:
    return [orjson.loads(text)["uuid"] for text in texts]


# --- the file adapter ------------------------------------------------------------------------------


def test_entries_appended_by_a_process_killed_before_it_closed_the_file_are_read_after_its_restart(tmp_path):
    path = tmp_path / "journal" / "messages-1.jsonl"
    killed = subprocess.run([sys.executable, "-c", f"""
import os, signal
from messages_service.adapters.journal_file import FileJournal
from messages_service.service import JournalEntry
journal = FileJournal({str(path)!r})
journal.append([JournalEntry("u1", 1, "messages-1", "b-1"), JournalEntry("u2", 1, "messages-1", "b-1")])
os.kill(os.getpid(), signal.SIGKILL)  # no close, no flush at exit: as a kill between record and commit
"""], timeout=30)
    assert killed.returncode == -signal.SIGKILL
    restarted = FileJournal(path)  # its lock died with the killed process
    restarted.append([entry("u3", "b-2")])
    assert uuids(restarted.page(0, 10)) == ["u1", "u2", "u3"]
    assert orjson.loads(restarted.page(2, 1)[0]) == {"uuid": "u3", "at": 1_765_000_000_000_000,
                                                      "copy": "messages-1", "batch": "b-2"}


def test_a_line_cut_short_is_skipped_and_the_next_entry_starts_on_a_line_of_its_own(tmp_path):
    path = tmp_path / "messages-1.jsonl"
    path.write_bytes(orjson.dumps(entry("u1").to_json()) + b"\n" + b'{"uuid": "u2", "at"')  # cut by a crash
    journal = FileJournal(path)
    journal.append([entry("u3")])
    assert uuids(journal.page(0, 10)) == ["u1", "u3"] and len(journal) == 2
    journal.close()
    assert uuids(FileJournal(path).page(0, 10)) == ["u1", "u3"]


def test_a_last_line_whole_but_for_its_newline_is_kept(tmp_path):
    path = tmp_path / "messages-1.jsonl"
    path.write_bytes(orjson.dumps(entry("u1").to_json()))
    journal = FileJournal(path)
    journal.append([entry("u2")])
    assert uuids(journal.page(0, 10)) == ["u1", "u2"]


def test_a_second_process_cannot_open_a_journal_in_use_and_an_append_after_close_fails(tmp_path):
    journal = FileJournal(tmp_path / "j.jsonl")
    with pytest.raises(JournalUnavailable, match="in use"):
        FileJournal(tmp_path / "j.jsonl")
    journal.close()
    with pytest.raises(JournalUnavailable, match="closed"):
        journal.append([entry("u1")])


def test_pages_are_slices_in_append_order_and_a_full_read_comes_in_chunks(tmp_path, monkeypatch):
    from messages_service.adapters import journal_file

    monkeypatch.setattr(journal_file, "PAGE_ENTRIES", 2)
    journal = FileJournal(tmp_path / "j.jsonl", fsync=True)
    journal.append([entry(f"u{i}") for i in range(3)])
    journal.append([entry(f"u{i}") for i in range(3, 5)])
    assert uuids(journal.page(1, 3)) == ["u1", "u2", "u3"]
    assert journal.page(5, 3) == [] and journal.page(2**63 - 1, 10_000) == []
    assert [uuids(page) for page in journal.pages()] == [["u0", "u1"], ["u2", "u3"], ["u4"]]


# --- the consumer writes it before the commit ------------------------------------------------------


def consumer_over(cluster: FakeMessagesCluster, journal: FakeJournal) -> tuple[QueueConsumer, FakeInbox]:
    inbox = FakeInbox(cluster)
    return QueueConsumer(inbox, "messages-1", journal=journal, clock_us=lambda: 42), inbox


def test_each_recorded_message_is_journaled_with_its_copy_and_batch_and_the_next_batch_has_another_id():
    cluster, journal = FakeMessagesCluster(), FakeJournal()
    consumer, _ = consumer_over(cluster, journal)
    cluster.offer_logged("u1", "a")
    cluster.offer_logged("u2", "b")
    consumer.step()
    cluster.offer_logged("u3", "c")
    consumer.step()
    first, second, third = journal.entries
    assert (first.uuid, first.copy, first.at) == ("u1", "messages-1", 42)
    assert first.batch == second.batch != third.batch
    token, number = third.batch.rsplit("-", 1)
    assert first.batch == f"{token}-{int(number) - 1}"  # one token per process, then a count


def test_a_batch_whose_commit_fails_leaves_its_entries_in_the_journal():
    cluster, journal = FakeMessagesCluster(), FakeJournal()
    consumer, inbox = consumer_over(cluster, journal)
    cluster.offer_logged("u1", "a")
    inbox.fail_commit_next = 1
    with pytest.raises(NotCommitted):
        consumer.step()
    assert journal.uuids() == ["u1"]  # written before the commit that failed
    assert consumer.counts.not_committed == 1


def test_a_journal_that_cannot_be_written_stops_the_commit_and_the_items_stay_queued():
    cluster, journal = FakeMessagesCluster(), FakeJournal()
    consumer, _ = consumer_over(cluster, journal)
    cluster.offer_logged("u1", "a")
    journal.fail = True
    with pytest.raises(JournalUnavailable):
        consumer.step()
    assert [item["uuid"] for item in cluster.queue] == ["u1"] and consumer.counts.taken == 0


# --- GET /messages/journal -------------------------------------------------------------------------


@pytest.fixture
def journal_client(settings, tmp_path):
    journal = FileJournal(tmp_path / "j.jsonl")
    journal.append([entry(f"u{i}", f"b-{i // 2}") for i in range(5)])
    copy = dataclasses.replace(settings, instance="messages-1")
    yield create_app(copy, inbox=FakeInbox(), journal=journal).test_client()
    journal.close()


def test_the_whole_journal_is_answered_in_append_order(journal_client):
    body = journal_client.get("/messages/journal").json
    assert (body["copy"], body["count"]) == ("messages-1", 5)
    assert [e["uuid"] for e in body["entries"]] == [f"u{i}" for i in range(5)]
    assert body["entries"][2] == {"uuid": "u2", "at": 1_765_000_000_000_000, "copy": "messages-1", "batch": "b-1"}


def test_pages_follow_the_next_cursor_to_the_end(journal_client):
    seen, after, pages = [], None, 0
    while True:
        query = {"limit": 2, **({"after": after} if after else {})}
        body = journal_client.get("/messages/journal", query_string=query).json
        seen += [e["uuid"] for e in body["entries"]]
        pages += 1
        after = body["next"]
        if after is None:
            break
    assert seen == [f"u{i}" for i in range(5)] and pages == 3
    assert journal_client.get("/messages/journal?after=4").json["entries"][0]["uuid"] == "u4"
    assert journal_client.get("/messages/journal?limit=5").json["next"] == "5"  # a full page: maybe more
    assert journal_client.get("/messages/journal?limit=5&after=5").json == {"copy": "messages-1", "count": 0,
                                                                            "next": None, "entries": []}


@pytest.mark.parametrize("query", ["limit=0", "limit=-1", "limit=abc", "limit=10001", "limit=", "after=-1",
                                   "after=x", "after=99999999999999999999", "after=", "limit=1&after=%D9%A3"])
def test_bad_paging_is_a_400_in_json(journal_client, query):
    answer = journal_client.get(f"/messages/journal?{query}")
    assert answer.status_code == 400 and answer.json["error"] == "bad_request", answer.json


def test_the_default_journal_is_named_for_the_copy_and_the_setting_moves_it():
    default = MessagesSettings.load("messages-service", default_port=8082, environ={"LAB_INSTANCE": "messages-2"},
                                    argv=[])
    assert str(default.journal_path) == "var/journal/messages-2.jsonl"
    moved = MessagesSettings.load("messages-service", default_port=8082, environ={"LAB_JOURNAL": "/tmp/j.jsonl"},
                                  argv=[])
    assert str(moved.journal_path) == "/tmp/j.jsonl"


# --- counting duplicates over several journals -----------------------------------------------------


def journaled(copy: str, *uuids_and_batches: tuple[str, str]) -> list[Journaled]:
    return [Journaled(uuid, copy, batch, 1) for uuid, batch in uuids_and_batches]


def test_a_uuid_in_two_copies_journals_or_twice_in_one_is_processed_twice_and_once_everywhere_is_not():
    journals = {"messages-1": journaled("messages-1", ("a", "1"), ("b", "1"), ("c", "2"), ("c", "5")),
                "messages-2": journaled("messages-2", ("b", "7"), ("d", "7")),
                "messages-3": journaled("messages-3", ("e", "1"))}
    twice = processed_twice(journals)
    assert set(twice) == {"b", "c"}
    assert who(twice["b"]) == "messages-1 (batch 1), messages-2 (batch 7)"
    assert who(twice["c"]) == "messages-1 (batch 2), messages-1 (batch 5)"
    assert set(processed_twice(journals, among={"a", "c", "d"})) == {"c"}
    assert processed_twice({"messages-1": [], "messages-2": journaled("messages-2", ("x", "1"))}) == {}
