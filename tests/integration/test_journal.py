"""A messages copy's journal against real members: a copy killed (SIGKILL) between writing its journal and
committing its batch keeps what it journaled; started again on the same file, it appends to it, and the
messages it took (back on the queue, recorded already) are not journaled a second time."""

from __future__ import annotations

import json
import signal
import subprocess
import sys

import pytest

from lab_common.contracts import encode_queue_item
from messages_service.adapters.hazelcast import HazelcastInbox
from messages_service.adapters.journal_file import FileJournal
from messages_service.consumer import QueueConsumer
from tests.helpers import eventually

pytestmark = pytest.mark.integration

# A copy whose journal write is the last thing it does: it dies after the write, before the commit.
DIES_BEFORE_COMMIT = """
import json, os, signal, sys
from lab_common.cluster import ClusterConnection
from lab_common.settings import HazelcastSettings
from messages_service.adapters.hazelcast import HazelcastInbox
from messages_service.consumer import QueueConsumer
from messages_service.adapters.journal_file import FileJournal

given = json.loads(sys.argv[1])
settings = HazelcastSettings.load("it", default_port=1, environ={}, argv=[], instance="messages-1",
                                  hz_cluster_name=given["cluster"], hz_members=tuple(given["members"]))
connection = ClusterConnection(settings).start()
assert connection.wait_connected(30)


class JournalThenDie(FileJournal):
    def append(self, entries):
        super().append(entries)
        if entries:
            os.kill(os.getpid(), signal.SIGKILL)


inbox = HazelcastInbox(connection, given["queue"], given["received"])
consumer = QueueConsumer(inbox, "messages-1", journal=JournalThenDie(given["journal"]), batch=10, poll_seconds=5)
while True:
    consumer.step()
"""


def test_a_copy_killed_mid_batch_keeps_its_journal_and_its_restart_appends_to_it_without_a_second_entry(
        cluster_settings, connect, unique_name, tmp_path):
    queue_name, received_map = f"q-{unique_name}", f"r-{unique_name}"
    path = tmp_path / "journal" / "messages-1.jsonl"
    producer = connect()
    queue = producer.client().get_queue(queue_name).blocking()
    for i in range(5):
        queue.offer(encode_queue_item(f"u{i}", f"msg{i}"))
    given = {"cluster": cluster_settings.hz_cluster_name, "members": list(cluster_settings.hz_members),
             "queue": queue_name, "received": received_map, "journal": str(path)}
    killed = subprocess.run([sys.executable, "-c", DIES_BEFORE_COMMIT, json.dumps(given)], timeout=90,
                            capture_output=True, text=True)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]

    restarted = FileJournal(path)  # the same file, as the restarted copy opens it
    first_life = [json.loads(text) for text in restarted.page(0, 100)]
    assert sorted(e["uuid"] for e in first_life) == [f"u{i}" for i in range(5)]
    assert len({e["batch"] for e in first_life}) == 1  # one batch, never committed

    inbox = HazelcastInbox(connect(), queue_name, received_map)
    consumer = QueueConsumer(inbox, "messages-1", journal=restarted, batch=10, poll_seconds=0.5).start()
    try:
        # the dead client's transaction is rolled back: its items come back, and are dropped (recorded already)
        eventually(lambda: consumer.counts.dropped == 5, timeout=60, interval=0.2)
        queue.offer(encode_queue_item("u5", "msg5"))
        eventually(lambda: consumer.counts.received == 1, timeout=30, interval=0.2)
    finally:
        consumer.stop()
    journaled = [json.loads(text)["uuid"] for text in restarted.page(0, 100)]
    assert journaled == [e["uuid"] for e in first_life] + ["u5"]  # appended after what the first life wrote
    restarted.close()
