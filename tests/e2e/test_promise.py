"""The README's promise, sentence by sentence, against a running system: what each sentence says is done to
the real services and members and read back from every copy and from the cluster itself. The map from
sentence to test: docs/fault-tolerance.md, "Each promised sentence and its tests".

The members here run a test-only config: the messages queue is bounded to QUEUE_BOUND items, so that a
queue offer can be made to fail after logging succeeded (a full queue refuses it). Nothing else in this
module has more than a few messages on the queue at a time.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import requests
import yaml
from prometheus_client.parser import text_string_to_metric_families

import hazelcast
from lab_common.cluster import ClusterConnection
from lab_common.contracts import (
    LOGGING_MAP,
    MESSAGES_QUEUE,
    RECEIVED_MAP,
    LoggedMessage,
    ReceivedMessage,
    decode_queue_item,
)
from lab_common.settings import HazelcastSettings
from labctl.deps import HAZELCAST_DIR
from labctl.drills.readings import queue_owner
from labctl.launcher import System
from labctl.probe import health_at, messages_listing, service_health
from tests.helpers import SilentServer, eventually, port_offset, started_system

pytestmark = pytest.mark.e2e

PORT_OFFSET = port_offset(16_500)  # members on 22201-22203, facade on 24580, config server on 25388
QUEUE_BOUND = 10
CALL_TIMEOUT = 2.0  # the facade's documented defaults (README, "No request hangs"): per outgoing call,
ATTEMPTS = 3  # and tries across copies
CALL_TIMEOUT_AT_MOST = 3.0  # each attempt on a silent copy ends under this: a wrong timeout (say 10 s) fails
ANSWERED_WITHIN = 60.0  # "answered, not hung": far over any timeout above; how fast is the bench's business


def bounded_queue_member_config(path: Path, queue: str, max_size: int) -> Path:
    """A test-only member config: hazelcast/member.yaml with `queue` holding at most `max_size` items (an
    offer to it fails while it is full). The launcher passes it after the real one, and a later -D wins."""
    config = yaml.safe_load((HAZELCAST_DIR / "member.yaml").read_text())
    queues = config["hazelcast"]["queue"]
    queues[queue] = {**queues["default"], "max-size": max_size}
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


@pytest.fixture(scope="module")
def system(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("promise")
    member_config = bounded_queue_member_config(run_dir / "member-bounded-queue.yaml", MESSAGES_QUEUE, QUEUE_BOUND)
    with started_system(run_dir / "run", "promise", port_offset=PORT_OFFSET,
                        member_java_options=(f"-Dhazelcast.config={member_config}",)) as system:
        yield system


@pytest.fixture(scope="module")
def cluster(system):
    """A client of the system's members: what the cluster itself holds, whichever copy answers or not."""
    topology = system.state().topology
    client = hazelcast.HazelcastClient(cluster_name=topology.cluster_name, cluster_members=topology.member_addresses(),
                                       cluster_connect_timeout=60, invocation_timeout=30, statistics_enabled=False)
    yield client
    client.shutdown()


@pytest.fixture
def facade(system):
    return system.url("facade-1")


@pytest.fixture
def consumers_stopped(system, cluster):
    """Both messages copies stopped, on an empty queue (started again after the test if it did not)."""
    eventually(lambda: queued(cluster) == [], timeout=60)
    copies = system.names("messages")
    for name in copies:
        system.terminate(name)
    try:
        yield copies
    finally:
        start_stopped(system, copies)


def start_stopped(system: System, names: list[str]) -> None:
    run_id = system.state().run_id
    for name in names:
        if not system.is_running(system.process(name), run_id):
            system.start_process(name)


# --- reading the cluster and the copies ---------------------------------------------------------------


def queued(cluster) -> list[tuple[str, str]]:
    """(uuid, msg) of every item on the queue, head first, as its members hold it."""
    return [(item.uuid, item.msg) for item in map(decode_queue_item, cluster.get_queue(MESSAGES_QUEUE).blocking()
                                                   .iterator())]


def logged_entry(cluster, key: str) -> LoggedMessage | None:
    value = cluster.get_map(LOGGING_MAP).blocking().get(key)
    return None if value is None else LoggedMessage.from_text(value.to_string())


def received_entry(cluster, key: str) -> ReceivedMessage | None:
    value = cluster.get_map(RECEIVED_MAP).blocking().get(key)
    return None if value is None else ReceivedMessage.from_text(value.to_string())


