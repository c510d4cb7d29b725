"""A Hazelcast client that is always being (re)connected in the background.

A service starts even when no member is up, answers 503 at once while the cluster is away, and
picks the cluster up again by itself: the client gives up after `hz_connect_timeout` seconds
without members, and the supervisor then builds a new one.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from hazelcast.config import IndexType, IntType
from hazelcast.errors import HazelcastError, OperationTimeoutError, SplitBrainProtectionError
from hazelcast.future import Future
from hazelcast.lifecycle import LifecycleState

import hazelcast
from lab_common.contracts import QUORUM, QUORUM_PROBE_MAP, Index
from lab_common.errors import NoQuorum, Unavailable
from lab_common.settings import HazelcastSettings

log = logging.getLogger(__name__)

BACKUP_ACK_TIMEOUT = 1.5  # seconds; under the facade's 2 s per call to logging
# seconds of silence on a connection before the client closes it: past the 5 s operation bound (hz_invocation_timeout),
# so an operation on a member that hangs is given up by the bound (a 503) before its connection closes
CLIENT_HEARTBEAT_TIMEOUT = 7.0
QUORUM_PROBE_EVERY = 1.0  # seconds: /health probes the cluster at most this often while writes are refused
QUORUM_PROBE_WAIT = 1.0  # seconds a probe waits for its answer (a /health is asked with a 1 s timeout)
LONE_MEMBER_RETRY = 30.0  # seconds: the least time between two clients built away from a member left alone


class NoAnswer(OperationTimeoutError):
    """The cluster did not answer an operation within the invocation timeout: its member hangs (a long
    pause, SIGSTOP) or the cluster is still dropping it. The operation may yet be carried out."""


def answer_within(future: Future, seconds: float, what: str):
    """The future's result, or NoAnswer once `seconds` have passed without one. The client's own
    invocation timeout bounds its retries, not the wait for a member that holds an operation without
    answering; this bounds that wait."""
    if not future.done():
        answered = threading.Event()
        future.add_done_callback(lambda _future: answered.set())
        if not answered.wait(seconds):
            raise NoAnswer(f"{what}: no answer from the cluster within {seconds:g} s")
    return future.result()


class BoundedProxy:
    """A map or queue proxy whose calls answer results, as the client's blocking proxies do, but wait
    for each at most `seconds` (NoAnswer after that)."""

    def __init__(self, proxy, seconds: float):
        self._proxy = proxy
        self._seconds = seconds
        self._calls: dict[str, Callable] = {}

    def __getattr__(self, name: str):
        call = self._calls.get(name)
        if call is None:
            method = getattr(self._proxy, name)
            if not callable(method):
                return method
            what = f"{self._proxy.name}.{name}"

            def call(*args, **kwargs):
                answer = method(*args, **kwargs)
                return answer_within(answer, self._seconds, what) if isinstance(answer, Future) else answer

            self._calls[name] = call
        return call


def refused_by_quorum(err: BaseException | None) -> bool:
    """Whether split-brain protection refused the operation (quorum mode, too few members in touch), as the
    error itself or as its cause."""
    for _ in range(5):  # causes chain a few levels deep at most
        if err is None:
            return False
        if isinstance(err, SplitBrainProtectionError):
            return True
        # the client keeps a server error's cause as its second argument
        cause = err.args[1] if isinstance(err, HazelcastError) and len(err.args) > 1 else None
        err = cause if isinstance(cause, BaseException) else err.__cause__
    return False


class QuorumWatch:
    """Whether the cluster takes writes, as this copy last learnt: a refused write marks it as not; while
    marked, or while the client sees fewer than QUORUM members, a health check probes (at most every `every`
    seconds) with a write that changes nothing: refused, it marks; not refused, it clears. In available mode
    nothing is ever refused."""

    def __init__(self, probe: Callable[[], None], *, members_seen: Callable[[], int] = lambda: QUORUM,
                 on_refused: Callable[[], None] = lambda: None, every: float = QUORUM_PROBE_EVERY,
                 clock: Callable[[], float] = time.monotonic):
        """`on_refused` is called on each refusal this watch learns of, a write's or a probe's."""
        self._probe = probe
        self._members_seen = members_seen
        self._on_refused = on_refused
        self._every = every
        self._clock = clock
        self._refused = False
        self._probed_at = float("-inf")
        self._lock = threading.Lock()

    def refused(self) -> None:
        self._refused = True
        self._on_refused()

    def check(self) -> tuple[bool, str]:
        probe_refused = False
        with self._lock:  # one probe at a time; the others answer from its result
            doubtful = self._refused or self._members_seen() < QUORUM
            if doubtful and self._clock() - self._probed_at >= self._every:
                self._probed_at = self._clock()
                try:
                    self._probe()
                    self._refused = False
                except HazelcastError as err:
                    probe_refused = refused_by_quorum(err)
                    self._refused = self._refused or probe_refused
                except Unavailable:
                    pass  # the cluster is away: the connection's own check says so
            refused = self._refused
        if probe_refused:
            self._on_refused()
        return (False, NoQuorum.text) if refused else (True, "writes accepted")


def add_index(map_proxy, map_name: str, index: Index) -> bool:
    """Create the contract's index on a map (blocking proxy); adding it again is harmless. False when quorum
    mode refused it (adding an index is a write): reads go on without it, and the caller tries again later."""
    index_type = IndexType.SORTED if index.sorted else IndexType.HASH
    try:
        map_proxy.add_index(attributes=[index.attribute], index_type=index_type, name=index.name(map_name))
    except SplitBrainProtectionError:
        return False
    return True


def move_mark(marks, key: str, value: int, *, forward: bool) -> None:
    """Move a mark kept in a map (blocking proxy) to `value` if that is further: larger when `forward`,
    smaller otherwise; never back. Compare-and-set, so copies racing on the same mark are safe."""
    current = marks.put_if_absent(key, value)
    while (current is not None and (value > current if forward else value < current)
           and not marks.replace_if_same(key, current, value)):
        current = marks.get(key)


class ClusterConnection:
    def __init__(self, settings: HazelcastSettings, *, client_factory: Callable[..., Any] = hazelcast.HazelcastClient,
                 confirmed_writes: bool = False, clock: Callable[[], float] = time.monotonic):
        """`confirmed_writes`: a write whose backups are not all acknowledged within BACKUP_ACK_TIMEOUT fails
        (IndeterminateOperationStateError) instead of being answered as made; it may still be on its owner.

        The client connects to the settings' members in their order (the copy's preferred member first) and
        takes its member list and partition table from that first connection."""
        self._settings = settings
        self._clock = clock
        self._confirmed_writes = confirmed_writes
        self._client_factory = client_factory
        self._client = None
        self._link_up = False  # the client's own view; `_connected` also needs the client object built
        self._connected = threading.Event()
        self._client_gone = threading.Event()
        self._closing = threading.Event()
        self._last_error = "not connected yet"
        self._proxies: tuple[object, dict] = (None, {})
        self._membership_listeners: list[Callable[[str, bool], None]] = []
        self._thread = threading.Thread(target=self._supervise, name="hazelcast-supervisor", daemon=True)
        # as the live client sees them; replaced, never changed in place, so other threads read it whole
        self._members: frozenset[str] = frozenset()
        self._tried_last: frozenset[str] = frozenset()  # addresses the next client tries after the others
        self._left_lone_at = float("-inf")
        self._lone_lock = threading.Lock()
        self.quorum = QuorumWatch(self._probe_quorum, members_seen=lambda: len(self._members),
                                  on_refused=self._away_from_a_lone_member)

    def on_membership(self, listener: Callable[[str, bool], None]) -> None:
        """Call `listener(address, joined)` when a member joins or leaves, through every client this
        connection builds (each new client first reports the members it finds as joined). Before start()."""
        self._membership_listeners.append(listener)

    def _membership_event(self, member, joined: bool) -> None:
        address = f"{member.address.host}:{member.address.port}"
        self._members = self._members | {address} if joined else self._members - {address}
        for listener in self._membership_listeners:
            try:
                listener(address, joined)
            except Exception:  # a listener's failure must not reach the client's reactor thread
                log.exception("membership listener failed")

    def start(self) -> ClusterConnection:
        self._thread.start()
        return self

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    @property
    def confirms_writes(self) -> bool:
        """Whether a write counts as made only once every backup has acknowledged it."""
        return self._confirmed_writes

    @property
    def status(self) -> str:
        return "connected" if self.connected else self._last_error

    def health_checks(self) -> dict[str, Callable[[], tuple[bool, str]]]:
        """The /health checks of a service with this connection: the cluster is reachable, and takes writes."""
        return {"hazelcast": lambda: (self.connected, self.status), "quorum": self.quorum.check}

    def unavailable(self, err: HazelcastError, message: str) -> Unavailable:
        """The service's error for a failed cluster operation: NoQuorum when split-brain protection refused
        it (and the quorum check then reports it), else Unavailable with `message`."""
        if refused_by_quorum(err):
            self.quorum.refused()
            return NoQuorum()
        return Unavailable(message)

    def _away_from_a_lone_member(self) -> None:
        """A write was refused while the client follows fewer than QUORUM members. The client takes its member
        list from one member; when the cluster drops that member, it follows it into a cluster of its own
        (alone, it refuses writes) as long as it reaches it: in a bridge partition this host reaches both
        sides. So the client starts over, trying the members it does not see first, and joins the larger
        side if this host reaches it. At most once every LONE_MEMBER_RETRY seconds: where that member is
        really the last one left, each new client costs a moment of the 503s it answers anyway."""
        seen = self._members
        if not seen or len(seen) >= QUORUM or len(self._settings.hz_members) <= len(seen):
            return
        with self._lone_lock:
            now = self._clock()
            if now - self._left_lone_at < LONE_MEMBER_RETRY:
                return
            self._left_lone_at = now
            self._tried_last = seen
        self.start_over(f"split-brain protection refuses writes and the client follows {', '.join(sorted(seen))} "
                        "alone; trying the other members first")

    def _member_order(self) -> list[str]:
        """The settings' members in their order, those to be tried last moved to the end."""
        members = list(self._settings.hz_members)
        return sorted(members, key=lambda address: address in self._tried_last)  # stable

    def _probe_quorum(self) -> None:
        """A write that changes nothing (deleting a key that is never set), refused when writes are."""
        probe = self.proxy("map", QUORUM_PROBE_MAP, blocking=False)
        answer_within(probe.delete("probe"), QUORUM_PROBE_WAIT, "quorum probe")

    def client(self):
        """The live client, or Unavailable straight away (no waiting for a timeout)."""
        client = self._client
        if client is None or not self._connected.is_set():
            raise Unavailable(f"Hazelcast cluster unavailable: {self._last_error}")
        return client

    def proxy(self, kind: str, name: str, *, blocking: bool = True):
        """The proxy of a "map" or "queue" of the live client, built once per client (building one on
        every call costs more than the lookup it saves). Blocking calls answer results, each waited for
        at most the invocation timeout (NoAnswer after that, also when a member holds it without
        answering); the others answer futures, to wait on while other work goes on."""
        client = self.client()
        owner, cache = self._proxies
        if owner is not client:
            cache = {}
            self._proxies = (client, cache)
        found = cache.get((kind, name, blocking))
        if found is None:
            getter = client.get_map if kind == "map" else client.get_queue
            found = getter(name)
            if blocking:
                found = BoundedProxy(found, self.operation_timeout)
            cache[(kind, name, blocking)] = found
        return found

    @property
    def operation_timeout(self) -> float:
        """How long a blocking call waits for the cluster's answer (the client's invocation timeout)."""
        return self._settings.hz_invocation_timeout

    def wait_connected(self, timeout: float) -> bool:
        return self._connected.wait(timeout)

    def start_over(self, why: str) -> None:
        """Shut the live client down; the supervisor builds a new one. The members then roll back the
        transactions the old client left open (a transaction whose coordinating member died is only
        ever rolled back when its client goes), releasing their locks and the queue items they took."""
        client = self._client
        if client is None or self._closing.is_set():
            return
        log.warning("starting the Hazelcast client over: %s", why)
        self._last_error = f"starting over: {why}"
        try:
            client.shutdown()
        except Exception:  # a half-dead client: the supervisor builds a new one all the same
            log.debug("client shutdown failed", exc_info=True)

    def close(self) -> None:
        self._closing.set()
        self._client_gone.set()
        client = self._client
        if client is not None:
            try:
                client.shutdown()
            except Exception:  # shutting down a half-dead client must not stop the service exiting
                log.debug("client shutdown failed", exc_info=True)

    def _supervise(self) -> None:
        backoff = 0.5
        while not self._closing.is_set():
            self._client_gone.clear()
            try:
                self._link_up = False
                self._client = None
                self._members = frozenset()
                self._client = self._client_factory(**self._client_config())
                self._tried_last = frozenset()
                if self._link_up:
                    self._connected.set()
            except Exception as err:
                self._last_error = f"cannot connect to {','.join(self._settings.hz_members)}: {err}"
                log.warning("%s; retrying in %.1fs", self._last_error, backoff)
                self._closing.wait(backoff)
                backoff = min(backoff * 2, 5.0)
                continue
            backoff = 0.5
            log.info("connected to Hazelcast cluster %r", self._settings.hz_cluster_name)
            self._client_gone.wait()
            self._connected.clear()
            if not self._closing.is_set():
                log.warning("Hazelcast client shut down (%s); building a new one", self._last_error)

    def _on_state(self, state: str) -> None:
        if state == LifecycleState.CONNECTED:
            self._link_up = True
            if self._client is not None:
                self._connected.set()
        elif state == LifecycleState.DISCONNECTED:
            self._link_up = False
            self._last_error = "lost the connection to the cluster"
            self._connected.clear()
        elif state == LifecycleState.SHUTDOWN:
            self._link_up = False
            self._last_error = "client shut down after losing the cluster"
            self._connected.clear()
            self._client_gone.set()

    def _client_config(self) -> dict:
        s = self._settings
        return {
            "cluster_name": s.hz_cluster_name,
            "cluster_members": self._member_order(),
            "shuffle_member_list": False,  # each copy's list starts with its own member (see __init__)
            "cluster_connect_timeout": s.hz_connect_timeout,
            "invocation_timeout": s.hz_invocation_timeout,
            "connection_timeout": min(s.hz_connect_timeout, 2.0),
            "heartbeat_interval": 1.0,
            # the client learns members and partitions from one connection: if a cut silences it, the client
            # moves to another member after this, soon after the members drop the host (hazelcast/member.yaml)
            "heartbeat_timeout": CLIENT_HEARTBEAT_TIMEOUT,
            # A write is answered once its backups are acknowledged, or after this long without them (the
            # write is then on its owner and the backups that did answer): a member that hangs holding a
            # backup costs each write this, not the whole invocation timeout (default 5 s).
            "operation_backup_timeout": BACKUP_ACK_TIMEOUT,
            "fail_on_indeterminate_operation_state": self._confirmed_writes,
            "lifecycle_listeners": [self._on_state],
            "membership_listeners": [(lambda member: self._membership_event(member, True),
                                      lambda member: self._membership_event(member, False))],
            "statistics_enabled": False,
            # Python ints go over the wire as Java longs (ids and microsecond timestamps exceed 32 bits)
            "default_int_type": IntType.LONG,
        }
