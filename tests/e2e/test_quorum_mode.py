"""Quorum mode (labctl --consistency quorum) against real members: with 3 and with 2 members writes are taken
and delivered; with 1 a POST is a fast 503 and nothing is stored, a consumer's transaction is refused and its
items stay queued; once the members are back everything takes writes again by itself, no service restarted.
Available mode's side (one member left still takes writes): tests/e2e/test_promise.py."""

from __future__ import annotations

import logging
import time
import uuid

import pytest
import requests

import hazelcast
from lab_common.errors import NoQuorum
from labctl.probe import service_health
from tests.e2e.test_promise import (
    assert_unavailable,
    logged_entry,
    member_owning,
    post,
    queued,
    received_entry,
    received_everywhere,
)
from tests.helpers import eventually, port_offset, started_system

pytestmark = pytest.mark.e2e
log = logging.getLogger(__name__)

PORT_OFFSET = port_offset(19_500)  # members on 25201-25203, their metrics on 29201-29203, the facade on 27580
FAST = 2.0  # seconds: a refused POST is answered within this (the README's "fast 503")
REFUSED_WITHIN = 15.0  # seconds after the second kill by which the survivor must refuse (measured: ~0.5 s)
UNCONFIRMED_WITHIN = 4.0  # seconds: a write a backup does not confirm fails after 1.5 s (BACKUP_ACK_TIMEOUT)


@pytest.fixture(scope="module")
def system(tmp_path_factory):
    with started_system(tmp_path_factory.mktemp("quorum"), "quorum", port_offset=PORT_OFFSET,
                        consistency="quorum") as system:
        yield system


@pytest.fixture(scope="module")
def cluster(system):
    """A client of the members: reads (which quorum mode never refuses) of what the cluster holds."""
    topology = system.state().topology
    client = hazelcast.HazelcastClient(cluster_name=topology.cluster_name, cluster_members=topology.member_addresses(),
                                       cluster_connect_timeout=60, invocation_timeout=30, statistics_enabled=False)
    yield client
    client.shutdown()


@pytest.fixture
def facade(system):
    return system.url("facade-1")


def start_stopped(system, names: list[str], *, wait: bool = True) -> None:
    run_id = system.state().run_id
    for name in names:
        if not system.is_running(system.process(name), run_id):
            system.start_process(name, wait=wait)


def delivered_once(system, cluster, key: str, text: str) -> bool:
    entry = received_entry(cluster, key)
    return entry is not None and entry.msg == text and len(received_everywhere(system, key)) == 1


def post_and_deliver(system, cluster, facade: str, label: str) -> None:
    answers = [post(facade, f"{label} {i}") for i in range(5)]
    assert [a.status_code for a in answers] == [201] * 5, [a.text for a in answers]
    posted = [(a.json()["uuid"], a.json()["msg"]) for a in answers]
    eventually(lambda: all(delivered_once(system, cluster, key, text) for key, text in posted), timeout=60)


def still_waiting(cluster, waiting: list, first_queued: list) -> None:
    """What waited on the queue when quorum went is still held, and only that is on the queue.

    The queue's own copy is not enough to promise it: a second member killed while the survivor is still
    promoting the first one's backups can take queue items with it (Hazelcast's promotion is not atomic
    across two losses; seen in 1 to 2 of 10 runs of this module). The log is what promises it: every
    acknowledged message is in the logging map, and redelivery offers again whatever was logged and not
    received, once quorum is back (checked at the end of the test).
    """
    on_queue = queued(cluster)
    assert set(on_queue) <= set(waiting + first_queued), on_queue
    assert len(on_queue) == len(set(on_queue)), on_queue  # nothing queued twice
    if len(set(waiting) - set(on_queue)):
        log.warning("the double kill took %d waiting item(s) off the queue; the log holds them",
                    len(set(waiting) - set(on_queue)))
    assert all(logged_entry(cluster, key) is not None for key, _ in waiting)

def test_the_launcher_started_the_system_in_quorum_mode(system):
    assert system.state().topology.consistency == "quorum"
    assert all("-Dlab.consistency=quorum" in system.process(name).argv for name in system.names("member"))


def test_with_three_members_posts_are_201_and_delivered_once(system, cluster, facade):
    post_and_deliver(system, cluster, facade, "three members")


def test_with_one_member_killed_posts_are_still_201_and_delivered_once(system, cluster, facade):
    system.kill("member-3")
    try:
        system.wait_cluster_safe(2, timeout=60)
        post_and_deliver(system, cluster, facade, "two members")
    finally:
        start_stopped(system, ["member-3"])
        system.wait_cluster_safe(3, timeout=120)