def received_everywhere(system: System, key: str) -> list[tuple[str, str]]:
    """(copy, msg) for each time a messages copy lists `key` in its GET /messages."""
    found = []
    for name in system.names("messages"):
        listing = messages_listing(system.url(name), timeout=10)
        found += [(name, entry.msg) for entry in listing.entries if entry.uuid == key]
    return found


def merged_entries(facade: str, key: str) -> list[dict]:
    return [m for m in requests.get(facade + "/facade", timeout=30).json()["merged"] if m["uuid"] == key]


def post(facade: str, msg: str, key: str | None = None) -> requests.Response:
    headers = {"Idempotency-Key": key} if key else {}
    return requests.post(facade + "/facade", data={"msg": msg}, headers=headers, timeout=ANSWERED_WITHIN)


def consumers_dropped(system: System) -> int:
    """Items the messages copies took off the queue and dropped as already received, since they started."""
    total = 0
    for name in system.names("messages"):
        counts = service_health(system.url(name), timeout=10).consumer()
        total += counts.taken - counts.received
    return total


def steady(read, settle: float = 1.0):
    """A value read twice, `settle` seconds apart, with the same result."""
    def unchanged():
        first = read()
        time.sleep(settle)
        assert read() == first
        return (first,)  # a tuple: eventually would take a falsy value such as 0 for "not yet"
    return eventually(unchanged, timeout=60)[0]


def assert_unavailable(response: requests.Response) -> dict:
    """The documented shape of a 503: JSON {"error": "unavailable", "message": ...}."""
    assert response.status_code == 503, response.text
    assert response.headers["Content-Type"].startswith("application/json")
    body = response.json()
    assert body["error"] == "unavailable" and body["message"]
    return body


# --- "Nothing is delivered that was not logged" -------------------------------------------------------


def test_an_idempotency_key_used_again_for_another_text_is_a_409_and_only_the_logged_text_is_queued(
        system, cluster, facade, consumers_stopped):
    key = f"same-key-{uuid.uuid4()}"
    assert post(facade, "the first text", key).status_code == 201
    conflict = post(facade, "another text", key)
    assert conflict.status_code == 409 and conflict.json()["error"] == "conflict"

    assert queued(cluster) == [(key, "the first text")]  # read before any consumer runs
    assert logged_entry(cluster, key).msg == "the first text"
    start_stopped(system, consumers_stopped)
    eventually(lambda: received_everywhere(system, key) == [(received_entry(cluster, key).received_by,
                                                             "the first text")], timeout=60)


def test_a_post_whose_queue_offer_fails_after_logging_is_a_503_stays_logged_is_redelivered_and_a_retry_converges(
        system, cluster, facade, consumers_stopped):
    fillers = [post(facade, f"filler-{i}") for i in range(QUEUE_BOUND)]
    assert [r.status_code for r in fillers] == [201] * QUEUE_BOUND
    assert len(queued(cluster)) == QUEUE_BOUND

    key, text = f"offer-fails-{uuid.uuid4()}", "logged, then the queue was full"
    assert "full" in assert_unavailable(post(facade, text, key))["message"]
    logged = logged_entry(cluster, key)
    assert logged is not None and logged.msg == text, "the message must stay logged"
    assert key not in dict(queued(cluster))

    assert "full" in assert_unavailable(post(facade, text, key))["message"]  # a retry while the queue is still full
    assert logged_entry(cluster, key) == logged, "logging answers the repeat as a duplicate: the first entry stands"
    assert merged_entries(facade, key) == [{"uuid": key, "msg": text, "logged_by": logged.logged_by,
                                            "received_by": None}]

    start_stopped(system, consumers_stopped)  # no POST of it from here on: only redelivery can deliver it
    delivered = eventually(lambda: _once_with(system, cluster, key, text), timeout=90)
    assert sum(health_at(system.process(name).health_url, 10).offered_again() for name in consumers_stopped) >= 1

    eventually(lambda: queued(cluster) == [], timeout=60)  # whatever redelivery offered twice has been taken
    dropped_before = steady(lambda: consumers_dropped(system))
    retry = post(facade, text, key)
    assert retry.status_code == 201 and retry.json()["uuid"] == key and retry.json()["replayed"] is True
    eventually(lambda: consumers_dropped(system) > dropped_before and queued(cluster) == [], timeout=60)

    assert _once_with(system, cluster, key, text) == delivered  # the first receipt stands
    assert logged_entry(cluster, key) == logged
    assert len(merged_entries(facade, key)) == 1


