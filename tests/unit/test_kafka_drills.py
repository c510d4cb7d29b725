"""The Kafka drills' pure logic, without a broker: whether a system fits a Kafka drill, the topic's leaders and
in-sync replicas read from metadata (fakes shaped as confluent_kafka's ClusterMetadata), the consumer group's
split read from the copies' /health, and the broker addresses the launcher's state names."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import pytest

from labctl.cli import build_parser
from labctl.drills import DRILLS
from labctl.drills.kafka_view import (
    KafkaUnreadable,
    TopicView,
    describe,
    each_owned_once,
    kafka_mode_problem,
    owned,
    split_of,
)
from labctl.launcher import State, System, Topology
from labctl.probe import Check, ServiceHealth

THREE = {"kafka-1": "127.0.0.1:9092", "kafka-2": "127.0.0.1:9094", "kafka-3": "127.0.0.1:9096"}


@dataclass
class FakeBrokerMetadata:
    id: int
    host: str
    port: int


@dataclass
class FakePartitionMetadata:
    leader: int
    isrs: list[int]


@dataclass
class FakeTopicMetadata:
    partitions: dict[int, FakePartitionMetadata]
    error: object = None


@dataclass
class FakeClusterMetadata:
    topics: dict[str, FakeTopicMetadata]
    brokers: dict[int, FakeBrokerMetadata] = field(default_factory=lambda: {
        i: FakeBrokerMetadata(i, "127.0.0.1", 9090 + 2 * i) for i in (1, 2, 3)})


def metadata(*leaders: int, in_sync: tuple[int, ...] = (1, 2, 3)) -> FakeClusterMetadata:
    partitions = {p: FakePartitionMetadata(leader, list(in_sync)) for p, leader in enumerate(leaders)}
    return FakeClusterMetadata({"messages": FakeTopicMetadata(partitions)})


def test_kafka_drills_refuse_a_hazelcast_mode_system_and_say_how_to_start_one():
    problem = kafka_mode_problem({}, 3, "broker-loss")
    assert "Hazelcast queue" in problem and "--queue kafka --brokers 3" in problem
    assert "--queue kafka`" in kafka_mode_problem({}, 1, "rebalance")


def test_broker_loss_refuses_a_single_broker_and_takes_three():
    problem = kafka_mode_problem({"kafka-1": "127.0.0.1:9092"}, 3, "broker-loss")
    assert "runs 1" in problem and "--brokers 3" in problem
    assert kafka_mode_problem(THREE, 3, "broker-loss") is None
    assert kafka_mode_problem({"kafka-1": "127.0.0.1:9092"}, 1, "rebalance") is None


def test_brokers_are_named_by_the_address_they_advertise_not_by_their_node_id():
    shuffled = {"kafka-1": "127.0.0.1:9096", "kafka-2": "127.0.0.1:9092", "kafka-3": "127.0.0.1:9094"}
    view = TopicView.of(metadata(3, 1), shuffled)
    assert view.names == {1: "kafka-2", 2: "kafka-3", 3: "kafka-1"}
    assert view.leaders() == "partition 0: kafka-1, partition 1: kafka-2"


def test_the_broker_leading_most_partitions_is_chosen_and_a_tie_goes_to_the_lowest_partition():
    assert TopicView.of(metadata(2, 3, 3), THREE).busiest_leader() == 3
    assert TopicView.of(metadata(3, 2), THREE).busiest_leader() == 3
    assert TopicView.of(metadata(-1, 2), THREE).busiest_leader() == 2
    assert TopicView.of(metadata(2, 3, 2), THREE).led_by(2) == [0, 2]


def test_a_topic_without_leaders_or_unknown_to_the_brokers_is_unreadable():
    with pytest.raises(KafkaUnreadable, match="no partition"):
        TopicView.of(metadata(-1, -1), THREE).busiest_leader()
    with pytest.raises(KafkaUnreadable, match="do not know"):
        TopicView.of(FakeClusterMetadata({}), THREE)
    with pytest.raises(KafkaUnreadable, match="do not know"):
        TopicView.of(FakeClusterMetadata({"messages": FakeTopicMetadata({}, error="UNKNOWN_TOPIC")}), THREE)


def test_a_killed_leaders_partitions_count_as_moved_only_once_another_broker_leads_each():
    assert not TopicView.of(metadata(2, 2), THREE).led_elsewhere([0, 1], 2)
    assert not TopicView.of(metadata(-1, 3), THREE).led_elsewhere([0, 1], 2)
    assert not TopicView.of(metadata(1, 2), THREE).led_elsewhere([0, 1], 2)
    assert TopicView.of(metadata(1, 3), THREE).led_elsewhere([0, 1], 2)


def test_a_restarted_broker_is_back_only_when_every_partition_counts_it_in_sync():
    partitions = {0: FakePartitionMetadata(1, [1, 2, 3]), 1: FakePartitionMetadata(3, [1, 3])}
    view = TopicView.of(FakeClusterMetadata({"messages": FakeTopicMetadata(partitions)}), THREE)
    assert not view.in_sync_everywhere(2) and view.in_sync_everywhere(1)
    assert view.in_sync() == "partition 0: kafka-1, kafka-2, kafka-3; partition 1: kafka-1, kafka-3"


def group_health(partitions: list[int] | None) -> ServiceHealth:
    checks = {"consumer": Check(True, {"received": 0})}
    if partitions is not None:
        checks["consumer-group"] = Check(True, {"state": "in the group", "partitions": partitions, "lag": 0})
    return ServiceHealth(200, checks)


def test_the_groups_split_is_read_from_each_copys_health_and_a_hazelcast_copy_has_none():
    split = split_of({"messages-1": group_health([1, 0]), "messages-2": group_health([]),
                      "messages-3": group_health(None)})
    assert split == {"messages-1": (0, 1), "messages-2": ()}
    assert describe(split) == "messages-1: 0, 1; messages-2: none"
    assert owned(split, ["messages-1", "messages-2"]) == {0, 1}


def test_a_split_is_whole_only_when_the_copies_own_every_partition_once():
    assert each_owned_once({"messages-1": (0,), "messages-2": (1,)}, [0, 1], ["messages-1", "messages-2"])
    assert each_owned_once({"messages-2": (0, 1)}, [0, 1], ["messages-2"])
    assert not each_owned_once({"messages-1": (0,), "messages-2": (1,)}, [0, 1], ["messages-2"])
    assert not each_owned_once({"messages-1": (0, 1), "messages-2": (1,)}, [0, 1], ["messages-1", "messages-2"])


def write_state(tmp_path, topology: Topology) -> System:
    tmp_path.mkdir()
    (tmp_path / "state.json").write_text(json.dumps(State("run", topology, {}).to_json()))
    return System(tmp_path)


def test_the_launcher_names_each_broker_with_its_shifted_address_and_none_in_hazelcast_mode(tmp_path):
    kafka = write_state(tmp_path / "k", Topology(queue="kafka", brokers=3, port_offset=100))
    assert kafka.kafka_brokers() == {"kafka-1": "127.0.0.1:9192", "kafka-2": "127.0.0.1:9194",
                                     "kafka-3": "127.0.0.1:9196"}
    assert write_state(tmp_path / "h", Topology(brokers=3)).kafka_brokers() == {}


def test_labctl_drill_offers_the_kafka_drills():
    assert {"broker-loss", "rebalance", "consumer-crash"} <= set(DRILLS)
    assert build_parser().parse_args(["drill", "broker-loss"]).name == "broker-loss"
