"""The gRPC transport facade -> logging without a cluster: the generated code, the servicer's answers, the
health service's state and how the facade reads gRPC status codes."""

import dataclasses
import socket
import subprocess
import sys
import time
from types import SimpleNamespace

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from facade_service.adapters.grpc import GrpcLoggingClient, error_of
from facade_service.app import create_app
from facade_service.service import Facade
from lab_common.contracts import LOGGING_GRPC_SERVICE, LoggedMessage
from lab_common.errors import BadRequest, PayloadTooLarge, Unavailable
from lab_common.failover import CopyFailed, Failover
from lab_common.grpc_support import NOT_SERVING, SERVING, Channels, StoreHealth, status_of
from lab_common.proto import logging_pb2, logging_pb2_grpc
from labctl.protos import PROTO_DIR, generate
from logging_service.adapters.grpc import SERVICE_NAME, serve_grpc
from logging_service.service import MessageLog
from logging_service.settings import LoggingSettings
from tests.helpers import eventually
from tests.unit.fakes import FakeDiscovery, FakeMessages, FakeMessageStore, FakeQueue


def test_the_committed_generated_code_is_what_the_proto_generates(tmp_path):
    written = generate(tmp_path)
    assert [p.name for p in written] == ["logging_pb2.py", "logging_pb2.pyi", "logging_pb2_grpc.py"]
    for fresh in written:
        committed = PROTO_DIR / fresh.name
        assert committed.read_text() == fresh.read_text(), \
            f"{committed} is out of date: run `python -m labctl.protos` and commit the result"


@pytest.fixture
def store():
    return FakeMessageStore()


@pytest.fixture
def logging_settings():
    """A logging copy whose gRPC server takes a free port (0 here: the system picks one)."""
    return LoggingSettings.load("logging-service", default_port=8081, environ={}, argv=[], instance="logging-1",
                                grpc_port=0, max_body_bytes=4096)


@pytest.fixture
def serve(logging_settings, store):
    """Starts real gRPC servers of logging copies on loopback (the real servicer over the fake store) and
    stops them after the test; answers each one's host:port."""
    servers = []

    def start(instance="logging-1", *, message_log=None, can_store=lambda: True) -> str:
        settings = dataclasses.replace(logging_settings, instance=instance)
        server = serve_grpc(settings, message_log or MessageLog(store, instance), can_store)
        servers.append(server)
        return server.address

    yield start
    for server in servers:
        server.stop(grace=0)


def grpc_client(*targets: str, timeout: float = 2.0, attempts: int = 3) -> tuple[GrpcLoggingClient, FakeDiscovery]:
    discovery = FakeDiscovery({LOGGING_GRPC_SERVICE: list(targets)})
    failover = Failover(LOGGING_GRPC_SERVICE, discovery, attempts=attempts, backoff=0)
    return GrpcLoggingClient(failover, reads=None, timeout=timeout), discovery