def _once_with(system: System, cluster, key: str, text: str) -> ReceivedMessage:
    """The one record of `key` in the received map, listed by exactly the copy it names, with `text`."""
    entry = received_entry(cluster, key)
    assert entry is not None and entry.msg == text
    assert received_everywhere(system, key) == [(entry.received_by, text)]
    return entry


# --- "No request hangs": a logging copy that accepts the connection and never answers -----------------


@pytest.fixture
def silent_copies():
    copies = [SilentServer() for _ in range(4)]
    yield copies
    for copy in copies:
        copy.close()


def lookups_fetched(facade: str, service: str) -> float:
    """How often the facade has read `service`'s addresses from the config server (its /metrics)."""
    text = requests.get(facade + "/metrics", timeout=10).text
    return sum(sample.value for family in text_string_to_metric_families(text) for sample in family.samples
               if sample.name == "lab_discovery_lookups_total"
               and sample.labels == {"service": service, "result": "fetched"})


@contextmanager
def logging_registered_as(system: System, facade: str, addresses: list[str],
                          service: str = "logging-service") -> Iterator[None]:
    """The config server's registry lists `addresses` as the copies of `service` (the config server restarted
    on it), and the facade has read them; the real registry is back after."""
    path = system.run_dir / "registry.json"
    real = path.read_text()
    try:
        _serve_registry(system, facade, path, json.dumps({**json.loads(real), service: addresses}), service)
        yield
    finally:
        _serve_registry(system, facade, path, real, service)


def _serve_registry(system: System, facade: str, path: Path, registry: str, service: str) -> None:
    path.write_text(registry)
    system.restart("config-server")
    fetched = lookups_fetched(facade, service)

    def facade_read_it():  # the facade reads the registry again once its cached addresses expire
        if service == "logging-service":
            post(facade, "probe")
        else:  # a read asks the messages copies: not waited for (a silent copy holds it; forget() waits)
            try:
                requests.get(facade + "/facade", timeout=1)
            except requests.RequestException:
                pass
        assert lookups_fetched(facade, service) > fetched
    eventually(facade_read_it, timeout=60, interval=0.5)


def test_a_logging_copy_that_accepts_and_never_answers_is_failed_over_within_the_call_timeout(
        system, cluster, facade, silent_copies):
    silent = silent_copies[:2]
    with logging_registered_as(system, facade, [c.url for c in silent] + [system.url("logging-1")]):
        for copy in silent:
            copy.forget(within=ANSWERED_WITHIN)
        started = time.monotonic()
        answers = [post(facade, f"past the silent ones {i}") for i in range(10)]
        took = time.monotonic() - started
        assert [a.status_code for a in answers] == [201] * 10  # 2 silent copies, 3 attempts: the third is real
        assert {a.json()["logged_by"] for a in answers} == {"logging-1"}
        tried = sum(copy.accepted for copy in silent)
        assert tried >= 1, "no POST tried a silent copy first"
        assert took >= tried * (CALL_TIMEOUT - 0.05), f"{tried} silent copies tried in {took:.1f} s: not 2 s each"
        eventually(lambda: sum(len(copy.held) for copy in silent) == tried, timeout=ANSWERED_WITHIN)  # given up
        held = [seconds for copy in silent for seconds in copy.held]
        assert max(held) < CALL_TIMEOUT_AT_MOST, f"attempts on silent copies held for {held} s: not 2 s each"
    for answer in answers:
        key = answer.json()["uuid"]
        assert logged_entry(cluster, key).logged_by == "logging-1"
    eventually(lambda: all(received_entry(cluster, a.json()["uuid"]) for a in answers), timeout=60)


def test_when_every_logging_copy_is_silent_a_post_is_a_503_after_three_attempts_on_three_copies(
        system, cluster, facade, silent_copies):
    key = f"all-silent-{uuid.uuid4()}"
    with logging_registered_as(system, facade, [c.url for c in silent_copies]):
        for copy in silent_copies:
            copy.forget(within=ANSWERED_WITHIN)
        started = time.monotonic()
        assert_unavailable(post(facade, "nobody answers", key))
        took = time.monotonic() - started
        assert sorted(copy.accepted for copy in silent_copies) == [0, 1, 1, 1], "one attempt on each of 3 copies"
        assert took >= ATTEMPTS * (CALL_TIMEOUT - 0.05), f"3 silent copies tried in {took:.1f} s: not 2 s each"
        eventually(lambda: sum(len(copy.held) for copy in silent_copies) == ATTEMPTS, timeout=ANSWERED_WITHIN)
        held = [seconds for copy in silent_copies for seconds in copy.held]
        assert max(held) < CALL_TIMEOUT_AT_MOST, f"attempts on silent copies held for {held} s: not 2 s each"
    assert logged_entry(cluster, key) is None and key not in dict(queued(cluster))


