"""The network drills against one real system with three hosts (`labctl start --hosts 3`): a host cut off, the
queue owner's host cut off, a bridge partition, a slow link and a lossy one, one after another on the same
system (each heals what it did, and the next one's preflight waits until the cluster is whole and safe). Each
test checks the drill's report, then reads back the messages that carry its tag."""

from __future__ import annotations

import functools
import re

import pytest

from scripts import drills
from tests.drills.test_drills import drilled
from tests.helpers import port_offset, started_system

pytestmark = pytest.mark.drill

# the facade on 127.0.0.1:32180 (+ the shift); everything else on the hosts' own addresses
PORT_OFFSET = port_offset(24_000)
CUT = 20.0  # seconds a partition lasts in the tests: past the members' 10 s failure detection
AFTER = 15.0  # seconds of load after a heal
HOLD = 10.0  # seconds a slow or lossy link lasts in the tests


@pytest.fixture(scope="module")
def hosts_system(tmp_path_factory):
    with started_system(tmp_path_factory.mktemp("net-drills"), "ndrill", port_offset=PORT_OFFSET,
                        hosts=3) as system:
        yield system


@pytest.mark.parametrize("drill", [
    functools.partial(drills.partition_minority, cut=CUT, after=AFTER),
    functools.partial(drills.partition_queue_owner, cut=CUT, after=AFTER),
    functools.partial(drills.partition_bridge, cut=CUT, after=AFTER),
], ids=["partition-minority", "partition-queue-owner", "partition-bridge"])
def test_a_partition_healed_loses_and_repeats_nothing_and_the_cluster_is_whole_again(hosts_system, drill):
    report = drilled(hosts_system, drill, shared=True)
    assert re.fullmatch(r"none|\d+ x 503", report.value_of("POSTs failed")), report.value_of("POSTs failed")
    assert float(report.value_of("heal -> 3 members and every partition safe (s)")) < 120
    hosts_system.wait_cluster_safe(3, timeout=60)


@pytest.mark.parametrize("drill", [
    functools.partial(drills.slow_link, hold=HOLD), functools.partial(drills.flaky_link, hold=HOLD),
], ids=["slow-link", "flaky-link"])
def test_a_slow_or_lossy_link_fails_no_post_and_loses_and_repeats_nothing(hosts_system, drill):
    report = drilled(hosts_system, drill, shared=True)
    assert report.value_of("POSTs failed") == "none"
    assert report.recovery_seconds is not None  # back at full rate once the link is whole
