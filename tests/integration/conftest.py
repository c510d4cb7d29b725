"""A real 3-member Hazelcast cluster for the whole session, started from the pinned jar."""

from __future__ import annotations

import dataclasses
import os
import uuid

import pytest

from lab_common.cluster import ClusterConnection
from lab_common.settings import HazelcastSettings
from labctl.launcher import System, Topology
from tests.helpers import port_offset

PORT_OFFSET = 10_000  # members on 15701-15703: a system the user runs on the default ports is left alone
# two test runs side by side: another offset, or LAB_TEST_PORT_SHIFT as for every suite
PORT_OFFSET = int(os.environ.get("LAB_IT_PORT_OFFSET", port_offset(PORT_OFFSET)))


@pytest.fixture(scope="session")
def cluster(tmp_path_factory):
    system = System(tmp_path_factory.mktemp("cluster"))
    topology = Topology(cluster_name=f"it-{uuid.uuid4().hex[:8]}", members=3, logging=0, messages=0, facades=0,
                        port_offset=PORT_OFFSET)
    try:
        system.start(topology, timeout=120)
        system.wait_cluster_safe(3)
        yield system
    finally:
        system.stop()


@pytest.fixture(scope="session")
def cluster_settings(cluster) -> HazelcastSettings:
    topology = cluster.state().topology
    return HazelcastSettings.load("integration-test", default_port=1, environ={}, argv=[], instance="it-copy",
                         hz_cluster_name=topology.cluster_name, hz_members=tuple(topology.member_addresses()))


@pytest.fixture
def connect(cluster_settings):
    """Opens ClusterConnections (optionally with other settings) and closes them after the test."""
    opened = []

    def open_connection(**changes) -> ClusterConnection:
        connection = ClusterConnection(dataclasses.replace(cluster_settings, **changes)).start()
        assert connection.wait_connected(30), connection.status
        opened.append(connection)
        return connection

    yield open_connection
    for connection in opened:
        connection.close()


KAFKA_PORT_OFFSET = PORT_OFFSET + 50  # its own system (a config server too): ports clear of the cluster's


@pytest.fixture(scope="session")
def kafka_broker(tmp_path_factory) -> str:
    """A real single Kafka broker (KRaft) for the session, started by the launcher from the pinned jars; answers
    its bootstrap address. Tests make their own topics (kafka_topic) and consumer groups."""
    system = System(tmp_path_factory.mktemp("kafka"))
    topology = Topology(members=0, logging=0, messages=0, facades=0, queue="kafka", brokers=1,
                        port_offset=KAFKA_PORT_OFFSET)
    try:
        system.start(topology, timeout=120)
        yield topology.kafka_bootstrap()
    finally:
        system.stop()


@pytest.fixture
def kafka_topic(kafka_broker, unique_name) -> str:
    """A 2-partition topic of this test's own, as the launcher creates the messages topic."""
    from labctl.launcher.kafka import create_topic

    name = f"t-{unique_name}".replace("[", "-").replace("]", "-")
    create_topic(kafka_broker, name, partitions=2, brokers=1)
    return name
