"""Consul mode with the facade logging over gRPC: each logging copy is registered a second time, as
logging-service-grpc with a gRPC health check, and the facade finds the gRPC copies there only."""

import uuid

import pytest
import requests

from lab_common.consul_support import agent
from lab_common.contracts import LOGGING_GRPC_SERVICE
from lab_common.settings import ServiceSettings
from labctl.experiment import run_experiment
from labctl.launcher import System, Topology
from tests.consul.test_consul_mode import passing
from tests.helpers import eventually, port_offset

pytestmark = pytest.mark.consul

PORT_OFFSET = port_offset(13_500)  # logging's gRPC on 63551-63555


@pytest.fixture(scope="module")
def system(tmp_path_factory):
    system = System(tmp_path_factory.mktemp("consul-grpc"))
    topology = Topology(cluster_name=f"consul-grpc-{uuid.uuid4().hex[:8]}", members=2, logging=3, messages=1,
                        facades=1, port_offset=PORT_OFFSET, discovery="consul", transport="grpc")
    system.start(topology, timeout=180)
    yield system
    system.stop()


@pytest.fixture(scope="module")
def consul_client(system):
    return agent(ServiceSettings.load("test", default_port=1, environ={}, argv=[],
                                      consul=f"127.0.0.1:{system.state().topology.consul_port}"))


def test_each_logging_copy_is_registered_as_the_grpc_service_with_a_passing_grpc_check(system, consul_client):
    grpc_ports = set(system.state().topology.grpc_ports().values())
    eventually(lambda: passing(consul_client, LOGGING_GRPC_SERVICE) == grpc_ports, timeout=15)
    _, entries = consul_client.health.service(LOGGING_GRPC_SERVICE)
    assert all(e["Service"]["Tags"] == ["grpc"] for e in entries)
    assert all(c["Type"] == "grpc" for e in entries for c in e["Checks"] if c["CheckID"] != "serfHealth")


def test_the_experiment_passes_with_the_grpc_copies_found_in_consul(system):
    lines = []
    assert run_experiment(system, count=10, out=lines.append) == 0, "\n".join(lines)


def test_a_killed_copy_leaves_the_grpc_passing_set_and_the_facade_logs_through_the_others(system, consul_client):
    port = system.state().topology.grpc_ports()["logging-2"]
    system.kill("logging-2")
    try:
        eventually(lambda: port not in passing(consul_client, LOGGING_GRPC_SERVICE), timeout=30)
        for i in range(10):
            response = requests.post(system.url("facade-1") + "/facade", data={"msg": f"around-{i}"}, timeout=10)
            assert response.status_code == 201 and response.json()["logged_by"] != "logging-2"
    finally:
        system.start_process("logging-2")
    eventually(lambda: port in passing(consul_client, LOGGING_GRPC_SERVICE), timeout=15)
