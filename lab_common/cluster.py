"""A Hazelcast client that is always being (re)connected in the background.

A service starts even when no member is up, answers 503 at once while the cluster is away, and
picks the cluster up again by itself: the client gives up after `hz_connect_timeout` seconds
without members, and the supervisor then builds a new one.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from hazelcast.config import IndexType, IntType
from hazelcast.errors import OperationTimeoutError
from hazelcast.future import Future
from hazelcast.lifecycle import LifecycleState

import hazelcast
from lab_common import hazelcast_fixes
from lab_common.contracts import Index
from lab_common.errors import Unavailable
from lab_common.settings import HazelcastSettings

log = logging.getLogger(__name__)

BACKUP_ACK_TIMEOUT = 1.5  # seconds; under the facade's 2 s per call to logging

hazelcast_fixes.apply()


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


def add_index(map_proxy, map_name: str, index: Index) -> None:
    """Create the contract's index on a map (blocking proxy); adding it again is harmless."""
    index_type = IndexType.SORTED if index.sorted else IndexType.HASH
    map_proxy.add_index(attributes=[index.attribute], index_type=index_type, name=index.name(map_name))


def move_mark(marks, key: str, value: int, *, forward: bool) -> None:
    """Move a mark kept in a map (blocking proxy) to `value` if that is further: larger when `forward`,
    smaller otherwise; never back. Compare-and-set, so copies racing on the same mark are safe."""
    current = marks.put_if_absent(key, value)
    while (current is not None and (value > current if forward else value < current)
           and not marks.replace_if_same(key, current, value)):
        current = marks.get(key)


class ClusterConnection:
    def __init__(self, settings: HazelcastSettings, *, client_factory: Callable[..., Any] = hazelcast.HazelcastClient):
        self._settings = settings
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

    def on_membership(self, listener: Callable[[str, bool], None]) -> None:
        """Call `listener(address, joined)` when a member joins or leaves, through every client this
        connection builds (each new client first reports the members it finds as joined). Before start()."""
        self._membership_listeners.append(listener)

    def _membership_event(self, member, joined: bool) -> None:
        address = f"{member.address.host}:{member.address.port}"
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
    def status(self) -> str:
        return "connected" if self.connected else self._last_error

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
                self._client = self._client_factory(**self._client_config())
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
            "cluster_members": list(s.hz_members),
            "cluster_connect_timeout": s.hz_connect_timeout,
            "invocation_timeout": s.hz_invocation_timeout,
            "connection_timeout": min(s.hz_connect_timeout, 2.0),
            "heartbeat_interval": 1.0,
            "heartbeat_timeout": 10.0,
            # A write is answered once its backups are acknowledged, or after this long without them (the
            # write is then on its owner and the backups that did answer): a member that hangs holding a
            # backup costs each write this, not the whole invocation timeout (default 5 s).
            "operation_backup_timeout": BACKUP_ACK_TIMEOUT,
            "lifecycle_listeners": [self._on_state],
            "membership_listeners": [(lambda member: self._membership_event(member, True),
                                      lambda member: self._membership_event(member, False))],
            "statistics_enabled": False,
            # Python ints go over the wire as Java longs (ids and microsecond timestamps exceed 32 bits)
            "default_int_type": IntType.LONG,
        }
