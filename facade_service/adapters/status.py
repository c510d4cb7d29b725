"""Where the status page's data comes from: the facade's Hazelcast client (who is in the cluster, who
owns the queue's partition), each member's own statistics (its JMX exporter's /metrics), the
discovery source (every copy of every service) and each copy's /health."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import orjson
from hazelcast.errors import HazelcastError
from prometheus_client.parser import text_string_to_metric_families

from facade_service.status import ClusterView, CopyStatus, MemberStatus, QueueStatus
from lab_common.cluster import ClusterConnection
from lab_common.contracts import member_metrics_address
from lab_common.errors import Unavailable
from lab_common.http import HttpPool, TransportError

PROBE_TIMEOUT = (0.5, 1.0)  # connect, read: a copy that cannot answer /health that fast shows as down
# A member's statistics are read at most this often: one scrape of its exporter costs the member 12-15 ms
# of CPU. Whether it is up comes from the client at every snapshot.
MEMBER_STATS_SECONDS = 3.0
SERVICES = ("facade-service", "logging-service", "messages-service")


class MemberStatistics:
    """One scrape of a member's metrics endpoint, as {(name, label value): value}."""

    def __init__(self, text: str):
        self._values: dict[tuple[str, str], float] = {}
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                label = sample.labels.get("map") or sample.labels.get("queue") or ""
                self._values[(sample.name, label)] = sample.value

    def get(self, name: str, label: str = "") -> int | None:
        value = self._values.get((name, label))
        return None if value is None else int(value)


class HazelcastClusterView:
    def __init__(self, connection: ClusterConnection, members: tuple[str, ...], http: HttpPool, *,
                 logging_map: str, received_map: str, queue: str | None, clock: Callable[[], float] = time.monotonic):
        self._connection = connection
        self._members = members
        self._http = http
        self._logging_map = logging_map
        self._received_map = received_map
        self._queue = queue  # None: the facade offers to no queue of the cluster
        self._scrapers = ThreadPoolExecutor(max_workers=max(1, len(members)), thread_name_prefix="member-stats")
        self._clock = clock
        self._scraped: tuple[float, dict] | None = None

    def view(self) -> ClusterView:
        scrapes = self._member_statistics()
        error = None
        try:
            in_cluster, queue_owner = self._cluster_members()
        except (Unavailable, HazelcastError) as err:
            in_cluster, queue_owner = set(), None
            error = f"the facade's client: {getattr(err, 'message', None) or type(err).__name__}"
        members, owner_stats = [], None
        for address in self._members:
            stats, why = scrapes[address]
            if address == queue_owner:
                owner_stats = stats
            members.append(MemberStatus(
                address=address, up=address in in_cluster,
                partitions=stats.get("hazelcast_partitions_owned") if stats else None,
                owned_entries=stats.get("hazelcast_map_owned_entries", self._logging_map) if stats else None,
                backup_entries=stats.get("hazelcast_map_backup_entries", self._logging_map) if stats else None,
                metrics_error=why))
        up_stats = [stats for stats, _ in scrapes.values() if stats]
        queue = None if self._queue is None else QueueStatus(
            name=self._queue, owner=queue_owner,
            size=owner_stats.get("hazelcast_queue_owned_items", self._queue) if owner_stats else None,
            offers_total=owner_stats.get("hazelcast_queue_offers_total", self._queue) if owner_stats else None,
            polls_total=owner_stats.get("hazelcast_queue_polls_total", self._queue) if owner_stats else None,
            read_at=self._scraped[0] if self._scraped else None)
        return ClusterView(members=members, queue=queue, error=error,
                           logged=_summed(up_stats, "hazelcast_map_owned_entries", self._logging_map),
                           received=_summed(up_stats, "hazelcast_map_owned_entries", self._received_map))

    def received_by(self, uuids: list[str]) -> dict[str, str]:
        try:
            found = self._connection.proxy("map", self._received_map).get_all(uuids)
        except HazelcastError as err:
            raise Unavailable(f"cannot read the received map: {type(err).__name__}") from err
        return {uuid: orjson.loads(value.to_string()).get("received_by") for uuid, value in found.items()}

    def _cluster_members(self) -> tuple[set[str], str | None]:
        """Addresses of the members in the cluster, and the one holding the queue's partition (if a queue)."""
        client = self._connection.client()
        configured = {_resolved(address): address for address in self._members}
        by_uuid = {}
        for m in client.cluster_service.get_members():
            reported = f"{m.address.host}:{m.address.port}"  # an IP in containers and pods, a name elsewhere
            by_uuid[m.uuid] = configured.get(_resolved(reported), reported)
        if self._queue is None:
            return set(by_uuid.values()), None
        partitions = client.partition_service
        owner = partitions.get_partition_owner(partitions.get_partition_id(self._queue))
        return set(by_uuid.values()), by_uuid.get(owner)

    def _member_statistics(self) -> dict[str, tuple[MemberStatistics | None, str | None]]:
        now = self._clock()
        if self._scraped is None or now - self._scraped[0] >= MEMBER_STATS_SECONDS:
            self._scraped = (now, dict(zip(self._members, self._scrapers.map(self._scrape, self._members),
                                           strict=True)))
        return self._scraped[1]

    def _scrape(self, member: str) -> tuple[MemberStatistics | None, str | None]:
        try:
            response = self._http.request("GET", "http://" + member_metrics_address(member), "/metrics",
                                          timeout=PROBE_TIMEOUT)
        except TransportError as err:
            return None, f"metrics: no answer ({err})"
        if response.status != 200:
            return None, f"metrics: HTTP {response.status}"
        return MemberStatistics(response.data.decode()), None


