"""Consul mode with a real agent (built from its Go module, started by the launcher)."""

import base64
import json
import uuid

import pytest
import requests

import hazelcast
from lab_common.consul_support import KV_PREFIX, agent
from lab_common.settings import ServiceSettings
from labctl.experiment import run_experiment
from labctl.launcher import System, Topology
from tests.helpers import eventually, port_offset

pytestmark = pytest.mark.consul

PORT_OFFSET = port_offset(13_000)


@pytest.fixture(scope="module")
def system(tmp_path_factory):
    system = System(tmp_path_factory.mktemp("consul"))
    topology = Topology(cluster_name=f"consul-{uuid.uuid4().hex[:8]}", members=2, logging=3, messages=2, facades=2,
                        port_offset=PORT_OFFSET, discovery="consul")
    system.start(topology, timeout=180)
    yield system
    system.stop()


@pytest.fixture(scope="module")
def consul_client(system):
    settings = ServiceSettings.load("test", default_port=1, environ={}, argv=[],
                             consul=f"127.0.0.1:{system.state().topology.consul_port}")
    return agent(settings)


def passing(consul_client, service: str) -> set[int]:
    _, entries = consul_client.health.service(service, passing=True)
    return {e["Service"]["Port"] for e in entries}


def registered(consul_client, service: str) -> set[int]:
    _, entries = consul_client.catalog.service(service)
    return {e["ServicePort"] for e in entries}


def ports(system, kind: str) -> set[int]:
    return {system.process(name).port for name in system.names(kind)}


def test_no_config_server_runs_and_no_service_has_a_static_address(system):
    assert system.names("config-server") == []
    for name in system.names():
        env = system.process(name).env
        assert "LAB_CONFIG_SERVER" not in env and "HZ_MEMBERS" not in env, name


def test_every_copy_registers_with_a_passing_check(system, consul_client):
    for service, kind in [("facade-service", "facade"), ("logging-service", "logging"),
                          ("messages-service", "messages")]:
        eventually(lambda s=service, k=kind: passing(consul_client, s) == ports(system, k), timeout=15)
    _, checks = consul_client.health.service("logging-service")
    assert all(c["Type"] == "http" and c["Interval"] == "1s" for e in checks for c in e["Checks"]
               if c["CheckID"] != "serfHealth")


def test_the_experiment_passes_in_consul_mode_through_either_facade(system):
    for facade in system.names("facade"):
        lines = []
        assert run_experiment(system, count=10, out=lines.append, facade_name=facade) == 0, "\n".join(lines)


def test_kv_settings_reach_the_services(system):
    """The queue and map names the services use are the ones seeded into KV by the launcher."""
    consul_port = system.state().topology.consul_port
    kv = requests.get(f"http://127.0.0.1:{consul_port}/v1/kv/{KV_PREFIX}?recurse", timeout=5).json()
    values = {e["Key"]: (e["Value"] and base64.b64decode(e["Value"]).decode()) for e in kv}
    topology = system.state().topology
    assert values[KV_PREFIX + "hazelcast/cluster-name"] == topology.cluster_name
    posted = requests.post(system.url("facade-1") + "/facade", data={"msg": "via kv"}, timeout=10).json()
    client = hazelcast.HazelcastClient(cluster_name=values[KV_PREFIX + "hazelcast/cluster-name"],
                                       cluster_members=values[KV_PREFIX + "hazelcast/members"].split(","),
                                       cluster_connect_timeout=10, invocation_timeout=5)
    try:
        stored = client.get_map(values[KV_PREFIX + "names/logging-map"]).blocking().get(posted["uuid"])
        assert json.loads(stored.to_string())["msg"] == "via kv"
    finally:
        client.shutdown()


def test_the_status_page_lists_every_registered_copy_and_the_members_from_kv(system):
    status = requests.get(system.url("facade-2") + "/status.json", timeout=10).json()
    names = sorted(c["name"] for c in status["copies"] if c["healthy"])
    assert names == ["facade-1", "facade-2", "logging-1", "logging-2", "logging-3", "messages-1", "messages-2"]
    assert [m["address"] for m in status["members"]] == system.state().topology.member_addresses()
    assert all(m["up"] for m in status["members"])


def test_a_killed_copy_leaves_the_passing_set_and_the_facade_routes_around_it(system, consul_client):
    victim = system.process("logging-1")
    system.kill("logging-1")
    eventually(lambda: victim.port not in passing(consul_client, "logging-service"), timeout=30, interval=0.1)
    for i in range(15):
        response = requests.post(system.url("facade-2") + "/facade", data={"msg": f"around-{i}"}, timeout=10)
        assert response.status_code == 201
        assert response.json()["logged_by"] != "logging-1"
    system.start_process("logging-1")
    eventually(lambda: victim.port in passing(consul_client, "logging-service"), timeout=15)


def test_a_copy_deregisters_itself_on_sigterm(system, consul_client):
    victim = system.process("messages-2")
    system.terminate("messages-2")
    assert victim.port not in registered(consul_client, "messages-service"), "still in the catalog after SIGTERM"
    system.start_process("messages-2")
    eventually(lambda: victim.port in passing(consul_client, "messages-service"), timeout=15)


def test_facade_keeps_serving_from_last_known_instances_while_consul_is_down(system):
    facade = system.url("facade-1")
    requests.post(facade + "/facade", data={"msg": "warm the cache"}, timeout=10)
    system.kill("consul")
    try:
        for i in range(5):
            assert requests.post(facade + "/facade", data={"msg": f"no-consul-{i}"}, timeout=10).status_code == 201
        assert requests.get(facade + "/facade", timeout=10).status_code == 200

        def health_says_so():
            discovery = requests.get(facade + "/health", timeout=5).json()["checks"]["discovery"]["detail"]
            assert discovery["reachable"] is False and "cached" in discovery["serving"]
        eventually(health_says_so, timeout=10)
    finally:
        system.start_process("consul")  # the launcher seeds the new, empty agent's KV again


def test_copies_register_again_by_themselves_after_the_agent_restarts(system, consul_client):
    system.kill("consul")
    system.start_process("consul")  # a dev agent starts empty: nothing is registered until the copies say so
    for service, kind in [("facade-service", "facade"), ("logging-service", "logging"),
                          ("messages-service", "messages")]:
        eventually(lambda s=service, k=kind: passing(consul_client, s) == ports(system, k), timeout=30)
