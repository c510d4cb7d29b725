"""The whole system through the launcher: the lab's experiment, bad input, unicode, and a clean stop."""

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass

import pytest
import requests

import hazelcast
from lab_common.contracts import LOGGING_MAP, MESSAGES_QUEUE, RECEIVED_MAP
from labctl.experiment import received_by_copy, run_experiment
from labctl.launcher import ROOT, LauncherError, System
from tests.helpers import eventually, port_offset, started_system

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def system(tmp_path_factory):
    with started_system(tmp_path_factory.mktemp("e2e"), "e2e", port_offset=port_offset(11_000)) as system:
        yield system


@pytest.fixture
def facade(system):
    return system.url("facade-1")


@pytest.fixture(scope="module")
def cluster(system):
    """A client of the system's members: the queue and both maps as the cluster holds them, whichever
    service copy answers or not."""
    topology = system.state().topology
    client = hazelcast.HazelcastClient(cluster_name=topology.cluster_name, cluster_members=topology.member_addresses(),
                                       cluster_connect_timeout=30)
    yield client
    client.shutdown()


@dataclass(frozen=True)
class Holdings:
    marker: str  # the uuid of the message POSTed to settle the queue
    queued: int
    logged: set[str]
    received: set[str]


def settled(cluster, facade) -> Holdings:
    """What the cluster holds once a marker POSTed now has been received and the queue is empty: whatever
    was queued before the marker has been taken by then (a queue hands its items out in order, and a
    consumer records what it took before its transaction commits)."""
    marker = requests.post(facade + "/facade", data={"msg": "marker"}, timeout=10).json()["uuid"]

    def arrived() -> Holdings:
        held = Holdings(marker, cluster.get_queue(MESSAGES_QUEUE).blocking().size(),
                        set(cluster.get_map(LOGGING_MAP).blocking().key_set()),
                        set(cluster.get_map(RECEIVED_MAP).blocking().key_set()))
        assert marker in held.received and held.queued == 0
        return held
    return eventually(arrived, timeout=60)


def assert_only_the_marker_came(before: Holdings, after: Holdings) -> None:
    """Between two settled readings, nothing was logged or received but the second marker."""
    assert after.logged - before.logged == {after.marker}
    assert after.received - before.received == {after.marker}, "received but never logged: " + \
        ", ".join(sorted(after.received - before.received - after.logged))


def test_the_msg1_to_msg10_experiment_passes(system):
    lines = []
    assert run_experiment(system, count=10, out=lines.append) == 0, "\n".join(lines)
    report = "\n".join(lines)
    assert "verdict: PASS" in report
    assert "LOGGED BY" in report and "RECEIVED BY" in report


def test_the_experiment_exits_1_and_names_the_messages_held_back_on_the_queue(system):
    """No messages copy running: every message stays on the queue, and the experiment says so, message by
    message (a message received twice: tests/unit/test_experiment.py)."""
    copies = system.names("messages")
    lines = []
    try:
        for name in copies:
            system.kill(name)
        assert run_experiment(system, count=3, out=lines.append, settle_seconds=2.0) == 1, "\n".join(lines)
    finally:
        for name in copies:
            system.start_process(name)
        system.wait_healthy(timeout=120)
    report = "\n".join(lines)
    rows = [line for line in report.splitlines() if line.startswith(("msg1 ", "msg2 ", "msg3 "))]
    # received by none, and in no journal (the copies are down: their journals are reported unreadable)
    assert len(rows) == 3 and all(line.split()[-2:] == ["MISSING", "-"] for line in rows), report
    assert "verdict: FAIL - not received by any messages copy: msg1 msg2 msg3" in report


def test_each_logging_copy_logs_a_line_per_message_it_received(system, facade):
    uuids = [requests.post(facade + "/facade", data={"msg": f"line-{i}"}, timeout=10).json()["uuid"]
             for i in range(6)]
    logs = {name: open(system.process(name).log_path, encoding="utf-8").read() for name in system.names("logging")}
    for u in uuids:
        assert sum(f"logged uuid={u}" in text for text in logs.values()) == 1


def test_a_long_message_shows_in_the_logs_only_by_its_start(system, facade):
    text = f"long {uuid.uuid4().hex} " + "x" * 5000
    posted = requests.post(facade + "/facade", data={"msg": text}, timeout=10).json()["uuid"]

    def logged_and_received():
        logs = "".join(open(system.process(name).log_path, encoding="utf-8").read()
                       for kind in ("logging", "messages") for name in system.names(kind))
        lines = [line for line in logs.splitlines() if f"uuid={posted}" in line]
        assert any(" logged uuid=" in line for line in lines) and any(" received uuid=" in line for line in lines)
        assert all(f"msg={text[:32] + '…'!r} ({len(text)} chars)" in line for line in lines)
        assert text[:40] not in logs
    eventually(logged_and_received, timeout=10)


