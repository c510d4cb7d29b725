"""logging-service's composition root: the store chosen from the settings (a table of factories: the
cluster's map, or this copy's memory), and with a gRPC port the gRPC server beside the HTTP routes
(app.py). Built in the server's worker, after the fork (lab_common.service_main)."""

from __future__ import annotations

from collections.abc import Callable

from lab_common.discovery_factory import findable
from logging_service.app import create_app
from logging_service.service import MessageLog, MessageStore
from logging_service.settings import LoggingSettings


class Store:
    """A store as the composition root needs it: the port, /health's checks, whether it can take a write
    now (gRPC's answer), what to close."""

    def __init__(self, store: MessageStore, checks: dict, can_store: Callable[[], bool],
                 closers: list[Callable[[], None]]):
        self.store, self.checks, self.can_store, self.closers = store, checks, can_store, closers


def hazelcast_store(settings: LoggingSettings) -> Store:
    from lab_common import hazelcast_fixes
    from lab_common.cluster import ClusterConnection
    from logging_service.adapters.hazelcast import HazelcastMessageStore

    hazelcast_fixes.apply()
    # Quorum mode: a message is answered as stored only once every backup holds it (logging_service.adapters.
    # hazelcast); it is the record redelivery works from, so the facade's queue offer may keep the default.
    connection = ClusterConnection(settings, confirmed_writes=settings.hz_consistency == "quorum").start()
    return Store(HazelcastMessageStore(connection, settings.logging_map), connection.health_checks(),
                 lambda: connection.connected, [connection.close])


def memory_store(settings: LoggingSettings) -> Store:
    from logging_service.adapters.memory import MemoryMessageStore

    store = MemoryMessageStore()
    return Store(store, {"store": lambda: (True, {"kind": "memory", "messages": store.count()})}, lambda: True, [])


STORES: dict[str, Callable[[LoggingSettings], Store]] = {"hazelcast": hazelcast_store, "memory": memory_store}


@findable
def build(settings: LoggingSettings):
    """The app and its close(): the store the settings name; with a gRPC port, the gRPC server too (started
    here, in the serving worker, after the fork)."""
    chosen = STORES[settings.logging_store](settings)
    closers, checks = chosen.closers, chosen.checks

    def close():
        for close_one in closers:
            close_one()

    if settings.grpc_port:
        from logging_service.adapters.grpc import serve_grpc

        try:
            grpc_server = serve_grpc(settings, MessageLog(chosen.store, settings.instance), chosen.can_store)
        except BaseException:
            close()
            raise
        checks["grpc"] = lambda: (True, f"serving on {grpc_server.address}")
        closers.insert(0, grpc_server.stop)
    return create_app(settings, store=chosen.store, health_checks=checks), close
