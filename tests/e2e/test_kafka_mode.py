"""The whole system with Kafka as the channel facade -> messages (labctl start --queue kafka): the lab's
experiment, the consumer group's split between the two messages copies, exactly-once receipt, and /health."""

from collections import Counter

import pytest
import requests

from labctl.experiment import received_by_copy, run_experiment
from labctl.launcher import System
from tests.helpers import eventually, port_offset, rendered, started_system

pytestmark = pytest.mark.e2e

# members on 24201-24203, the facade on 26580, the broker on 27592 (controller 27593): below the ephemeral range
PORT_OFFSET = port_offset(18_500)


@pytest.fixture(scope="module")
def system(tmp_path_factory):
    with started_system(tmp_path_factory.mktemp("kafka"), "kafka", port_offset=PORT_OFFSET, queue="kafka") as system:
        yield system


def health(system: System, name: str) -> dict:
    return requests.get(system.url(name) + "/health", timeout=5).json()


def test_the_experiment_passes_and_the_group_splits_the_messages_between_the_copies_each_once(system):
    def each_copy_owns_a_partition():
        owned = [health(system, f"messages-{i}")["checks"]["consumer-group"]["detail"]["partitions"] for i in (1, 2)]
        assert all(owned) and sorted(p for partitions in owned for p in partitions) == [0, 1], owned

    eventually(each_copy_owns_a_partition, timeout=30)
    lines: list[str] = []
    assert run_experiment(system, count=10, out=lines.append) == 0, "\n".join(lines)
    assert "verdict: PASS - every message once" in lines
    facade = system.url("facade-1")
    for i in range(20):  # with these, the chance that every uuid went to one partition is 2 ** -29
        assert requests.post(facade + "/facade", data={"msg": f"split-{i}"}, timeout=10).status_code == 201

    def everything_received() -> dict[str, list[dict]]:
        by_copy = received_by_copy(system)
        assert sum(len(messages) for messages in by_copy.values()) >= 30
        return by_copy

    by_copy = eventually(everything_received, timeout=30)
    counts = Counter(m["uuid"] for messages in by_copy.values() for m in messages)
    assert len(counts) == 30 and set(counts.values()) == {1}  # exactly once, across both copies
    assert all(by_copy[name] for name in ("messages-1", "messages-2")), {n: len(m) for n, m in by_copy.items()}
    merged = requests.get(facade + "/facade", timeout=10).json()["merged"]
    assert len(merged) == 30 and all(m["logged_by"] for m in merged)


def test_every_copy_on_the_channel_reports_the_brokers_and_the_messages_copies_their_lag(system):
    facade = health(system, "facade-1")
    assert facade["status"] == "ok" and facade["checks"]["kafka"]["ok"]
    assert facade["checks"]["kafka"]["detail"]["partitions"] == 2
    for name in ("messages-1", "messages-2"):
        def caught_up(name=name):
            checks = health(system, name)["checks"]
            assert checks["kafka"]["ok"] and checks["consumer-group"]["ok"], checks
            assert checks["consumer-group"]["detail"]["lag"] == 0, checks["consumer-group"]

        eventually(caught_up, timeout=15)
    assert "kafka" not in health(system, "logging-1").get("checks", {})
    [broker] = [row for row in system.status() if row["name"] == "kafka-1"]
    assert broker["healthy"] and broker["url"] == f"127.0.0.1:{9092 + PORT_OFFSET}"


def test_the_status_page_shows_the_topics_partitions_their_leader_and_the_group_caught_up(system):
    """In Kafka mode the page shows the topic in the Hazelcast queue's place: both partitions led by the one
    broker, and, once the copies have taken everything, each partition committed to its end."""
    facade = system.url("facade-1")
    for i in range(6):
        assert requests.post(facade + "/facade", data={"msg": f"status-{i}"}, timeout=10).status_code == 201
    broker = f"127.0.0.1:{9092 + PORT_OFFSET}"

    def caught_up() -> dict:
        topic = requests.get(facade + "/status.json", timeout=10).json()["topic"]
        assert topic is not None and topic["error"] is None, topic
        partitions = topic["partitions"]
        assert [(p["partition"], p["leader"], p["in_sync"]) for p in partitions] == \
            [(0, broker, [broker]), (1, broker, [broker])]
        assert all(p["lag"] == 0 and p["committed"] == p["end_offset"] for p in partitions), partitions
        return topic

    topic = eventually(caught_up, timeout=30)
    assert sum(p["end_offset"] for p in topic["partitions"]) >= 6
    dom = rendered(facade + "/status")
    assert '<tr id="partition-0">' in dom and '<tr id="partition-1">' in dom
    assert '<section id="queue-section" hidden="">' in dom and '<section id="topic-section">' in dom
