"""What a drill reads of Kafka mode (docs/kafka.md): the brokers' metadata of the messages topic (each partition's
leader and in-sync replicas, by broker name) and the consumer group's split of the partitions between the
messages copies, as each copy's /health reports it (`checks.consumer-group.detail.partitions`)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Mapping
from dataclasses import dataclass

from lab_common.contracts import MESSAGES_TOPIC
from labctl.control import Controller
from labctl.drills.delivery import READ_ERRORS
from labctl.drills.framework import DrillError, DrillRun
from labctl.probe import ServiceHealth, service_health, wait_for

METADATA_TIMEOUT = 5.0
HEALTH_TIMEOUT = 5.0
Split = dict[str, tuple[int, ...]]  # messages copy -> the partitions it owns


class KafkaUnreadable(RuntimeError):
    """No broker answered a metadata request, or the topic is not (yet) known."""


def kafka_mode_problem(brokers: Mapping[str, str], needed: int, drill: str) -> str | None:
    """Why a Kafka drill cannot run on a system with these brokers (None: it can)."""
    how = "`labctl start --queue kafka" + (f" --brokers {needed}`" if needed > 1 else "`")
    if not brokers:
        return f"{drill} drills Kafka mode, and this system runs the Hazelcast queue: start it with {how}"
    if len(brokers) < needed:
        return (f"{drill} needs {needed} Kafka brokers and this system runs {len(brokers)}: "
                f"start it with {how}")
    return None


def require_kafka(controller: Controller, drill: str, needed: int = 1) -> dict[str, str]:
    """The brokers' addresses by name; DrillError (nothing killed yet) unless the system runs enough of them."""
    brokers = controller.kafka_brokers()
    problem = kafka_mode_problem(brokers, needed, drill)
    if problem:
        raise DrillError(problem)
    return brokers


@dataclass(frozen=True)
class PartitionView:
    leader: int  # the leading broker's node id; -1 while none leads
    in_sync: tuple[int, ...]  # node ids of the in-sync replicas


@dataclass(frozen=True)
class TopicView:
    """One metadata answer: the topic's partitions and the brokers by node id -> name."""

    partitions: Mapping[int, PartitionView]
    names: Mapping[int, str]

    @classmethod
    def of(cls, metadata, addresses: Mapping[str, str], topic: str = MESSAGES_TOPIC) -> TopicView:
        """From confluent_kafka's ClusterMetadata; a broker is named by the address it advertises."""
        found = metadata.topics.get(topic)
        if found is None or found.error is not None:
            raise KafkaUnreadable(f"the brokers do not know topic {topic} ({getattr(found, 'error', 'absent')})")
        by_address = {address: name for name, address in addresses.items()}
        names = {b.id: by_address[f"{b.host}:{b.port}"] for b in metadata.brokers.values()
                 if f"{b.host}:{b.port}" in by_address}
        partitions = {p: PartitionView(meta.leader, tuple(sorted(meta.isrs))) for p, meta in found.partitions.items()}
        return cls(partitions, names)

    def name(self, node: int) -> str:
        return self.names.get(node, f"broker {node}")

    def busiest_leader(self) -> int:
        """The broker leading the most partitions (on a tie, the one leading the lowest partition)."""
        leaders = [view.leader for _, view in sorted(self.partitions.items()) if view.leader >= 0]
        if not leaders:
            raise KafkaUnreadable("no partition of the topic has a leader")
        counts = Counter(leaders)
        return max(leaders, key=lambda node: counts[node])

    def led_by(self, node: int) -> list[int]:
        return sorted(p for p, view in self.partitions.items() if view.leader == node)

    def led_elsewhere(self, partitions: Collection[int], node: int) -> bool:
        """Every one of these partitions has a leader other than `node`."""
        return all(self.partitions[p].leader not in (-1, node) for p in partitions)

    def in_sync_everywhere(self, node: int) -> bool:
        return all(node in view.in_sync for view in self.partitions.values())

    def in_sync(self) -> str:
        """'partition 0: kafka-1, kafka-3; partition 1: ...'."""
        return "; ".join(f"partition {p}: {', '.join(self.name(n) for n in v.in_sync) or 'none'}"
                         for p, v in sorted(self.partitions.items()))

    def leaders(self) -> str:
        """'partition 0: kafka-2, partition 1: kafka-3'."""
        return ", ".join(f"partition {p}: {self.name(v.leader) if v.leader >= 0 else 'none'}"
                         for p, v in sorted(self.partitions.items()))


def read_topic(addresses: Mapping[str, str], topic: str = MESSAGES_TOPIC,
               timeout: float = METADATA_TIMEOUT) -> TopicView:
    """Ask the brokers at these addresses (any that answers) for the topic's metadata."""
    from confluent_kafka import KafkaException
    from confluent_kafka.admin import AdminClient

    admin = AdminClient({"bootstrap.servers": ",".join(addresses.values()), "log_level": 0,
                         "socket.connection.setup.timeout.ms": int(timeout * 1000)})
    try:
        return TopicView.of(admin.list_topics(topic, timeout=timeout), addresses, topic)
    except KafkaException as err:
        raise KafkaUnreadable(f"no broker answered a metadata request: {err}") from err


def split_of(healths: Mapping[str, ServiceHealth]) -> Split:
    """Each copy's partitions as its /health reports them (a copy without the check is left out)."""
    split = {}
    for copy, health in healths.items():
        check = health.checks.get("consumer-group")
        if check is not None and isinstance(check.detail, Mapping) and "partitions" in check.detail:
            split[copy] = tuple(sorted(check.detail["partitions"]))
    return split


def read_split(controller: Controller, skip: Collection[str] = ()) -> Split:
    """The group's split as the messages copies not in `skip` report it (those that do not answer are left out)."""
    healths = {}
    for copy in controller.names("messages"):
        if copy in skip:
            continue
        try:
            healths[copy] = service_health(controller.url(copy), HEALTH_TIMEOUT)
        except READ_ERRORS:
            continue
    return split_of(healths)


def describe(split: Split) -> str:
    """'messages-1: 0; messages-2: 1' ('none' for a copy that owns no partition)."""
    return "; ".join(f"{copy}: {', '.join(map(str, parts)) or 'none'}" for copy, parts in sorted(split.items()))


def owned(split: Split, copies: Collection[str]) -> set[int]:
    return {p for copy in copies for p in split.get(copy, ())}


def each_owned_once(split: Split, partitions: Collection[int], copies: Collection[str]) -> bool:
    """These copies between them own every one of the partitions, none twice."""
    held = [p for copy in copies for p in split.get(copy, ())]
    return sorted(held) == sorted(partitions)


def group_before(run: DrillRun) -> bool:
    """In Kafka mode, the group's split as a figure; answers whether the system runs Kafka mode."""
    if not run.controller.kafka_brokers():
        return False
    run.figure("partitions before", describe(read_split(run.controller)))
    return True


def wait_rejoined(run: DrillRun, copy: str, timeout: float = 45.0) -> None:
    """Until the copy started again owns a partition (the group rebalanced and gave it one back), as a check."""
    split, seconds = wait_for(lambda: read_split(run.controller), lambda s: bool(s.get(copy)), timeout, interval=0.5)
    run.figure(f"partitions after {copy} started again", describe(split or {}))
    run.check(seconds is not None, f"{copy} owned no partition {timeout:.0f} s after its start")
