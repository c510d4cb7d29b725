import dataclasses

import pytest

from facade_service.adapters.status import MemberStatistics
from facade_service.app import create_app
from facade_service.service import Facade
from facade_service.status import ClusterView, CopyStatus, MemberStatus, QueueStatus, RecentPosts, Status
from lab_common.contracts import member_metrics_address
from lab_common.errors import Unavailable
from tests.unit.fakes import FakeClock, FakeLogging, FakeMessages, FakeQueue

MEMBERS = ("127.0.0.1:5701", "127.0.0.1:5702", "127.0.0.1:5703")


class FakeCluster:
    """A cluster whose members' statistics the test sets."""

    def __init__(self):
        self.down: set[str] = set()
        self.offers, self.polls = 0, 0
        self.received: dict[str, str] = {}
        self.views = 0
        self.failing_reads = False
        self.read_at = 0.0  # when the owner's statistics were last read

    def view(self) -> ClusterView:
        self.views += 1
        members = [MemberStatus(address=a, up=a not in self.down, partitions=None if a in self.down else 90,
                                owned_entries=None if a in self.down else 10, backup_entries=20)
                   for a in MEMBERS]
        queue = QueueStatus(name="q", size=3, owner=MEMBERS[1], offers_total=self.offers, polls_total=self.polls,
                            read_at=self.read_at)
        return ClusterView(members=members, queue=queue, logged=30, received=28)

    def received_by(self, uuids):
        if self.failing_reads:
            raise Unavailable("cannot read the received map: TargetDisconnectedError")
        return {u: self.received[u] for u in uuids if u in self.received}


class FakeCopies:
    def copies(self):
        return [CopyStatus("logging-service", "logging-1", "http://127.0.0.1:8081", True, {}),
                CopyStatus("messages-service", "messages-1", "http://127.0.0.1:8082", True,
                           {"consumer": {"ok": True, "detail": {"received": 12, "taken": 12}}}),
                CopyStatus("messages-service", None, "http://127.0.0.1:8084", False, error="ConnectionRefusedError")]


@pytest.fixture
def parts():
    return FakeCluster(), RecentPosts(size=3), FakeClock()


def test_a_snapshot_shows_members_copies_counts_and_the_last_messages_newest_first(parts):
    cluster, recent, clock = parts
    for i in range(4):
        recent.add(f"u{i}", f"m{i}", "logging-1")
    cluster.received = {"u3": "messages-1"}
    snapshot = Status(cluster, FakeCopies(), recent, clock=clock).snapshot()
    assert [m["address"] for m in snapshot["members"]] == list(MEMBERS)
    assert snapshot["queue"]["owner"] == MEMBERS[1] and snapshot["maps"] == {"logged": 30, "received": 28}
    assert [(m["uuid"], m["received_by"]) for m in snapshot["recent"]] == \
        [("u3", "messages-1"), ("u2", None), ("u1", None)]  # three kept: the oldest dropped
    assert snapshot["received_by_copy"] == {"messages-1": 12}
    assert [c["healthy"] for c in snapshot["copies"]] == [True, True, False]


def test_offers_and_polls_are_per_second_between_two_readings_and_kept_until_the_next(parts):
    cluster, recent, clock = parts
    status = Status(cluster, FakeCopies(), recent, clock=clock)
    assert status.snapshot()["queue"]["offers_per_second"] is None
    cluster.offers, cluster.polls, cluster.read_at = 50, 20, 2.0
    clock.now += 1.0
    queue = status.snapshot()["queue"]
    assert (queue["offers_per_second"], queue["polls_per_second"]) == (25.0, 10.0)
    cluster.offers = 90  # counts that were not read again: the rate stays, it does not drop to 0 or jump
    clock.now += 1.0
    assert status.snapshot()["queue"]["offers_per_second"] == 25.0
    cluster.read_at = 3.0
    clock.now += 1.0
    assert status.snapshot()["queue"]["offers_per_second"] == 40.0


def test_pages_open_at_the_same_time_share_one_snapshot(parts):
    cluster, recent, clock = parts
    status = Status(cluster, FakeCopies(), recent, clock=clock)
    status.snapshot()
    clock.now += 0.2
    status.snapshot()
    assert cluster.views == 1
    clock.now += 0.5
    status.snapshot()
    assert cluster.views == 2


def test_a_failed_read_of_the_received_map_is_a_note_not_a_failure(parts):
    cluster, recent, clock = parts
    recent.add("u1", "m1", "logging-2")
    cluster.failing_reads = True
    snapshot = Status(cluster, FakeCopies(), recent, clock=clock).snapshot()
    assert "TargetDisconnectedError" in snapshot["error"]
    assert snapshot["recent"][0]["received_by"] is None


def test_a_member_that_is_down_shows_as_down_with_its_statistics_unknown(parts):
    cluster, recent, clock = parts
    cluster.down = {MEMBERS[2]}
    members = Status(cluster, FakeCopies(), recent, clock=clock).snapshot()["members"]
    assert [(m["up"], m["owned_entries"]) for m in members] == [(True, 10), (True, 10), (False, None)]


