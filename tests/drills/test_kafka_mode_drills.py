"""The drills of Kafka mode against one real system with three brokers (`labctl start --queue kafka --brokers 3`):
a messages copy killed mid-stream, the group's rebalance when a copy dies and comes back, and a broker that
leads a partition killed under load. One system for the three (a 3-broker system is slow to start): each test
checks the drill's report, then reads back the messages that carry its tag."""

from __future__ import annotations

import functools
import re

import pytest

from labctl import drills
from tests.drills.test_drills import drilled
from tests.helpers import port_offset, started_system

pytestmark = pytest.mark.drill

# members on 27701-27703, the facade on 30080, brokers on 31092-31097: clear of every other suite's ports
PORT_OFFSET = port_offset(22_000)


@pytest.fixture(scope="module")
def kafka_system(tmp_path_factory):
    with started_system(tmp_path_factory.mktemp("kafka-drills"), "kdrill", port_offset=PORT_OFFSET, queue="kafka",
                        brokers=3) as system:
        yield system


def test_a_consumer_killed_mid_stream_loses_and_repeats_nothing_and_rejoins_the_group(kafka_system):
    report = drilled(kafka_system, functools.partial(drills.consumer_crash, count=600), shared=True)
    assert report.posted == 600
    assert "messages-1: none" not in report.value_of("partitions after messages-1 started again")


def test_the_other_copy_takes_a_killed_copys_partitions_and_consumes_everything_then_gives_one_back(kafka_system):
    report = drilled(kafka_system, drills.rebalance, shared=True)
    assert report.value_of("partitions with messages-1 down") == "messages-2: 0, 1"
    received, posted = report.value_of("received with messages-1 down").split("/")
    assert received == posted
    assert "messages-1: none" not in report.value_of("partitions after messages-1 started again")
    assert int(report.value_of("of 100 POSTed after the restart, received by messages-1")) > 0


def test_a_partition_leaders_loss_costs_no_acknowledged_message_and_fails_posts_only_with_503(kafka_system):
    report = drilled(kafka_system, drills.broker_loss, shared=True)
    assert re.fullmatch(r"none|\d+ x 503", report.value_of("POSTs failed")), report.value_of("POSTs failed")
    victim = report.value_of("broker killed (leading partitions)").split()[0]
    assert report.value_of(f"{victim} answering -> in the ISR of every partition (s)")
    assert report.recovery_seconds is not None