def test_with_one_member_left_a_post_is_a_fast_503_nothing_is_stored_and_all_recovers_once_members_return(
        system, cluster, facade):
    consumers = system.names("messages")
    for name in consumers:  # so that some items wait on the queue when quorum goes
        system.terminate(name)
    waiting = [(a.json()["uuid"], a.json()["msg"]) for a in (post(facade, f"queued {i}") for i in range(3))]
    assert sorted(queued(cluster)) == sorted(waiting)
    victims = ["member-2", "member-3"]
    refused: list[tuple[str, float]] = []  # (idempotency key, seconds the 503 took)
    try:
        killed_at = time.monotonic()
        for victim in victims:
            system.kill(victim)

        def refused_now():
            key = f"no-quorum-{uuid.uuid4()}"
            sent = time.monotonic()
            answer = post(facade, "refused", key)
            if answer.status_code == 201:  # taken before the survivor saw the others go: it holds it
                raise AssertionError("not refused yet")
            refused.append((key, time.monotonic() - sent))
            return (answer,)  # a tuple: a 503 Response is falsy, and eventually would try again
        first, = eventually(refused_now, timeout=REFUSED_WITHIN, interval=0.05)
        log.info("first 503 %.2f s after the first kill", time.monotonic() - killed_at)
        assert assert_unavailable(first)["message"] == NoQuorum.text
        for _ in range(5):
            refused_now()
        assert max(took for _, took in refused) < FAST, refused

        start_stopped(system, consumers, wait=False)
        # Read on the survivor: nothing of a POST refused by quorum was stored or queued. The first 503 may
        # come from the change itself (logged just before the survivor saw the others go, its offer refused
        # just after): the README's "503 after logging", which redelivery delivers once quorum returns. Its
        # offer may even be on the queue: a first try answered by a member that died as it took it (the item
        # on the backup the survivor promotes), the retry refused. Never a message that was not logged.
        for key, _ in refused[1:]:
            assert logged_entry(cluster, key) is None
        first_queued = [(refused[0][0], "refused")] if logged_entry(cluster, refused[0][0]) is not None else []
        still_waiting(cluster, waiting, first_queued)

        def reported(name: str) -> None:
            try:
                health = service_health(system.url(name), timeout=5)
            except requests.RequestException as err:  # a copy started a moment ago: not listening yet
                raise AssertionError(f"{name}: {err}") from err
            assert health.status == 503 and health.detail("quorum") == NoQuorum.text, health.checks
        for name in ("facade-1", "logging-1", *consumers):
            eventually(lambda name=name: reported(name), timeout=30)
        # the copies' consumers were refused all along: none received what waited
        still_waiting(cluster, waiting, first_queued)
        assert all(received_entry(cluster, key) is None for key, _ in waiting)
    finally:
        start_stopped(system, victims)
        start_stopped(system, consumers)
    system.wait_cluster_safe(3, timeout=120)
    system.wait_healthy(timeout=60)  # every copy by itself, none restarted

    again = post(facade, "refused", refused[-1][0])  # a POST that was refused, retried with its key
    assert again.status_code == 201, again.text
    assert "replayed" not in again.json()  # stored now, for the first time
    expected = [*waiting, (refused[-1][0], "refused")]
    if logged_entry(cluster, refused[0][0]) is not None:  # the first 503's, logged in the change: redelivered
        expected.append((refused[0][0], "refused"))
    eventually(lambda: all(delivered_once(system, cluster, key, text) for key, text in expected), timeout=90)
    assert queued(cluster) == []
    assert all(logged_entry(cluster, key) is None for key, _ in refused[1:-1])


def test_a_message_one_backup_did_not_confirm_is_a_503_and_after_the_thaw_the_same_uuid_is_stored_once(
        system, cluster):
    """A member holding a backup of the message's partition hangs (SIGSTOP) for a moment, well under the 3 s
    after which quorum counts it out and the 10 s after which the cluster drops it: the logging copy's write
    reaches the owner but not every backup, so it is a 503, not a 201 (available mode answers 201 after 1.5 s).
    Were it a 201, a cluster that then promoted the other backup would lose it for good once the owner's merge
    failed (seen once in a bridge partition). After the thaw the same uuid is stored, once, with its text."""
    key = str(uuid.uuid4())
    owner = member_owning(system, cluster, key)
    backup = next(name for name in system.names("member") if name != owner)
    url = system.url("logging-1") + "/logging"
    # the copy's first write also sets up the map (an index on every member): done before the freeze
    assert requests.post(url, json={"uuid": str(uuid.uuid4()), "msg": "set up"}, timeout=10).status_code == 201
    system.freeze(backup)
    try:
        sent = time.monotonic()
        first = requests.post(url, json={"uuid": key, "msg": "held by one backup"}, timeout=10)
        took = time.monotonic() - sent
    finally:
        system.thaw(backup)
    assert first.status_code == 503, first.text
    assert took < UNCONFIRMED_WITHIN, f"answered after {took:.1f} s"
    system.wait_cluster_safe(3, timeout=60)
    again = requests.post(url, json={"uuid": key, "msg": "held by one backup"}, timeout=10)
    assert again.status_code in (200, 201), again.text
    assert logged_entry(cluster, key).msg == "held by one backup"


def test_labctl_status_names_the_mode(system):
    from labctl.cli import status_table

    assert "consistency: quorum" in status_table(system)
    assert requests.get(system.url("facade-1") + "/health", timeout=5).status_code == 200
