"""The gRPC transport against real members: logging copies' gRPC servers over the Hazelcast store, the
facade's gRPC client failing over between them, and the health service following the cluster connection."""

import dataclasses
import socket

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from facade_service.adapters.grpc import GrpcLoggingClient
from lab_common.contracts import LOGGING_GRPC_SERVICE, LoggedMessage
from lab_common.errors import Unavailable
from lab_common.failover import Failover
from lab_common.grpc_support import NOT_SERVING, SERVING
from logging_service.adapters.grpc import serve_grpc
from logging_service.adapters.hazelcast import HazelcastMessageStore
from logging_service.bootstrap import build
from logging_service.service import MessageLog
from logging_service.settings import LoggingSettings
from tests.helpers import eventually
from tests.unit.fakes import FakeDiscovery

pytestmark = pytest.mark.integration


@pytest.fixture
def copy_settings(cluster_settings, unique_name) -> LoggingSettings:
    base = {f.name: getattr(cluster_settings, f.name) for f in dataclasses.fields(cluster_settings)}
    return LoggingSettings(**base, logging_map=unique_name)


@pytest.fixture
def copies(connect, copy_settings):
    """Logging copies' gRPC servers, each on its own cluster connection, all on the test's map."""
    servers = []

    def start(instance: str, *, connection=None):
        connection = connection or connect()
        message_log = MessageLog(HazelcastMessageStore(connection, copy_settings.logging_map), instance)
        settings = dataclasses.replace(copy_settings, instance=instance, grpc_port=0)
        servers.append(serve_grpc(settings, message_log, lambda: connection.connected))
        return servers[-1].address, message_log

    yield start
    for server in servers:
        server.stop(grace=0)


def client_of(*targets: str) -> GrpcLoggingClient:
    failover = Failover(LOGGING_GRPC_SERVICE, FakeDiscovery({LOGGING_GRPC_SERVICE: list(targets)}), attempts=3)
    return GrpcLoggingClient(failover, reads=None, timeout=2.0)


def health_of(target: str) -> int:
    with grpc.insecure_channel(target) as channel:
        return health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=2).status


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_uuid_logged_through_two_copies_is_stored_once_in_the_distributed_map(copies):
    first_copy, message_log = copies("logging-1")
    second_copy, _ = copies("logging-2")
    stored = client_of(first_copy).log("u1", "msg1", "req-1")
    again = client_of(second_copy).log("u1", "msg1")
    assert not stored.duplicate and stored.copy == "logging-1"
    assert again.duplicate and again.copy == "logging-2" and again.entry.logged_by == "logging-1"
    assert [LoggedMessage.from_text(text) for page in message_log.messages_as_json() for text in page] == \
        [LoggedMessage("u1", "msg1", "logging-1", stored.entry.seq)]


def test_a_copy_whose_cluster_connection_is_gone_is_not_serving_and_the_facade_logs_through_another(connect, copies):
    lost = connect()
    gone, _ = copies("logging-1", connection=lost)
    live, _ = copies("logging-2")
    assert health_of(gone) == SERVING
    lost.close()
    assert health_of(gone) == NOT_SERVING and health_of(live) == SERVING
    client = client_of(gone, live)
    for i in range(10):  # the copy tried first is random: the one that cannot store is passed over
        assert client.log(f"u{i}", "m").entry.logged_by == "logging-2"
    with pytest.raises(Unavailable):
        client_of(gone).log("u-never", "m")


def test_the_logging_build_serves_grpc_beside_http_and_stops_it_on_close(copy_settings):
    settings = dataclasses.replace(copy_settings, instance="logging-9", grpc_port=free_port())
    app, close = build(settings)
    try:
        eventually(lambda: health_of(settings.grpc_address) == SERVING, timeout=30)
        assert client_of(settings.grpc_address).log("u-built", "m").copy == "logging-9"
        health = app.test_client().get("/health").json
        assert health["checks"]["grpc"] == {"ok": True, "detail": f"serving on {settings.grpc_address}"}
    finally:
        close()
    with pytest.raises(grpc.RpcError) as err:
        health_of(settings.grpc_address)
    assert err.value.code() == grpc.StatusCode.UNAVAILABLE