def test_the_facade_serves_the_page_its_assets_and_its_data(settings, parts):
    cluster, _, clock = parts
    queue = FakeQueue()
    facade = Facade(FakeLogging(), FakeMessages(), queue)
    client = create_app(settings, facade=facade,
                        status=Status(cluster, FakeCopies(), facade.recent, clock=clock)).test_client()
    uuid = client.post("/facade", data={"msg": "shown"}).json["uuid"]
    page = client.get("/status")
    assert page.status_code == 200 and b'src="/status/status.js"' in page.data
    assert client.get("/status/status.js").status_code == 200
    assert client.get("/status/status.css").status_code == 200
    assert client.get("/status/app.py").status_code == 404
    data = client.get("/status.json")
    assert data.headers["Cache-Control"] == "no-store"
    assert [(m["uuid"], m["msg"]) for m in data.json["recent"]] == [(uuid, "shown")]


def test_member_statistics_are_read_from_the_exporters_text_by_map_and_queue():
    text = """# TYPE hazelcast_map_owned_entries gauge
hazelcast_map_owned_entries{map="messages"} 334.0
hazelcast_map_owned_entries{map="received"} 330.0
hazelcast_map_backup_entries{map="messages"} 666.0
# TYPE hazelcast_queue_owned_items gauge
hazelcast_queue_owned_items{queue="messages-queue"} 7.0
# TYPE hazelcast_partitions_owned gauge
hazelcast_partitions_owned 91.0
"""
    stats = MemberStatistics(text)
    assert stats.get("hazelcast_map_owned_entries", "messages") == 334
    assert stats.get("hazelcast_map_owned_entries", "received") == 330
    assert stats.get("hazelcast_map_backup_entries", "messages") == 666
    assert stats.get("hazelcast_queue_owned_items", "messages-queue") == 7
    assert stats.get("hazelcast_partitions_owned") == 91
    assert stats.get("hazelcast_map_owned_entries", "other") is None


def test_a_members_statistics_are_served_4000_ports_above_it():
    assert member_metrics_address("127.0.0.1:5702") == "127.0.0.1:9702"
    assert member_metrics_address("127.0.0.1:15703") == "127.0.0.1:19703"


def test_recent_posts_keep_only_the_newest(parts):
    recent = RecentPosts(size=2)
    for i in range(3):
        recent.add(f"u{i}", "m", "logging-1")
    assert [m.uuid for m in recent.newest_first()] == ["u2", "u1"]
    assert dataclasses.asdict(recent.newest_first()[0]) == {"uuid": "u2", "msg": "m", "logged_by": "logging-1"}


def test_a_member_configured_by_name_matches_the_address_the_cluster_reports_for_it():
    from facade_service.adapters.status import _resolved

    assert _resolved("localhost:5701") == _resolved("127.0.0.1:5701") == "127.0.0.1:5701"
    assert _resolved("no-such-host.invalid:5701") == "no-such-host.invalid:5701"


class FakeTopic:
    """A topic of two partitions whose offsets the test moves; `read_at` is when the brokers were last asked."""

    def __init__(self):
        self.ends, self.committed = [100, 50], [90, None]
        self.read_at = 0.0

    def view(self):
        from facade_service.status import PartitionStatus, TopicStatus

        partitions = [PartitionStatus(partition=i, leader="127.0.0.1:9092", replicas=["127.0.0.1:9092"],
                                      in_sync=["127.0.0.1:9092"], end_offset=end, committed=done,
                                      lag=None if end is None else end - (done or 0))
                      for i, (end, done) in enumerate(zip(self.ends, self.committed, strict=True))]
        return TopicStatus("messages", "messages-service", partitions, brokers=["127.0.0.1:9092"],
                           read_at=self.read_at)


def test_without_kafka_the_snapshot_has_no_topic(parts):
    cluster, recent, clock = parts
    assert Status(cluster, FakeCopies(), recent, clock=clock).snapshot()["topic"] is None


def test_the_topic_shows_each_partition_and_writes_and_commits_per_second_between_two_readings(parts):
    cluster, recent, clock = parts
    topic = FakeTopic()
    status = Status(cluster, FakeCopies(), recent, topic=topic, clock=clock)
    first = status.snapshot()["topic"]
    assert [(p["partition"], p["end_offset"], p["committed"], p["lag"]) for p in first["partitions"]] == \
        [(0, 100, 90, 10), (1, 50, None, 50)]  # partition 1: the group never committed, all of it to take
    assert (first["written_per_second"], first["committed_per_second"]) == (None, None)  # one reading so far
    topic.ends, topic.committed, topic.read_at = [110, 70], [100, 20], 2.0
    clock.now += 2.0
    second = status.snapshot()["topic"]
    assert second["written_per_second"] == 15.0  # 30 more written in 2 s
    assert second["committed_per_second"] is None  # the first reading had no commit on partition 1
    topic.ends, topic.committed, topic.read_at = [130, 70], [120, 60], 4.0
    clock.now += 2.0
    third = status.snapshot()["topic"]
    assert (third["written_per_second"], third["committed_per_second"]) == (10.0, 30.0)
    clock.now += 1.0  # the brokers not asked again (same reading): the rates stay as they were
    assert status.snapshot()["topic"]["committed_per_second"] == 30.0