def dead_target() -> str:
    """A loopback port nothing listens on (bound, then closed)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"127.0.0.1:{s.getsockname()[1]}"


def test_a_new_uuid_is_stored_and_a_repeat_answers_the_first_entry_as_a_duplicate(serve, store):
    client, _ = grpc_client(serve())
    first = client.log("u1", "hello", "req-1")
    again = client.log("u1", "another text")
    assert not first.duplicate and again.duplicate
    assert again.entry == first.entry == LoggedMessage("u1", "hello", "logging-1", first.entry.seq)
    assert list(store.entries) == ["u1"]
    client.close()


@pytest.mark.parametrize("uuid, msg, problem", [
    ("", "m", "field 'uuid' is missing or empty"),
    ("u", "   ", "field 'msg' is missing or empty"),
    ("u" * 129, "m", "uuid is longer than 128 characters"),
])
def test_what_post_logging_refuses_with_400_is_a_bad_request_and_nothing_is_stored(serve, store, uuid, msg, problem):
    client, _ = grpc_client(serve())
    with pytest.raises(BadRequest, match=problem):
        client.log(uuid, msg)
    assert store.entries == {}


def test_a_message_over_the_copys_body_limit_is_payload_too_large(serve, store):
    client, _ = grpc_client(serve())
    with pytest.raises(PayloadTooLarge):
        client.log("u1", "x" * 5000)  # the fixture's copy takes 4096 bytes
    assert store.entries == {}


def test_a_copy_that_cannot_store_is_failed_over_to_one_that_can(serve, store):
    down = FakeMessageStore()
    down.available = False
    broken = serve("logging-2", message_log=MessageLog(down, "logging-2"), can_store=lambda: False)
    dead = dead_target()
    live = serve("logging-3")
    client, discovery = grpc_client(broken, dead, live, attempts=3)
    for i in range(30):  # the order is random: in 30 calls the bad ones come first some of the time
        assert client.log(f"u{i}", "m").entry.logged_by == "logging-3"
    assert discovery.invalidated.count(LOGGING_GRPC_SERVICE) > 10
    assert len(store.entries) == 30


def test_a_copy_back_after_its_channel_failed_is_called_at_once_not_after_grpcs_reconnect_backoff(
        logging_settings, store):
    """With a 60 s backoff, a kept channel would fail every call for a minute after the copy is back."""
    target = dead_target()
    channels = Channels(logging_pb2_grpc.LoggingServiceStub,
                        options=[("grpc.initial_reconnect_backoff_ms", 60_000),
                                 ("grpc.min_reconnect_backoff_ms", 60_000),
                                 ("grpc.max_reconnect_backoff_ms", 60_000)])
    request = logging_pb2.LogRequest(uuid="u1", msg="m")
    with pytest.raises(grpc.RpcError) as err:
        channels.stub(target).Log(request, timeout=2)
    assert err.value.code() == grpc.StatusCode.UNAVAILABLE
    # gRPC reports the channel's state on a thread of its own, a moment after the call failed
    eventually(lambda: channels.state(target) is grpc.ChannelConnectivity.TRANSIENT_FAILURE, timeout=10)
    port = int(target.rsplit(":", 1)[1])
    server = serve_grpc(dataclasses.replace(logging_settings, grpc_port=port), MessageLog(store, "logging-1"),
                        lambda: True)
    try:
        assert channels.stub(target).Log(request, timeout=2).logged_by == "logging-1"
    finally:
        channels.close()
        server.stop(grace=0)


def test_no_copy_answering_is_unavailable_naming_every_attempt(serve):
    down = FakeMessageStore()
    down.available = False
    client, _ = grpc_client(dead_target(), serve("logging-2", message_log=MessageLog(down, "logging-2")))
    with pytest.raises(Unavailable) as err:
        client.log("u1", "m")
    attempts = err.value.details["attempts"]
    assert len(attempts) == 3
    assert all(a.endswith(("gRPC UNAVAILABLE", "gRPC DEADLINE_EXCEEDED")) for a in attempts)


class SlowStore(FakeMessageStore):
    def __init__(self, seconds: float):
        super().__init__()
        self.seconds = seconds

    def add_if_absent(self, message):
        time.sleep(self.seconds)
        return super().add_if_absent(message)


def test_a_copy_slower_than_the_deadline_is_given_up_and_the_next_one_asked(serve, store):
    slow = serve("logging-2", message_log=MessageLog(SlowStore(1.0), "logging-2"))
    live = serve("logging-3")
    client, _ = grpc_client(slow, timeout=0.2, attempts=1)
    with pytest.raises(Unavailable) as err:
        client.log("u1", "m")
    assert err.value.details["attempts"] == [f"{slow}: gRPC DEADLINE_EXCEEDED"]
    client, _ = grpc_client(slow, live, timeout=0.2, attempts=2)
    assert client.log("u2", "m").entry.logged_by in ("logging-2", "logging-3")


@pytest.mark.parametrize("code, error", [
    (grpc.StatusCode.INVALID_ARGUMENT, BadRequest),
    (grpc.StatusCode.RESOURCE_EXHAUSTED, PayloadTooLarge),
    (grpc.StatusCode.UNAVAILABLE, CopyFailed),
    (grpc.StatusCode.DEADLINE_EXCEEDED, CopyFailed),
    (grpc.StatusCode.INTERNAL, CopyFailed),
    (grpc.StatusCode.UNKNOWN, CopyFailed),
    (grpc.StatusCode.CANCELLED, CopyFailed),
    (grpc.StatusCode.UNIMPLEMENTED, Unavailable),
    (grpc.StatusCode.NOT_FOUND, Unavailable),
    (grpc.StatusCode.PERMISSION_DENIED, Unavailable),
])
def test_each_grpc_status_means_what_the_http_status_it_stands_for_means(code, error):
    """As LoggingClient.log reads HTTP: 400 -> 400, 413 -> 413, no answer or 5xx -> another copy, any other
    answer -> 503 at once; the facade's error table then turns each into its HTTP answer."""
    found = error_of(code, "details", "127.0.0.1:1")
    assert type(found) is error
    if error is not CopyFailed:
        assert found.status == {BadRequest: 400, PayloadTooLarge: 413, Unavailable: 503}[error]