@pytest.mark.parametrize(
    "kwargs, status",
    [
        ({"data": {"msg": ""}}, 400),
        ({"data": {"msg": "   "}}, 400),
        ({"data": {}}, 400),
        ({"data": "{nope", "headers": {"Content-Type": "application/json"}}, 400),
        ({"json": {"msg": 42}}, 400),
        ({"json": {"text": "wrong field"}}, 400),
        ({"data": "msg=x", "headers": {"Content-Type": "text/plain"}}, 415),
        ({"data": {"msg": "x" * (70 * 1024)}}, 413),
        ({"json": ["msg"]}, 400),
        ({"data": {"msg": "m"}, "headers": {"Idempotency-Key": "k" * 129}}, 400),
        ({"data": {"msg": "\x01" * 20_000}}, 413),  # within the facade's limit, over logging's as JSON
    ],
)
def test_bad_input_gets_a_json_4xx_and_nothing_is_stored_or_queued(cluster, facade, kwargs, status):
    before = settled(cluster, facade)
    response = requests.post(facade + "/facade", timeout=10, **kwargs)
    assert response.status_code == status
    assert response.headers["Content-Type"].startswith("application/json")
    assert response.json()["error"] and response.json()["message"]
    assert_only_the_marker_came(before, settled(cluster, facade))


@pytest.mark.parametrize("method, path", [("DELETE", "/facade"), ("GET", "/nowhere"), ("PUT", "/logging"),
                                          ("FOO", "/facade")])
def test_unknown_routes_and_methods_answer_json(system, facade, method, path):
    base = system.url("logging-1") if path == "/logging" else facade
    response = requests.request(method, base + path, timeout=5)
    assert response.status_code in (404, 405)
    assert response.json()["error"] in ("not_found", "method_not_allowed")


@pytest.mark.parametrize("service, query", [
    ("facade-1", "after=-99999999999999999999999"), ("facade-1", "limit=5&after=99999999999999999999999"),
    ("logging-1", "after=-99999999999999999999999"), ("logging-1", "limit=5&after=-1"),
    ("facade-1", "limit=99999999999999999999"), ("facade-1", "limit=%C2%B2"),
    pytest.param("logging-1", "after=" + "9" * 5000, id="logging-1-after-of-5000-digits"),
])
def test_out_of_range_numbers_in_the_query_are_a_400_not_a_503(system, service, query):
    response = requests.get(f"{system.url(service)}/{service.split('-')[0]}?{query}", timeout=10)
    assert response.status_code == 400 and response.json()["error"] == "bad_request"


def test_request_heads_past_the_servers_limit_are_refused_before_the_app(system, facade):
    assert requests.get(facade + "/facade?limit=1&x=" + "a" * 100_000, timeout=10).status_code in (414, 431)
    assert requests.get(facade + "/facade?limit=1", headers={"X-Big": "a" * 100_000}, timeout=10).status_code == 431
    assert requests.get(facade + "/facade?limit=1", timeout=10).status_code == 200  # and it still serves


def test_unicode_round_trips_through_logging_and_the_queue(system, facade):
    text = "Привіт, світе! Ґанок, їжак, «лапки» 🌻🚀"
    posted = requests.post(facade + "/facade", json={"msg": text}, timeout=10).json()
    assert posted["msg"] == text

    def everywhere():
        body = requests.get(facade + "/facade", timeout=10).json()
        assert [m["msg"] for m in body["merged"] if m["uuid"] == posted["uuid"]] == [text]
        received = [m["msg"] for msgs in received_by_copy(system).values() for m in msgs if m["uuid"] == posted["uuid"]]
        assert received == [text]
    eventually(everywhere, timeout=10)


def test_a_retried_post_with_the_same_idempotency_key_is_stored_once(system, facade):
    key = f"retry-{uuid.uuid4()}"
    for _ in range(3):
        response = requests.post(facade + "/facade", data={"msg": "once"}, headers={"Idempotency-Key": key}, timeout=10)
        assert response.status_code == 201 and response.json()["uuid"] == key

    def once_everywhere():
        logged = [m for m in requests.get(facade + "/facade", timeout=10).json()["merged"] if m["uuid"] == key]
        received = [m for msgs in received_by_copy(system).values() for m in msgs if m["uuid"] == key]
        assert len(logged) == 1 and len(received) == 1
    eventually(once_everywhere, timeout=10)


WAIT = 3.0  # the retry window a client asks for with Prefer: wait=3


