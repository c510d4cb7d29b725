"""A fresh whole system for every drill, on ports clear of the lab's defaults and of the other suites."""

from __future__ import annotations

import pytest

from tests.helpers import port_offset, started_system

# members on 25701-25703, facade on 28080: a system on the default ports is left alone
PORT_OFFSET = port_offset(20_000)
# gRPC mode: logging's gRPC ports are 50051+ plus the offset, so this one must stay small (56051-56055)
GRPC_PORT_OFFSET = port_offset(6_000)


@pytest.fixture(params=["http"])
def system(tmp_path, request):
    """A fresh system; a test module that sets `transport` params (["http", "grpc"]) runs in each."""
    transport = request.param
    offset = GRPC_PORT_OFFSET if transport == "grpc" else PORT_OFFSET
    with started_system(tmp_path / "run", "drill", port_offset=offset, transport=transport) as system:
        yield system


@pytest.fixture
def quorum_system(tmp_path):
    """A fresh system in quorum mode: members refuse writes unless 2 of them are in touch."""
    with started_system(tmp_path / "run", "drill-q", port_offset=PORT_OFFSET, consistency="quorum") as system:
        yield system
