"""The status page's data: the cluster's members and queue (or, with queue=kafka, the Kafka topic; with
queue=none, no queue; without a Hazelcast client, no cluster), every service copy, the last messages.

Plain Python: what the cluster, the topic and the copies say comes in through ports. One snapshot is taken
at most every CACHE_SECONDS however many pages are open, and the queue's offers and polls (the topic's
writes and commits) are given per second over the time since the reading before.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from typing import Protocol

from lab_common.errors import Unavailable

CACHE_SECONDS = 0.5
RECENT = 20  # messages the page lists


@dataclass(frozen=True)
class MemberStatus:
    address: str  # host:port, as configured
    up: bool  # in the cluster the facade's client sees
    partitions: int | None  # partitions whose primary replica it holds
    owned_entries: int | None  # entries of the logging map it owns (its own statistics)
    backup_entries: int | None  # entries of the logging map it holds as backups
    metrics_error: str | None = None  # why its statistics could not be read


@dataclass(frozen=True)
class QueueStatus:
    name: str
    size: int | None
    owner: str | None  # address of the member holding the queue's partition
    offers_total: int | None  # as the owner counts them since it started
    polls_total: int | None
    read_at: float | None = None  # when the owner's statistics were read (they are not read at every snapshot)


@dataclass(frozen=True)
class PartitionStatus:
    partition: int
    leader: str | None  # host:port of the broker leading it; None while none is
    replicas: list[str]
    in_sync: list[str]  # the replicas in sync with the leader
    end_offset: int | None  # how many messages were ever written to it
    committed: int | None  # how far the messages copies' group has committed (None: never)
    lag: int | None  # written and not committed: what the group has yet to take


@dataclass(frozen=True)
class TopicStatus:
    name: str
    group: str
    partitions: list[PartitionStatus]
    brokers: list[str] = field(default_factory=list)  # host:port of each broker that answers
    read_at: float | None = None
    error: str | None = None


@dataclass(frozen=True)
class CopyStatus:
    service: str
    name: str | None  # the copy's own name (from its /health), None when it does not answer
    address: str
    healthy: bool
    checks: dict = field(default_factory=dict)  # what its /health reports
    error: str | None = None


@dataclass(frozen=True)
class ClusterView:
    members: list[MemberStatus]
    queue: QueueStatus | None  # None: the facade offers to no queue of the cluster
    logged: int | None  # entries of the logging map
    received: int | None  # entries of the received map (received by some copy)
    error: str | None = None


class ClusterPort(Protocol):
    def view(self) -> ClusterView:
        """The members, the queue (None without one) and the two maps' sizes; what cannot be read is None."""

    def received_by(self, uuids: list[str]) -> dict[str, str]:
        """uuid -> the messages copy that received it, for those received."""


class TopicPort(Protocol):
    def view(self) -> TopicStatus:
        """The topic's partitions as the brokers tell them; what cannot be read is None or an error."""


class CopiesPort(Protocol):
    def copies(self) -> list[CopyStatus]:
        """Every known copy of every service (and the discovery source itself), with its health."""


@dataclass(frozen=True)
class RecentMessage:
    uuid: str
    msg: str
    logged_by: str


class RecentPosts:
    """The last messages this facade acknowledged (each facade lists its own)."""

    def __init__(self, size: int = RECENT):
        self._posts: deque[RecentMessage] = deque(maxlen=size)

    def add(self, uuid: str, msg: str, logged_by: str) -> None:
        self._posts.append(RecentMessage(uuid, msg, logged_by))

    def newest_first(self) -> list[RecentMessage]:
        return list(reversed(self._posts))