LISTING_TIMEOUT = 30.0  # README, "No request hangs": 30 s for a full listing
LISTING_TIMEOUT_AT_MOST = 33.0  # each attempt on a silent copy ends under this: a wrong timeout (say 60 s) fails


def test_a_full_read_from_a_messages_copy_that_never_answers_is_given_up_after_30_s(system, facade, silent_copies):
    """GET /facade reads a full listing from a messages copy with a 30 s read timeout, 3 attempts: a copy that
    accepts and never answers holds each attempt for 30 s, not less and not much more, and the facade still
    answers with logging's side and the messages side's error."""
    silent = silent_copies[0]
    with logging_registered_as(system, facade, [silent.url], service="messages-service"):
        silent.forget(within=3 * LISTING_TIMEOUT_AT_MOST)
        started = time.monotonic()
        view = requests.get(facade + "/facade", timeout=3 * LISTING_TIMEOUT_AT_MOST + 10)
        took = time.monotonic() - started
        assert view.status_code == 200 and view.json()["messages"].get("error"), view.text[:300]
        assert ATTEMPTS * (LISTING_TIMEOUT - 0.05) <= took < ATTEMPTS * LISTING_TIMEOUT_AT_MOST, took
        eventually(lambda: len(silent.held) == silent.accepted, timeout=LISTING_TIMEOUT_AT_MOST)
        # the status page's /health probes connect too and give up after 2 s, and the read that made the facade
        # look the registry up may still be trying: the reads are the long ones, at least this GET's three
        reads = [seconds for seconds in silent.held if seconds >= LISTING_TIMEOUT - 0.05]
        assert len(reads) >= ATTEMPTS and max(silent.held) < LISTING_TIMEOUT_AT_MOST, silent.held


# --- "POST answers 201 only when both writes are done ... any 2 of the 3 members may then die at once" ----


def test_a_201_means_the_message_is_in_the_map_and_on_the_queue_and_two_members_may_then_die_at_once(
        system, cluster, facade, consumers_stopped):
    answers = [post(facade, f"both writes {i}") for i in range(5)]
    assert [a.status_code for a in answers] == [201] * 5
    posted = [(a.json()["uuid"], a.json()["msg"]) for a in answers]
    # read the moment the last 201 came, with no consumer running: both writes are already in the cluster
    assert queued(cluster) == posted
    assert [(key, logged_entry(cluster, key).msg) for key, _ in posted] == posted

    owner = queue_owner(system)
    victims = [owner, next(m for m in system.names("member") if m != owner)]
    try:
        for victim in victims:
            system.kill(victim)

        def held_by_the_survivor():
            assert queued(cluster) == posted
            assert [(key, logged_entry(cluster, key).msg) for key, _ in posted] == posted
        eventually(held_by_the_survivor, timeout=60)

        start_stopped(system, consumers_stopped)
        eventually(lambda: all(_once_with(system, cluster, key, text) for key, text in posted), timeout=60)
    finally:
        start_stopped(system, victims)
        system.wait_cluster_safe(3, timeout=120)
        system.wait_healthy(timeout=120)


def test_in_available_mode_a_post_is_201_with_one_member_left_and_delivered_once(system, cluster, facade):
    """"As long as one member is left", in the default mode (quorum mode refuses it: test_quorum_mode.py)."""
    assert system.state().topology.consistency == "available"
    assert all("-Dlab.consistency=available" in system.process(name).argv for name in system.names("member"))
    victims = [m for m in system.names("member") if m != "member-1"]
    try:
        for victim in victims:
            system.kill(victim)
        system.wait_cluster_safe(1, timeout=60)
        answers = [post(facade, f"one member left {i}") for i in range(5)]
        assert [a.status_code for a in answers] == [201] * 5, [a.text for a in answers]
        posted = [(a.json()["uuid"], a.json()["msg"]) for a in answers]
        eventually(lambda: all(_once_with(system, cluster, key, text) for key, text in posted), timeout=60)
    finally:
        start_stopped(system, victims)
        system.wait_cluster_safe(3, timeout=120)
        system.wait_healthy(timeout=120)


