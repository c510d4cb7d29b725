"""The members' own statistics, as the Prometheus JMX exporter agent serves them on 127.0.0.1:9700+N (+ offset).

The status page reads who owns how many entries of a map, who holds the queue and how many partitions each
member owns from here: these tests write through a client and check that the members' /metrics add up.
Hazelcast refreshes the MBeans once per metrics collection (member.yaml), hence `eventually`.
"""

from __future__ import annotations

import threading
import uuid

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

import hazelcast
from tests.helpers import eventually

pytestmark = pytest.mark.integration

ENTRIES = 120
ITEMS = 7


def scrape(url: str) -> dict[str, list]:
    """Samples by sample name (a counter's end in _total) from one member's /metrics."""
    samples: dict[str, list] = {}
    for family in text_string_to_metric_families(requests.get(url, timeout=5).text):
        for sample in family.samples:
            samples.setdefault(sample.name, []).append(sample)
    return samples


def value(samples: dict[str, list], name: str, **labels) -> float | None:
    found = [s.value for s in samples.get(name, []) if all(s.labels.get(k) == v for k, v in labels.items())]
    assert len(found) <= 1, (name, labels, found)
    return found[0] if found else None


@pytest.fixture(scope="module")
def metrics_urls(cluster) -> dict[str, str]:
    topology = cluster.state().topology
    return {f"127.0.0.1:{topology.member_port(i)}": f"http://127.0.0.1:{topology.member_metrics_port(i)}/metrics"
            for i in range(1, topology.members + 1)}


@pytest.fixture(scope="module")
def client(cluster):
    cluster_name, addresses = cluster.hazelcast_cluster()
    client = hazelcast.HazelcastClient(cluster_name=cluster_name, cluster_members=list(addresses.values()))
    yield client
    client.shutdown()


def test_every_member_serves_only_the_whitelisted_metrics(metrics_urls):
    for url in metrics_urls.values():
        samples = scrape(url)
        assert value(samples, "hazelcast_partition_count") == 271
        assert value(samples, "hazelcast_operations_completed_total") > 0
        assert value(samples, "jvm_memory_used_bytes", area="heap") > 0  # the agent's JVM basics
        assert not [n for n in samples if n.startswith(("com_hazelcast", "java_lang"))]  # no raw MBeans


def test_every_partition_has_exactly_one_owner(client, metrics_urls):
    client.get_map(f"it-metrics-{uuid.uuid4().hex[:8]}").blocking().put("k", "v")  # assigns the partitions: a
    # fresh cluster assigns them on first use, and until then every member reports owning 0

    def owned():
        counts = [value(scrape(url), "hazelcast_partitions_owned") for url in metrics_urls.values()]
        assert sum(counts) == 271 and all(c > 0 for c in counts), counts
    eventually(owned, timeout=30, interval=0.5)


def test_map_entries_and_queue_items_add_up_over_the_members(client, metrics_urls):
    map_name, queue_name = f"it-metrics-map-{uuid.uuid4().hex[:8]}", f"it-metrics-queue-{uuid.uuid4().hex[:8]}"
    client.get_map(map_name).blocking().put_all({f"key-{i}": f"value-{i}" for i in range(ENTRIES)})
    queue = client.get_queue(queue_name).blocking()
    for i in range(ITEMS):
        assert queue.offer(f"item-{i}")

    def counted():
        by_member = {address: scrape(url) for address, url in metrics_urls.items()}
        owned = {a: value(s, "hazelcast_map_owned_entries", map=map_name) or 0 for a, s in by_member.items()}
        backup = {a: value(s, "hazelcast_map_backup_entries", map=map_name) or 0 for a, s in by_member.items()}
        queued = {a: value(s, "hazelcast_queue_owned_items", queue=queue_name) or 0 for a, s in by_member.items()}
        queue_backups = {a: value(s, "hazelcast_queue_backup_items", queue=queue_name) or 0
                         for a, s in by_member.items()}
        assert sum(owned.values()) == ENTRIES, owned
        assert sum(backup.values()) == 2 * ENTRIES, backup  # backup-count 2 (member.yaml)
        assert sorted(queued.values()) == [0, 0, ITEMS], queued  # the whole queue on its partition's owner
        assert sorted(queue_backups.values()) == [0, ITEMS, ITEMS], queue_backups
        return by_member, queued

    by_member, queued = eventually(counted, timeout=30, interval=0.5)
    holder = next(address for address, items in queued.items() if items == ITEMS)
    assert value(by_member[holder], "hazelcast_queue_offers_total", queue=queue_name) == ITEMS

    # ... and the member that holds the queue is its partition's owner, as the client sees it
    partition = client.partition_service.get_partition_id(queue_name)
    owner = client.partition_service.get_partition_owner(partition)
    owner_address = next(m.address for m in client.cluster_service.get_members() if m.uuid == owner)
    assert f"{owner_address.host}:{owner_address.port}" == holder


BACKUPS_HELD_FOR = 2.0  # seconds both backup members stay frozen: well under the 5 s the client waits for backup acks


def test_a_write_is_answered_only_once_both_backups_have_it(cluster, client):
    """Synchronous backups (member.yaml): with both members that would hold a queue's backups frozen, an offer
    to it gets no answer until they are thawed and have it. (Asynchronous ones: answered at once.)"""
    queue_name = f"it-backups-{uuid.uuid4().hex[:8]}"
    partitions = client.partition_service
    owner_uuid = partitions.get_partition_owner(partitions.get_partition_id(queue_name))
    owner = next(m.address for m in client.cluster_service.get_members() if m.uuid == owner_uuid)
    backups = [name for name, address in cluster.hazelcast_cluster()[1].items()
               if address != f"{owner.host}:{owner.port}"]
    assert len(backups) == 2
    queue = client.get_queue(queue_name)
    assert queue.offer("warm-up").result()  # the queue exists, its proxy and connection are made
    for name in backups:
        cluster.freeze(name)
    try:
        answer = queue.offer("item")
        answered = threading.Event()
        answer.add_done_callback(lambda _: answered.set())
        answered_early = answered.wait(BACKUPS_HELD_FOR)
    finally:
        for name in backups:
            cluster.thaw(name)
    assert not answered_early, "the offer was answered while neither backup member could have taken it"
    assert answer.result() is True
    assert queue.blocking().size() == 2

