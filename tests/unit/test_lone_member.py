"""A client that follows a member left alone starts over with the other members tried first: the supervisor of a
ClusterConnection over fakes of the Hazelcast client, no cluster.

The Python client takes its member list and partition table from its first connection's member. In a bridge
partition the cluster drops a member that this host still reaches; a client following it follows it into a
cluster of one, which refuses every write in quorum mode while the larger side, also reachable, takes them."""

from __future__ import annotations

import threading
from dataclasses import dataclass

import pytest
from hazelcast.errors import SplitBrainProtectionError, TargetDisconnectedError
from hazelcast.future import ImmediateExceptionFuture
from hazelcast.lifecycle import LifecycleState

from lab_common.cluster import LONE_MEMBER_RETRY, ClusterConnection
from lab_common.errors import NoQuorum
from lab_common.settings import HazelcastSettings
from tests.unit.fakes import FakeClock

MEMBERS = ("10.0.0.1:5701", "10.0.0.2:5702", "10.0.0.3:5703")  # the copy's own member first
REFUSAL = "com.hazelcast.splitbrainprotection.SplitBrainProtectionException"
WAIT = 5.0  # seconds a test waits for the supervisor thread to build a client


@dataclass(frozen=True)
class FakeAddress:
    host: str
    port: int


@dataclass(frozen=True)
class FakeMember:
    address: FakeAddress


class RefusingMap:
    def delete(self, key):
        return ImmediateExceptionFuture(SplitBrainProtectionError(REFUSAL))


class FakeClient:
    """Connects at once; `see` reports members as the client's membership listener would."""

    def __init__(self, **config):
        self.config = config
        self.shut_down = False
        self._state = config["lifecycle_listeners"][0]
        self._state(LifecycleState.CONNECTED)

    def see(self, *addresses: str) -> None:
        joined, _left = self.config["membership_listeners"][0]
        for address in addresses:
            host, port = address.rsplit(":", 1)
            joined(FakeMember(FakeAddress(host, int(port))))

    def get_map(self, name):
        return RefusingMap()

    def shutdown(self) -> None:
        self.shut_down = True
        self._state(LifecycleState.SHUTDOWN)


class Clients:
    """The client factory: every client the supervisor builds, in order."""

    def __init__(self):
        self.built: list[FakeClient] = []
        self._changed = threading.Condition()

    def __call__(self, **config) -> FakeClient:
        client = FakeClient(**config)
        with self._changed:
            self.built.append(client)
            self._changed.notify_all()
        return client

    def nth(self, n: int) -> FakeClient:
        with self._changed:
            assert self._changed.wait_for(lambda: len(self.built) >= n, timeout=WAIT), f"client {n} never built"
            return self.built[n - 1]


@pytest.fixture
def clock():
    return FakeClock(1000.0)


@pytest.fixture
def clients():
    return Clients()


@pytest.fixture
def connection(clients, clock):
    connection = ClusterConnection(HazelcastSettings(hz_members=MEMBERS), client_factory=clients, clock=clock)
    connection.start()
    assert connection.wait_connected(WAIT)
    yield connection
    connection.close()


def refused(connection):
    return connection.unavailable(SplitBrainProtectionError(REFUSAL), "cannot queue the message")


def test_the_client_tries_the_members_in_the_copys_order_its_own_member_first(connection, clients):
    config = clients.nth(1).config
    assert config["cluster_members"] == list(MEMBERS)
    assert config["shuffle_member_list"] is False


def test_a_write_refused_while_the_client_follows_one_member_starts_it_over_with_that_member_tried_last(
        connection, clients):
    first = clients.nth(1)
    first.see(MEMBERS[0])
    assert isinstance(refused(connection), NoQuorum)
    assert first.shut_down
    assert clients.nth(2).config["cluster_members"] == [MEMBERS[1], MEMBERS[2], MEMBERS[0]]


def test_a_probe_refused_while_the_client_follows_one_member_starts_it_over_too(connection, clients):
    """A copy asked for nothing learns of it on /health, whose quorum check probes while it sees one member."""
    clients.nth(1).see(MEMBERS[1])
    assert connection.quorum.check() == (False, NoQuorum.text)
    assert clients.nth(2).config["cluster_members"] == [MEMBERS[0], MEMBERS[2], MEMBERS[1]]


def test_a_member_that_really_is_the_last_one_left_costs_one_new_client_per_retry_period(connection, clients, clock):
    clients.nth(1).see(MEMBERS[0])
    refused(connection)
    second = clients.nth(2)
    second.see(MEMBERS[0])  # the others are gone: the new client finds the same member
    clock.now += LONE_MEMBER_RETRY - 1
    refused(connection)
    assert not second.shut_down and len(clients.built) == 2
    clock.now += 1
    refused(connection)
    assert second.shut_down
    assert clients.nth(3).config["cluster_members"] == [MEMBERS[1], MEMBERS[2], MEMBERS[0]]


def test_the_order_holds_for_the_next_client_only(connection, clients):
    clients.nth(1).see(MEMBERS[0])
    refused(connection)
    clients.nth(2).see(MEMBERS[1], MEMBERS[2])
    connection.start_over("a queue transaction could not be rolled back")
    assert clients.nth(3).config["cluster_members"] == list(MEMBERS)


def test_a_client_that_follows_two_members_is_kept_when_a_write_is_refused(connection, clients):
    """Two members in touch take writes; a refusal then comes from the other side of a cut, still counted in
    their member list: the cluster drops it, and the client's view is already the larger side's."""
    first = clients.nth(1)
    first.see(MEMBERS[0], MEMBERS[1])
    assert isinstance(refused(connection), NoQuorum)
    assert not first.shut_down and len(clients.built) == 1


def test_other_failures_with_one_member_seen_keep_the_client(connection, clients):
    """Available mode refuses nothing: a lone member there is the last one, and serves."""
    first = clients.nth(1)
    first.see(MEMBERS[2])
    connection.unavailable(TargetDisconnectedError("gone"), "cannot queue the message")
    assert not first.shut_down and len(clients.built) == 1