# --- "every Hazelcast operation has a 5 s timeout" -------------------------------------------------------


def member_owning(system: System, cluster, key: str) -> str:
    """The member (member-N) that owns `key`'s partition, as the partition table tells a client."""
    partitions = cluster.partition_service
    owner = partitions.get_partition_owner(partitions.get_partition_id(key))
    addresses = {m.uuid: f"{m.address.host}:{m.address.port}" for m in cluster.cluster_service.get_members()}
    return {address: name for name, address in system.hazelcast_cluster()[1].items()}[addresses[owner]]


HUNG_FOR = 9.0  # seconds a member is frozen: past the 5 s bound, under the 10 s after which the cluster drops it
HAZELCAST_OPERATION_TIMEOUT = 5.0  # the services' documented default (hz_invocation_timeout)
GIVEN_UP_WITHIN = 7.0  # the 503 of an operation on a hung member comes under this: a wrong bound (say 10 s) fails


def test_a_hazelcast_operation_on_a_member_that_hangs_is_given_up_after_5_s(system, cluster):
    """A logging copy's put_if_absent whose partition owner hangs (SIGSTOP, sockets open) for HUNG_FOR
    seconds, under the 10 s after which the cluster drops it: the copy gives the operation up after the 5 s
    invocation timeout and answers 503 while the member is still frozen (lab_common.cluster.BoundedProxy).
    Until 2026-12-02 it waited for the member: answered only once it was thawed."""
    key = f"hung-owner-{uuid.uuid4()}"
    owner = member_owning(system, cluster, key)
    answers: list[tuple[float, float, int]] = []  # (sent, answered) on the monotonic clock, status

    def store_it():
        sent = time.monotonic()
        response = requests.post(system.url("logging-1") + "/logging", json={"uuid": key, "msg": "m"},
                                 timeout=ANSWERED_WITHIN)
        answers.append((sent, time.monotonic(), response.status_code))

    caller = threading.Thread(target=store_it)
    system.freeze(owner)
    try:
        caller.start()
        caller.join(HUNG_FOR)
    finally:
        thawing = time.monotonic()
        system.thaw(owner)
        caller.join(ANSWERED_WITHIN)
        system.wait_cluster_safe(3, timeout=120)
    assert answers, f"the logging copy did not answer within {ANSWERED_WITHIN:.0f} s of the call"
    (sent, answered, status), = answers
    assert answered < thawing, (f"answered {status} after {answered - sent:.1f} s, only once {owner} was thawed "
                                f"({thawing - sent:.1f} s): the {HAZELCAST_OPERATION_TIMEOUT:.0f} s bound did not hold")
    assert status == 503
    assert HAZELCAST_OPERATION_TIMEOUT - 0.1 <= answered - sent < GIVEN_UP_WITHIN, \
        f"given up after {answered - sent:.1f} s, not after the {HAZELCAST_OPERATION_TIMEOUT:.0f} s bound"


def test_a_client_built_while_a_member_hangs_connects_to_the_live_members_before_it_thaws(system):
    """What a service does when it starts over (a transaction its frozen coordinator holds cannot be rolled
    back): it builds a new client, which is given every member's address. The hung member accepts the
    connection and never answers; each attempt on it is given up after the connection timeout
    (lab_common.hazelcast_fixes), so the client joins the live members. Until 2026-12-02 it waited for the
    hung member's answer until the thaw, then could join it while the thawed member was a cluster alone."""
    cluster_name, members = system.hazelcast_cluster()
    frozen = "member-1"
    settings = HazelcastSettings.load("promise-test", default_port=1, environ={}, argv=[], instance="late-client",
                                      hz_cluster_name=cluster_name,
                                      hz_members=(members[frozen], *(a for n, a in members.items() if n != frozen)))
    system.freeze(frozen)
    connection = None
    try:
        connection = ClusterConnection(settings).start()
        connected = connection.wait_connected(HUNG_FOR)
        status = connection.status
    finally:
        system.thaw(frozen)
        if connection is not None:
            connection.close()
        system.wait_cluster_safe(3, timeout=120)
        system.wait_healthy(timeout=120)
    assert connected, f"a client built while {frozen} hung was not connected {HUNG_FOR:.0f} s on: {status}"