def _resolved(address: str) -> str:
    """host:port with the host as an IP address, so a member configured by name (member-1:5701 in Compose,
    member-1.member:5701 in Kubernetes) matches the address the cluster reports for it. Looked up on every
    read: a pod's address changes when it is replaced."""
    host, _, port = address.rpartition(":")
    try:
        return f"{socket.gethostbyname(host)}:{port}"
    except OSError:  # not resolvable (now): compared as written
        return address


def _summed(scrapes: list[MemberStatistics], name: str, label: str) -> int | None:
    values = [s.get(name, label) for s in scrapes]
    return sum(v for v in values if v is not None) if any(v is not None for v in values) else None


class HealthProbe:
    """Every copy the discovery source lists, each asked for its /health at once; this facade itself is
    asked in-process (over HTTP it would need a free request thread of its own)."""

    def __init__(self, targets: Callable[[], list[tuple[str, str]]], http: HttpPool, *,
                 own_base_url: str = "", own_health: Callable[[], tuple[bool, dict]] | None = None):
        self._targets = targets  # (service, base URL) pairs
        self._http = http
        self._own_base_url = own_base_url
        self._own_health = own_health
        self._pool = ThreadPoolExecutor(max_workers=8, thread_name_prefix="copy-health")

    def copies(self) -> list[CopyStatus]:
        try:
            targets = self._targets()
        except Unavailable as err:
            return [CopyStatus(service="discovery", name=None, address="", healthy=False, error=err.message)]
        return list(self._pool.map(lambda target: self._probe(*target), targets))

    def _probe(self, service: str, base_url: str) -> CopyStatus:
        if self._own_health is not None and base_url == self._own_base_url:
            healthy, body = self._own_health()
            return CopyStatus(service=service, name=body.get("instance"), address=base_url, healthy=healthy,
                              checks=body.get("checks") or {})
        try:
            response = self._http.request("GET", base_url, "/health", timeout=PROBE_TIMEOUT)
            body = orjson.loads(response.data)
        except TransportError as err:
            return CopyStatus(service=service, name=None, address=base_url, healthy=False, error=f"no answer ({err})")
        except orjson.JSONDecodeError:
            return CopyStatus(service=service, name=None, address=base_url, healthy=False,
                              error=f"HTTP {response.status}, not JSON")
        return CopyStatus(service=service, name=body.get("instance"), address=base_url,
                          healthy=response.status == 200, checks=body.get("checks") or {})


def registry_targets(config_server: str, http: HttpPool) -> Callable[[], list[tuple[str, str]]]:
    """The config server itself and every address its registry lists."""

    def targets() -> list[tuple[str, str]]:
        base = config_server.rstrip("/")
        try:
            response = http.request("GET", base, "/services", timeout=PROBE_TIMEOUT)
            registry = orjson.loads(response.data).get("services") or {}
        except (TransportError, orjson.JSONDecodeError):
            registry = {}  # shown as a config server that does not answer
        listed = [(service, url) for service in (*SERVICES, *sorted(set(registry) - set(SERVICES)))
                  for url in registry.get(service, [])]
        return [("config-server", base), *listed]

    return targets


def consul_targets(client) -> Callable[[], list[tuple[str, str]]]:
    """Every registered instance, passing or not (the page shows the failing ones as down)."""
    from lab_common.consul_support import CONSUL_ERRORS

    def targets() -> list[tuple[str, str]]:
        found = []
        try:
            for service in SERVICES:
                _, entries = client.health.service(service)
                found += [(service, f"http://{e['Service']['Address']}:{e['Service']['Port']}") for e in entries]
        except CONSUL_ERRORS as err:
            raise Unavailable(f"Consul agent: {type(err).__name__}") from err
        return found

    return targets
