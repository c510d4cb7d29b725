"""gRPC plumbing shared by the side that serves (logging-service) and the side that calls (the facade): the
server and channel options, the table from the services' errors to gRPC status codes, and the standard
health service (grpc.health.v1) answering from whether the copy can do its work.

Servers and channels are created in the serving worker, after the fork (docs/serving.md): never at import.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from lab_common.errors import BadRequest, NoQuorum, PayloadTooLarge, ServiceError, Unavailable
from lab_common.settings import GrpcServerSettings

log = logging.getLogger(__name__)

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING
HEALTH_PERIOD = 0.5  # seconds between two looks at the store for the Watch callers (a Check looks itself)
STOP_GRACE = 2.0  # seconds calls under way get at shutdown: the facade's deadline per call

# A service's error -> the status its gRPC answer carries (lab_common.errors: the same errors as HTTP codes);
# the first kind that matches wins, so NoQuorum comes before the Unavailable it is a case of
STATUS_OF_ERROR: dict[type[ServiceError], grpc.StatusCode] = {
    BadRequest: grpc.StatusCode.INVALID_ARGUMENT,
    NoQuorum: grpc.StatusCode.FAILED_PRECONDITION,
    PayloadTooLarge: grpc.StatusCode.RESOURCE_EXHAUSTED,
    Unavailable: grpc.StatusCode.UNAVAILABLE,
}

# Reconnect soon after a copy comes back: gRPC's own backoff grows to 120 s, and while a channel waits
# to reconnect every call on it fails at once (the caller then fails over to another copy).
CHANNEL_OPTIONS = [
    ("grpc.initial_reconnect_backoff_ms", 100),
    ("grpc.min_reconnect_backoff_ms", 100),
    ("grpc.max_reconnect_backoff_ms", 1000),
]


def status_of(error: ServiceError) -> grpc.StatusCode:
    return next((code for kind, code in STATUS_OF_ERROR.items() if isinstance(error, kind)),
                grpc.StatusCode.INTERNAL)


class StoreHealth(health.HealthServicer):
    """grpc.health.v1 for a copy: the server ("") and each named service are SERVING only while
    `can_store()` says the copy can do its work, NOT_SERVING otherwise. A Check answers from a fresh look;
    Watch callers hear of a change within HEALTH_PERIOD once `watch()` runs."""

    def __init__(self, can_store: Callable[[], bool], services: Sequence[str]):
        super().__init__()
        self._can_store = can_store
        self._services = ("", *services)
        self._serving: bool | None = None
        self._refresh_lock = threading.Lock()
        self._stop = threading.Event()
        self.refresh()

    def refresh(self) -> bool:
        """Look at the store; tell every name's watchers when that changed. Answers whether it serves."""
        with self._refresh_lock:
            serving = bool(self._can_store())
            if serving != self._serving:
                self._serving = serving
                for name in self._services:
                    self.set(name, SERVING if serving else NOT_SERVING)
            return serving

    def Check(self, request, context):  # the name grpc.health.v1 gives it
        self.refresh()
        return super().Check(request, context)

    def watch(self, period: float = HEALTH_PERIOD) -> StoreHealth:
        threading.Thread(target=self._watch, args=(period,), name="grpc-health", daemon=True).start()
        return self

    def _watch(self, period: float) -> None:
        while not self._stop.wait(period):
            self.refresh()

    def stop(self) -> None:
        """NOT_SERVING for good: the copy is going away."""
        self._stop.set()
        self.enter_graceful_shutdown()


class GrpcServer:
    """A started grpc.server on the settings' host and gRPC port, with the health service added."""

    def __init__(self, settings: GrpcServerSettings, add_services: Callable[[grpc.Server], None], *,
                 can_store: Callable[[], bool], services: Sequence[str]):
        self._server = grpc.server(
            ThreadPoolExecutor(max_workers=settings.threads, thread_name_prefix="grpc"),
            options=[
                ("grpc.so_reuseport", 0),  # a second server on a taken port fails instead of sharing it
                ("grpc.max_receive_message_length", settings.max_body_bytes),  # as HTTP: RESOURCE_EXHAUSTED
            ],
        )
        add_services(self._server)
        self.health = StoreHealth(can_store, services)
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self._server)
        port = self._server.add_insecure_port(settings.grpc_address)  # RuntimeError when the port is taken
        self.address = f"{settings.host}:{port}"  # the port given, or the one the system chose for port 0

    def start(self) -> GrpcServer:
        self._server.start()
        self.health.watch()
        log.info("serving gRPC on %s", self.address)
        return self

    def stop(self, grace: float = STOP_GRACE) -> None:
        self.health.stop()
        self._server.stop(grace).wait()


class Channels:
    """One channel and stub per target (host:port), made on first use and kept; thread-safe.

    A channel whose connection failed waits out gRPC's reconnect backoff (up to the options' maximum) in
    TRANSIENT_FAILURE, and every call on it fails at once meanwhile, even after the copy came back: a copy
    restarted a moment ago would be passed over, and with every copy restarted a POST would be answered
    503. So a call asks for the target's stub through `stub()`, which swaps a channel in that state for a
    fresh one: a fresh channel connects on its first call, and that call waits for the attempt's outcome
    (a refused connection to a copy still down fails it within milliseconds). Each channel has subchannels
    of its own: from gRPC's process-wide pool a fresh channel could take over the failed one's subchannel,
    backoff and all, while the old channel is still being closed."""

    def __init__(self, stub_class: Callable[[grpc.Channel], object],
                 options: Sequence[tuple[str, int]] = CHANNEL_OPTIONS):
        self._stub_class = stub_class
        self._options = [*options, ("grpc.use_local_subchannel_pool", 1)]
        self._open: dict[str, _Channel] = {}
        self._lock = threading.Lock()

    def stub(self, target: str):
        found = self._open.get(target)
        if found is None or found.failed:
            with self._lock:
                current = self._open.get(target)
                if current is found:  # not swapped by another call meanwhile
                    if found is not None:
                        found.close()  # in TRANSIENT_FAILURE it carries no call that could still succeed
                    current = self._open[target] = _Channel(target, self._options, self._stub_class)
                found = current
        return found.stub

    def state(self, target: str) -> grpc.ChannelConnectivity | None:
        """The connectivity gRPC last reported for the target's channel (it tells it on a thread of its own,
        a moment after the change); None before the first call."""
        found = self._open.get(target)
        return None if found is None else found.state

    def close(self) -> None:
        with self._lock:
            channels, self._open = self._open, {}
        for channel in channels.values():
            channel.close()


class _Channel:
    """A channel, its stub, and the connectivity state gRPC last reported for it."""

    def __init__(self, target: str, options: list, stub_class: Callable[[grpc.Channel], object]):
        self._channel = grpc.insecure_channel(target, options=options)
        self.stub = stub_class(self._channel)
        self._state = grpc.ChannelConnectivity.IDLE
        self._channel.subscribe(self._changed, try_to_connect=False)

    def _changed(self, state: grpc.ChannelConnectivity) -> None:  # on a gRPC thread
        self._state = state

    @property
    def state(self) -> grpc.ChannelConnectivity:
        return self._state

    @property
    def failed(self) -> bool:
        return self._state is grpc.ChannelConnectivity.TRANSIENT_FAILURE

    def close(self) -> None:
        self._channel.unsubscribe(self._changed)
        self._channel.close()