@pytest.mark.parametrize("error, code", [
    (BadRequest("x"), grpc.StatusCode.INVALID_ARGUMENT),
    (PayloadTooLarge("x"), grpc.StatusCode.RESOURCE_EXHAUSTED),
    (Unavailable("x"), grpc.StatusCode.UNAVAILABLE),
])
def test_the_servers_table_turns_each_service_error_into_its_status(error, code):
    assert status_of(error) == code


def health_of(target: str, service: str = "") -> int:
    with grpc.insecure_channel(target) as channel:
        return health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(service=service),
                                                         timeout=2).status


def test_health_is_serving_only_while_the_copy_can_store(serve):
    can = {"store": False}
    target = serve(can_store=lambda: can["store"])
    assert health_of(target) == NOT_SERVING
    assert health_of(target, SERVICE_NAME) == NOT_SERVING
    can["store"] = True
    assert health_of(target) == SERVING
    assert health_of(target, SERVICE_NAME) == SERVING
    can["store"] = False
    assert health_of(target) == NOT_SERVING


def test_health_watchers_hear_the_store_come_and_go():
    can = {"store": True}
    health = StoreHealth(lambda: can["store"], [SERVICE_NAME]).watch(period=0.05)
    heard = []

    def send(response):
        if response is not None:
            heard.append(response.status)

    context = SimpleNamespace(add_callback=lambda callback: None)
    health.Watch(health_pb2.HealthCheckRequest(service=SERVICE_NAME), context, send_response_callback=send)
    can["store"] = False
    eventually(lambda: heard == [SERVING, NOT_SERVING], timeout=5)
    can["store"] = True
    eventually(lambda: heard == [SERVING, NOT_SERVING, SERVING], timeout=5)
    health.stop()  # the copy is going away: NOT_SERVING for good, whatever the store says
    assert heard[-1] == NOT_SERVING
    assert health.Check(health_pb2.HealthCheckRequest(service=SERVICE_NAME), context).status == NOT_SERVING


def test_the_facade_answers_a_replayed_idempotency_key_and_a_conflicting_one_over_grpc(serve, store, settings):
    """The Idempotency-Key behaviour with logging over gRPC: the same key twice is one entry and a replay; the
    key reused for another text is a 409 and the other text is not queued."""
    grpc_logging, _ = grpc_client(serve())
    queue = FakeQueue()
    client = create_app(settings, facade=Facade(grpc_logging, FakeMessages(), queue)).test_client()
    first = client.post("/facade", data={"msg": "once"}, headers={"Idempotency-Key": "key-1"})
    again = client.post("/facade", data={"msg": "once"}, headers={"Idempotency-Key": "key-1"})
    other = client.post("/facade", data={"msg": "other"}, headers={"Idempotency-Key": "key-1"})
    assert (first.status_code, again.status_code, other.status_code) == (201, 201, 409)
    assert "replayed" not in first.json and again.json["replayed"] is True
    assert list(store.entries) == ["key-1"]
    assert queue.items == [{"uuid": "key-1", "msg": "once"}] * 2
    assert client.post("/facade", data={"msg": " "}).status_code == 400


def test_the_serving_master_imports_no_grpc_only_its_worker_does():
    """grpcio does not survive a fork with live channels or servers: what `python -m logging_service` and
    `python -m facade_service` import before granian forks its worker must not bring grpc in."""
    code = """
import sys
import facade_service.__main__, logging_service.__main__, lab_common.consul_support  # the master's imports
print(sorted(m for m in sys.modules if m == "grpc" or m.startswith(("grpc.", "grpc_"))))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True,
                         cwd=PROTO_DIR.parents[1]).stdout
    assert out.strip() == "[]"
