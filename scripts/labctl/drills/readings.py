"""What the drills read besides the services' answers: the cluster's own view (the queue's owner, the received
map, through a client of their own) and the timing of a load's answers."""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator

from labctl.control import Controller
from labctl.drills.framework import DrillError
from labctl.load import Outcome
from labctl.probe import wait_for

QUEUE_NAME = "messages-queue"  # Settings.messages_queue default
RECEIVED_MAP = "received"  # Settings.received_map default
FAIL_FAST_SECONDS = 10.0  # a POST the system cannot take must be answered 503 within this


@contextlib.contextmanager
def cluster_client(controller: Controller, timeout: float = 5.0) -> Iterator:
    """A Hazelcast client of the deployment's cluster, for what only the cluster itself can tell."""
    import hazelcast
    from lab_common import hazelcast_fixes

    hazelcast_fixes.apply()  # the client as the services run it: its authentication bounded on a frozen member
    cluster_name, addresses = controller.hazelcast_cluster()
    client = hazelcast.HazelcastClient(
        cluster_name=cluster_name, cluster_members=list(addresses.values()), cluster_connect_timeout=timeout,
        invocation_timeout=timeout, connection_timeout=2.0, statistics_enabled=False,
    )
    try:
        yield client
    finally:
        client.shutdown()


def received_in_cluster(controller: Controller, uuids: Iterable[str]) -> int:
    """How many of the uuids the received map holds, read from the cluster: counts what a frozen copy
    recorded too (its own GET /messages cannot answer)."""
    with cluster_client(controller) as client:
        return len(client.get_map(RECEIVED_MAP).blocking().get_all(list(uuids)))


def longest_silence(outcomes: Iterable[Outcome], start: float, end: float) -> float:
    """The longest stretch of [start, end] (wall-clock seconds) in which no POST was answered 201."""
    answered = sorted(o.started + o.elapsed for o in outcomes if o.uuid and start <= o.started + o.elapsed <= end)
    edges = [start, *answered, end]
    return max(b - a for a, b in zip(edges, edges[1:], strict=False))


def answered_between(outcomes: Iterable[Outcome], start: float, end: float) -> int:
    """How many POSTs were answered 201 within [start, end] (wall-clock seconds)."""
    return sum(1 for o in outcomes if o.uuid and start <= o.started + o.elapsed <= end)


def master(controller: Controller, timeout: float = 5.0) -> str:
    """The cluster's master (member-N): its oldest member, first in the member list a client is given."""
    names_by_address = {address: name for name, address in controller.hazelcast_cluster()[1].items()}
    with cluster_client(controller, timeout) as client:
        first = client.cluster_service.get_members()[0].address
    address = f"{first.host}:{first.port}"
    return names_by_address.get(address, address)


def queue_owner(controller: Controller, queue_name: str = QUEUE_NAME, timeout: float = 5.0) -> str:
    """The member (member-N) owning the queue's partition, as the cluster's partition table tells a client."""
    addresses_by_name = controller.hazelcast_cluster()[1]
    names_by_address = {address: name for name, address in addresses_by_name.items()}
    with cluster_client(controller, timeout) as client:
        partitions = client.partition_service

        def owner_address() -> str | None:
            members = {m.uuid: f"{m.address.host}:{m.address.port}" for m in client.cluster_service.get_members()}
            return members.get(partitions.get_partition_owner(partitions.get_partition_id(queue_name)))

        address, _ = wait_for(owner_address, lambda a: a is not None, timeout, interval=0.1)
    host = (address or "").rsplit(":", 1)[0]
    if address not in names_by_address and host in addresses_by_name:  # in Compose, a member is known by its name
        return host
    if address not in names_by_address:
        raise DrillError(f"the cluster names {address} as the owner of {queue_name}, which is no member known here")
    return names_by_address[address]
