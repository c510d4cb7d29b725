"""The Kafka brokers of `labctl start --queue kafka`: each broker's server.properties (kafka/server.properties
plus what differs per broker), its commands (format the storage once, then run the broker, both in KRaft
combined mode), the messages topic, and a broker's health: whether it answers a metadata request.

Ports: broker i listens for clients on 9090 + 2i (9092, 9094, 9096) and for its controller quorum on
9091 + 2i (9093, 9095, 9097), all on 127.0.0.1 and moved by the topology's port offset.
"""

from __future__ import annotations

import base64
import shutil
import time
from pathlib import Path

from labctl.deps import KAFKA_DIR, ensure_kafka_libs

PARTITIONS = 2  # the messages topic's: one per messages copy, so each copy of the default two gets one
FORMAT_MAIN = "kafka.tools.StorageTool"
BROKER_MAIN = "kafka.Kafka"


def cluster_id(run_id: str) -> str:
    """A KRaft cluster id (16 bytes, URL-safe base64) made from the run's id: the same for every broker of
    a run, new for every run. Never starting with '-', which the storage tool would read as an option (as
    Kafka's own random ids avoid): one run in 64 failed to start its broker so."""
    raw = bytes.fromhex(run_id) if len(run_id) == 32 else run_id.encode().ljust(16, b"-")[:16]
    if raw[0] >> 2 == 62:  # the first character would be '-': flip the byte's top bit ('e' instead)
        raw = bytes([raw[0] ^ 0x80]) + raw[1:]
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def jvm_options() -> list[str]:
    lines = (KAFKA_DIR / "jvm.options").read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]


def data_dir(run_dir: Path, i: int) -> Path:
    return run_dir / f"kafka-{i}"


def config_path(run_dir: Path, i: int) -> Path:
    return data_dir(run_dir, i) / "server.properties"


def broker_config(i: int, *, brokers: int, port: int, controller_port: int, voters: str, log_dir: Path) -> str:
    """Broker i's server.properties: the shared lines of kafka/server.properties, then its own."""
    replicas = min(brokers, 3)
    in_sync = min(2, replicas)
    own = [
        "",
        f"# broker {i} of {brokers}: written by the launcher (scripts/labctl/launcher/kafka.py)",
        f"node.id={i}",
        f"controller.quorum.voters={voters}",
        f"listeners=PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller_port}",
        f"advertised.listeners=PLAINTEXT://127.0.0.1:{port}",
        f"log.dirs={log_dir}",
        f"default.replication.factor={replicas}",
        f"min.insync.replicas={in_sync}",
        f"offsets.topic.replication.factor={replicas}",
        f"transaction.state.log.replication.factor={replicas}",
        f"transaction.state.log.min.isr={in_sync}",
        f"num.partitions={PARTITIONS}",
    ]
    return (KAFKA_DIR / "server.properties").read_text() + "\n".join(own) + "\n"


def write_configs(topology, run_dir: Path) -> None:
    """A fresh storage folder and server.properties for every broker: a new run starts with no topics and no
    messages, as its Hazelcast members do (a broker started again within a run keeps its folder)."""
    voters = ",".join(f"{i}@127.0.0.1:{topology.kafka_controller_port(i)}" for i in range(1, topology.brokers + 1))
    for i in range(1, topology.brokers + 1):
        folder = data_dir(run_dir, i)
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        config_path(run_dir, i).write_text(broker_config(
            i, brokers=topology.brokers, port=topology.kafka_port(i), controller_port=topology.kafka_controller_port(i),
            voters=voters, log_dir=folder / "data"))


def commands(run_dir: Path, i: int, run_id: str) -> tuple[list[str], list[str]]:
    """(format, run): the storage formatted for this run's cluster id (a no-op once it is), then the broker."""
    classpath = f"{ensure_kafka_libs()}/*"
    java = ["java", *jvm_options(), f"-Dlog4j2.configurationFile={KAFKA_DIR / 'log4j2.properties'}",
            "-cp", classpath]
    config = str(config_path(run_dir, i))
    return ([*java, FORMAT_MAIN, "format", "--config", config, "--cluster-id", cluster_id(run_id),
             "--ignore-formatted"],
            [*java, BROKER_MAIN, config])


def broker_health(bootstrap: str, timeout: float = 1.0) -> tuple[bool, str]:
    """Whether the broker at `bootstrap` answers a metadata request, and how many brokers it knows."""
    from confluent_kafka import KafkaException
    from confluent_kafka.admin import AdminClient

    admin = AdminClient({"bootstrap.servers": bootstrap, "socket.connection.setup.timeout.ms": int(timeout * 1000),
                         "log_level": 0})  # a broker not up yet is the answer, not an error to print
    try:
        metadata = admin.list_topics(timeout=timeout)
    except KafkaException as err:
        return False, f"no metadata ({err.args[0].str() if err.args else err})"
    return True, f"{len(metadata.brokers)} broker(s), {len(metadata.topics)} topic(s)"


def create_topic(bootstrap: str, topic: str, *, partitions: int = PARTITIONS, brokers: int = 1,
                 timeout: float = 30.0) -> None:
    """The messages topic: `partitions` partitions, each on every broker (at most 3), 2 of them in sync for a
    write to be acknowledged when there are 3. An existing topic is left as it is."""
    from confluent_kafka import KafkaError, KafkaException
    from confluent_kafka.admin import AdminClient, NewTopic

    replicas = min(brokers, 3)
    admin = AdminClient({"bootstrap.servers": bootstrap})
    new = NewTopic(topic, num_partitions=partitions, replication_factor=replicas,
                   config={"min.insync.replicas": str(min(2, replicas))})
    deadline = time.monotonic() + timeout
    while True:
        try:
            admin.create_topics([new], operation_timeout=timeout)[topic].result(timeout)
            break
        except KafkaException as err:
            error = err.args[0]
            if error.code() == KafkaError.TOPIC_ALREADY_EXISTS:
                break
            if time.monotonic() > deadline:  # e.g. fewer brokers registered than the replicas asked for
                raise
            time.sleep(0.5)
    while time.monotonic() < deadline:  # until every partition has a leader: a produce would fail before that
        found = admin.list_topics(topic, timeout=5).topics.get(topic)
        if found is not None and found.error is None and len(found.partitions) == partitions and all(
                p.leader >= 0 for p in found.partitions.values()):
            return
        time.sleep(0.2)
    raise TimeoutError(f"topic {topic} has no leader for every partition after {timeout:.0f}s")