class Status:
    def __init__(self, cluster: ClusterPort | None, copies: CopiesPort, recent: RecentPosts, *,
                 topic: TopicPort | None = None,
                 clock: Callable[[], float] = time.monotonic, wall: Callable[[], float] = time.time):
        self._cluster = cluster  # None: a system without Hazelcast members
        self._topic = topic
        self._previous_topic: TopicStatus | None = None
        self._topic_rates: dict = {"written_per_second": None, "committed_per_second": None}
        self._copies = copies
        self._recent = recent
        self._clock = clock
        self._wall = wall
        self._lock = threading.Lock()
        self._last: tuple[float, dict] | None = None
        self._previous_queue: tuple[float | None, QueueStatus] | None = None
        self._rates: dict = {"offers_per_second": None, "polls_per_second": None}

    def snapshot(self) -> dict:
        """The page's JSON; shared by the callers of the same half second."""
        with self._lock:
            now = self._clock()
            if self._last is not None and now - self._last[0] < CACHE_SECONDS:
                return self._last[1]
            snapshot = self._take(now)
            self._last = (now, snapshot)
            return snapshot

    def _take(self, now: float) -> dict:
        cluster = self._cluster.view() if self._cluster else NO_CLUSTER
        copies = self._copies.copies()
        recent = self._recent.newest_first()
        received = {}
        try:
            if recent and self._cluster:
                received = self._cluster.received_by([m.uuid for m in recent])
        except Unavailable as err:  # the page shows what it has: a missing answer is a note, not a 503
            cluster = _with_error(cluster, err.message)
        queue = cluster.queue
        return {
            "at": self._wall(),
            "cluster": self._cluster is not None,
            "members": [asdict(m) for m in cluster.members],
            "queue": {**asdict(queue), **self._queue_rates(queue)} if queue else None,
            "maps": {"logged": cluster.logged, "received": cluster.received},
            "copies": [asdict(c) for c in copies],
            "received_by_copy": _received_counts(copies),
            "recent": [{**asdict(m), "received_by": received.get(m.uuid)} for m in recent],
            "topic": self._topic_view(),
            "error": cluster.error,
        }

    def _topic_view(self) -> dict | None:
        """The Kafka topic with the messages written and committed per second between its last two readings
        (None before there are two, or when a partition's count is missing from either)."""
        if self._topic is None:
            return None
        topic = self._topic.view()
        previous = self._previous_topic
        if previous is None or topic.read_at != previous.read_at:
            self._previous_topic = topic
            rates = {"written_per_second": None, "committed_per_second": None}
            if previous is not None and previous.read_at is not None and topic.read_at is not None \
                    and topic.read_at > previous.read_at:
                seconds = topic.read_at - previous.read_at
                for key, attribute in (("written_per_second", "end_offset"), ("committed_per_second", "committed")):
                    now, before = _total(topic, attribute), _total(previous, attribute)
                    if now is not None and before is not None and now >= before:
                        rates[key] = round((now - before) / seconds, 1)
            self._topic_rates = rates
        return {**asdict(topic), **self._topic_rates}

    def _queue_rates(self, queue: QueueStatus) -> dict:
        """Offers and polls per second between the owner's last two readings (None before there are two,
        or across a change of owner, whose counts are its own); kept until the next reading."""
        if queue.read_at is not None and self._previous_queue is not None and \
                queue.read_at == self._previous_queue[1].read_at:
            return self._rates
        previous, self._previous_queue = self._previous_queue, (queue.read_at, queue)
        rates = {"offers_per_second": None, "polls_per_second": None}
        self._rates = rates
        if previous is None or queue.read_at is None or previous[0] is None or queue.read_at <= previous[0] \
                or previous[1].owner != queue.owner:
            return rates
        seconds = queue.read_at - previous[0]
        for key, new, old in (("offers_per_second", queue.offers_total, previous[1].offers_total),
                              ("polls_per_second", queue.polls_total, previous[1].polls_total)):
            if new is not None and old is not None and new >= old:
                rates[key] = round((new - old) / seconds, 1)
        return rates


NO_CLUSTER = ClusterView(members=[], queue=None, logged=None, received=None)


def _with_error(view: ClusterView, error: str) -> ClusterView:
    return ClusterView(view.members, view.queue, view.logged, view.received,
                       error="; ".join(e for e in (view.error, error) if e))


def _total(topic: TopicStatus, attribute: str) -> int | None:
    values = [getattr(p, attribute) for p in topic.partitions]
    if not values or any(v is None for v in values):
        return None
    return sum(values)


def _received_counts(copies: Iterable[CopyStatus]) -> dict[str, int | None]:
    """What each messages copy says it received since it started (its /health consumer check)."""
    counts = {}
    for copy in copies:
        if copy.service == "messages-service" and copy.name:
            detail = (copy.checks.get("consumer") or {}).get("detail")
            counts[copy.name] = detail.get("received") if isinstance(detail, dict) else None
    return counts
