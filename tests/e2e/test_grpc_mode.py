"""The whole system with the facade logging over gRPC (labctl start --transport grpc): the lab's experiment,
the proof that the POSTs went over gRPC, health on every gRPC port, and failover when copies die or hang."""

import uuid

import grpc
import pytest
import requests
from grpc_health.v1 import health_pb2, health_pb2_grpc
from prometheus_client.parser import text_string_to_metric_families

from lab_common.contracts import LOGGING_GRPC_SERVICE
from lab_common.grpc_support import SERVING
from labctl.experiment import run_experiment
from logging_service.adapters.grpc import LOG_METHOD
from tests.helpers import eventually, port_offset, started_system

pytestmark = pytest.mark.e2e

# members on 18201-18203, the facade on 20580, logging's gRPC on 62551-62555: past the ephemeral range's end
# (60999), so an outgoing connection cannot hold one of them when the copies start
PORT_OFFSET = port_offset(12_500)


@pytest.fixture(scope="module")
def system(tmp_path_factory):
    with started_system(tmp_path_factory.mktemp("grpc"), "grpc", port_offset=PORT_OFFSET, transport="grpc") as system:
        yield system


@pytest.fixture
def facade(system):
    return system.url("facade-1")


def metric(url: str, name: str, **labels: str) -> float:
    """The sum of a metric's samples with these labels, from a service's /metrics."""
    text = requests.get(url + "/metrics", timeout=5).text
    return sum(sample.value for family in text_string_to_metric_families(text) for sample in family.samples
               if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()))


def grpc_health(port: int) -> int:
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        return health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=2).status


def test_the_msg1_to_msg10_experiment_passes_with_every_post_logged_over_grpc(system, facade):
    logging_urls = [system.url(name) for name in system.names("logging")]
    http_posts = sum(metric(u, "lab_http_requests_total", route="/logging", method="POST") for u in logging_urls)
    grpc_logs = sum(metric(u, "lab_grpc_requests_total", method=LOG_METHOD, code="OK") for u in logging_urls)
    calls = metric(facade, "lab_outgoing_calls_total", service=LOGGING_GRPC_SERVICE, outcome="ok")
    lines = []
    assert run_experiment(system, count=10, out=lines.append) == 0, "\n".join(lines)
    assert "verdict: PASS" in "\n".join(lines)
    assert sum(metric(u, "lab_grpc_requests_total", method=LOG_METHOD, code="OK") for u in logging_urls) \
        - grpc_logs == 10
    assert metric(facade, "lab_outgoing_calls_total", service=LOGGING_GRPC_SERVICE, outcome="ok") - calls == 10
    assert sum(metric(u, "lab_http_requests_total", route="/logging", method="POST") for u in logging_urls) \
        == http_posts  # not one POST went to logging over HTTP


def test_every_logging_copy_serves_grpc_health_on_its_port_and_the_config_server_hands_those_out(system):
    ports = system.state().topology.grpc_ports()
    assert list(ports) == ["logging-1", "logging-2", "logging-3"]
    assert [grpc_health(port) for port in ports.values()] == [SERVING] * 3
    listed = requests.get(system.url("config-server") + f"/services/{LOGGING_GRPC_SERVICE}", timeout=5).json()
    assert listed["addresses"] == [f"127.0.0.1:{port}" for port in ports.values()]


def test_with_two_logging_copies_killed_every_post_is_logged_by_the_third(system, facade):
    for name in ("logging-1", "logging-2"):
        system.kill(name)
    try:
        for i in range(10):
            response = requests.post(facade + "/facade", data={"msg": f"two-down-{i}"}, timeout=15)
            assert response.status_code == 201, response.text
            assert response.json()["logged_by"] == "logging-3"
    finally:
        for name in ("logging-1", "logging-2"):
            system.start_process(name)


def test_a_hung_logging_copy_costs_a_deadline_not_a_failed_post(system, facade):
    """SIGSTOP keeps its sockets open: a call to it ends at the facade's 2 s deadline, then another copy logs."""
    system.freeze("logging-1")
    try:
        for i in range(6):
            response = requests.post(facade + "/facade", data={"msg": f"hung-{i}"}, timeout=15)
            assert response.status_code == 201, response.text
            assert response.json()["logged_by"] != "logging-1"
    finally:
        system.thaw("logging-1")
    eventually(lambda: grpc_health(system.state().topology.grpc_ports()["logging-1"]) == SERVING, timeout=10)


def test_no_logging_copy_left_is_a_503_storing_nothing_and_once_they_are_back_a_post_is_logged(system, facade):
    names = system.names("logging")
    for name in names:
        system.kill(name)
    try:
        response = requests.post(facade + "/facade", data={"msg": "nobody logs this"}, timeout=15)
        assert response.status_code == 503
        assert response.json()["error"] == "unavailable"
    finally:
        for name in names:
            system.start_process(name)
    assert "nobody logs this" not in requests.get(facade + "/facade", timeout=15).text
    # the copies are back: the first POST is logged, not refused while the facade's channels wait out a backoff
    assert requests.post(facade + "/facade", data={"msg": "back"}, timeout=15).status_code == 201


def test_a_retried_post_with_the_same_idempotency_key_is_logged_once_over_grpc(system, facade):
    key = f"grpc-key-{uuid.uuid4().hex[:8]}"
    first = requests.post(facade + "/facade", data={"msg": "once"}, headers={"Idempotency-Key": key}, timeout=10)
    again = requests.post(facade + "/facade", data={"msg": "once"}, headers={"Idempotency-Key": key}, timeout=10)
    other = requests.post(facade + "/facade", data={"msg": "other"}, headers={"Idempotency-Key": key}, timeout=10)
    assert (first.status_code, again.status_code, other.status_code) == (201, 201, 409)
    assert again.json()["replayed"] is True and again.json()["logged_by"] == first.json()["logged_by"]
    logged = requests.get(facade + "/facade", timeout=15).json()["merged"]
    assert [m["msg"] for m in logged if m["uuid"] == key] == ["once"]