def test_a_post_whose_logging_fails_answers_503_and_its_message_is_never_delivered(system, cluster, facade):
    """Also the bounds with every logging copy down (connections refused): with no window asked for, the
    503 comes at once (under 2 s); with Prefer: wait=3 the POST keeps trying for the window (no attempt
    starts after it; the back-off between attempts is at most 1 s) and no longer than an attempt more."""
    key = f"unlogged-{uuid.uuid4()}"
    before = settled(cluster, facade)
    loggers = system.names("logging")
    for name in loggers:
        system.terminate(name)
    try:
        started = time.monotonic()
        response = requests.post(facade + "/facade", data={"msg": "must not arrive"},
                                 headers={"Idempotency-Key": key}, timeout=30)
        fast = time.monotonic() - started
        started = time.monotonic()
        patient = requests.post(facade + "/facade", data={"msg": "must not arrive either"},
                                headers={"Idempotency-Key": key + "-patient", "Prefer": f"wait={WAIT:.0f}"},
                                timeout=30)
        waited = time.monotonic() - started
    finally:
        for name in loggers:
            system.start_process(name)
    assert response.status_code == 503 and response.json()["error"] == "unavailable"
    assert fast < 2.0, fast
    assert patient.status_code == 503
    assert WAIT - 1.0 <= waited < WAIT + 2.5, waited  # the window, not less than its last back-off short of it
    eventually(lambda: _all_healthy(system), timeout=60)
    after = settled(cluster, facade)
    assert not {key, key + "-patient"} & (after.logged | after.received)
    assert_only_the_marker_came(before, after)


def test_the_paged_read_walks_every_message_once_in_order(system, facade):
    for i in range(7):
        assert requests.post(facade + "/facade", data={"msg": f"page-{i}"}, timeout=10).status_code == 201
    everything = [m["uuid"] for m in requests.get(facade + "/facade", timeout=10).json()["logging"]["messages"]]
    walked, after = [], None
    for _ in range(len(everything)):
        params = {"limit": 3, **({"after": after} if after else {})}
        page = requests.get(facade + "/facade", params=params, timeout=10).json()
        assert page["count"] <= 3
        walked += [m["uuid"] for m in page["messages"]]
        after = page["next"]
        if after is None:
            break
    assert walked == everything


def _half_sent_requests(url: str, count: int) -> list[socket.socket]:
    """Connections that each send the start of a POST and then nothing more (a slow client)."""
    host, port = url.removeprefix("http://").split(":")
    opened = []
    for _ in range(count):
        connection = socket.create_connection((host, int(port)), timeout=5)
        connection.sendall(b"POST /facade HTTP/1.1\r\nHost: x\r\nContent-Ty")
        opened.append(connection)
    return opened


def test_a_post_gets_its_201_while_64_half_sent_requests_hold_connections(system, facade):
    slow = _half_sent_requests(facade, 64)
    try:
        answers = [requests.post(facade + "/facade", data={"msg": f"past the slow ones {i}"}, timeout=10)
                   for i in range(3)]
    finally:
        for connection in slow:
            connection.close()
    assert [a.status_code for a in answers] == [201, 201, 201]


def test_a_body_over_the_limit_is_refused_before_it_is_sent(system, facade):
    """The server hands the request on at its head: a Content-Length over the limit is answered 413
    while the body has not been sent at all."""
    host, port = facade.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=5) as connection:
        connection.sendall(b"POST /facade HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded"
                           b"\r\nContent-Length: 100000000\r\n\r\nmsg=")
        head = connection.recv(4096)
    assert head.startswith(b"HTTP/1.1 413"), head[:200]
    assert b'"error":"payload_too_large"' in head


def test_a_chunked_body_over_the_limit_is_refused_and_nothing_is_stored(cluster, facade):
    before = settled(cluster, facade)
    piece = b"msg=" + b"a" * 70_000

    def chunks():
        yield piece

    answer = requests.post(facade + "/facade", data=chunks(), timeout=10,
                           headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert answer.status_code == 413 and answer.json()["error"] == "payload_too_large"
    assert_only_the_marker_came(before, settled(cluster, facade))


def test_config_server_answers_addresses_and_a_json_404(system):
    config = system.url("config-server")
    assert len(requests.get(config + "/services/logging-service", timeout=5).json()["addresses"]) == 3
    response = requests.get(config + "/services/nope", timeout=5)
    assert response.status_code == 404 and response.json()["error"] == "not_found"


def test_every_service_reports_healthy(system):
    for name in system.names():
        assert system.health(name)[0], name


def test_labctl_run_stops_everything_on_sigterm(tmp_path):
    run_dir = tmp_path / "run"
    child = subprocess.Popen(
        [sys.executable, "-m", "labctl.cli", "--run-dir", str(run_dir), "run", "--members", "1", "--logging", "1",
         "--messages", "1", "--port-offset", str(port_offset(12_000)), "--cluster-name", f"run-{uuid.uuid4().hex[:8]}"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    try:
        system = System(run_dir)
        eventually(lambda: _all_healthy(system), timeout=120, interval=0.5)
        pids = [p.pid for p in system.state().processes.values()]
        child.send_signal(signal.SIGTERM)
        output, _ = child.communicate(timeout=60)
    finally:
        if child.poll() is None:
            child.kill()
    assert child.returncode == 0, output
    assert "NAME" in output and "stopped." in output
    for pid in pids:
        assert not _alive(pid), f"pid {pid} left behind"
    assert not (run_dir / "state.json").exists()


def _all_healthy(system: System) -> bool:
    try:
        return all(row["healthy"] for row in system.status())
    except LauncherError:  # not started yet
        return False


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as stat:
        return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
