"""A fresh whole system for every drill, on ports clear of the lab's defaults and of the other suites."""

from __future__ import annotations

import uuid

import pytest

from scripts.launcher import System, Topology
from tests.helpers import port_offset

# members on 25701-25703, facade on 28080: a system on the default ports is left alone
PORT_OFFSET = port_offset(20_000)


@pytest.fixture
def system(tmp_path):
    system = System(tmp_path / "run")
    try:
        system.start(Topology(cluster_name=f"drill-{uuid.uuid4().hex[:8]}", port_offset=PORT_OFFSET), timeout=120)
        yield system
    finally:
        system.stop()
