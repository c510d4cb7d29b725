"""facade-service's composition root: the one place that knows which adapters exist. It picks the logging
transport, the queue and the discovery from the settings (each a table of factories below), builds the
Facade and the status page on them and hands both to the routes (app.py), which know none of it.

Built in the server's worker, after the fork (lab_common.service_main), so the adapters' imports are here."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from facade_service.app import create_app
from facade_service.service import Facade, LoggingPort, QueuePort, RetryWindow
from facade_service.settings import FacadeSettings
from facade_service.status import Status
from lab_common.contracts import NO_QUEUE
from lab_common.discovery_factory import findable
from lab_common.failover import CopyBreakers
from lab_common.web import health_report

Check = Callable[[], tuple[bool, object]]


@dataclass
class Wiring:
    """What the factories share and add to: the settings, the pooled HTTP client and the discovery, the
    cluster connection (None without Hazelcast), /health's checks and what to close on the way out (first
    added, last closed)."""

    settings: FacadeSettings
    http: object
    discovery: object
    connection: object | None = None
    checks: dict[str, Check] = field(default_factory=dict)
    closers: list[Callable[[], None]] = field(default_factory=list)

    def breakers(self, service: str) -> CopyBreakers:
        return CopyBreakers(service, fail_max=self.settings.breaker_fail_max,
                            reset_timeout=self.settings.breaker_reset_timeout)

    def client(self, service: str, breakers: CopyBreakers | None = None):
        from lab_common.http import ServiceClient

        s = self.settings
        return ServiceClient(service, self.discovery, self.http, timeout=s.http_timeout, attempts=s.http_attempts,
                             breakers=breakers)


# --- the logging transport: answers the port and the breakers /health shows ---------------------------------

def http_logging(w: Wiring) -> tuple[LoggingPort, CopyBreakers]:
    from facade_service.adapters.http import LoggingClient

    breakers = w.breakers("logging-service")
    return LoggingClient(w.client("logging-service", breakers)), breakers


def grpc_logging(w: Wiring) -> tuple[LoggingPort, CopyBreakers]:
    """The POST's log call over gRPC (its channels made here: after the fork); the HTTP client stays for the
    rest of what the facade asks logging."""
    from facade_service.adapters.grpc import GrpcLoggingClient
    from lab_common.contracts import LOGGING_GRPC_SERVICE
    from lab_common.failover import Failover

    over_http, _ = http_logging(w)
    breakers = w.breakers(LOGGING_GRPC_SERVICE)
    failover = Failover(LOGGING_GRPC_SERVICE, w.discovery, attempts=w.settings.http_attempts, breakers=breakers)
    client = GrpcLoggingClient(failover, over_http, timeout=w.settings.http_timeout)
    w.closers.append(client.close)
    return client, breakers


LOGGING_TRANSPORTS: dict[str, Callable[[Wiring], tuple[LoggingPort, CopyBreakers]]] = {
    "http": http_logging,
    "grpc": grpc_logging,
}


# --- the queue: answers the port and, in Kafka mode, the topic's view for the status page --------------------

def hazelcast_queue(w: Wiring) -> tuple[QueuePort, object | None]:
    from facade_service.adapters.hazelcast import HazelcastQueue

    return HazelcastQueue(w.connection, w.settings.messages_queue), None


def kafka_queue(w: Wiring) -> tuple[QueuePort, object | None]:
    from facade_service.adapters.kafka import KafkaQueue, KafkaTopicView
    from lab_common.kafka import AcknowledgedProducer, broker_check, inspector, metadata_client, producer_config

    s = w.settings
    producer = AcknowledgedProducer(producer_config(s), timeout=s.kafka_timeout)
    w.checks["kafka"] = broker_check(metadata_client(s), s.kafka_topic)
    group_reader = inspector(s, s.kafka_group)
    w.closers += [group_reader.close, producer.close]
    return KafkaQueue(producer, s.kafka_topic), KafkaTopicView(group_reader, s.kafka_topic, s.kafka_group)


def no_queue(w: Wiring) -> tuple[QueuePort, object | None]:
    from facade_service.adapters.none import NoQueue

    return NoQueue(), None


QUEUES: dict[str, Callable[[Wiring], tuple[QueuePort, object | None]]] = {
    "hazelcast": hazelcast_queue,
    "kafka": kafka_queue,
    NO_QUEUE: no_queue,
}


# --- the cluster: the queue's, and the status page's ----------------------------------------------------------

def connect_cluster(w: Wiring):
    """Connect to the cluster; answers the status page's view of it (None with hazelcast=false)."""
    if not w.settings.hazelcast:
        return None
    from facade_service.adapters.status import HazelcastClusterView
    from lab_common import hazelcast_fixes
    from lab_common.cluster import ClusterConnection

    hazelcast_fixes.apply()
    s = w.settings
    w.connection = ClusterConnection(s).start()
    w.closers.append(w.connection.close)
    w.checks |= (w.connection.health_checks() if s.queue != NO_QUEUE
                 else {"hazelcast": cluster_check(w.connection, needed=False)})
    return HazelcastClusterView(
        w.connection, tuple(sorted(s.hz_members, key=_member_order)), w.http,
        logging_map=s.logging_map, received_map=s.received_map, queue=None if s.queue == NO_QUEUE else s.messages_queue)


def copy_targets(w: Wiring):
    """Where the status page finds every copy to ask for its health: Consul's catalogue, or the registry."""
    from facade_service.adapters.status import consul_targets, registry_targets

    if w.settings.discovery == "consul":
        from lab_common.consul_support import agent

        return consul_targets(agent(w.settings, timeout=w.settings.http_timeout))
    return registry_targets(w.settings.config_server, w.http)


@findable
def build(settings: FacadeSettings):
    """The app and its close(), every adapter chosen from the settings."""
    from facade_service.adapters.http import MessagesClient
    from facade_service.adapters.status import HealthProbe
    from lab_common.discovery_factory import make_discovery
    from lab_common.http import HttpPool

    http = HttpPool(size=settings.threads * 2)
    w = Wiring(settings, http, make_discovery(settings, http), closers=[http.clear])
    logging_port, breakers = LOGGING_TRANSPORTS[settings.logging_transport](w)
    cluster_view = connect_cluster(w)
    queue, topic = QUEUES[settings.queue](w)
    facade = Facade(
        logging=logging_port,
        messages=MessagesClient(w.client("messages-service")),
        queue=queue,
        retry_window=RetryWindow(default=settings.retry_window, most=settings.retry_window_max),
    )
    checks = w.checks | {
        "discovery": lambda: (True, w.discovery.status()),
        "logging-breakers": breakers_check(breakers),
        "logging-pace": lambda: (True, logging_port.pace.report()),  # seconds a log call took lately, per copy
    }
    status = Status(
        cluster_view,
        HealthProbe(copy_targets(w), http, own_base_url=settings.base_url,
                    own_health=lambda: health_report(settings, checks)),
        facade.recent,
        topic=topic,
    )

    def close():
        for close_one in reversed(w.closers):
            close_one()

    return create_app(settings, facade=facade, health_checks=checks, status=status), close


def cluster_check(connection, *, needed: bool) -> Callable[[], tuple[bool, str]]:
    """/health's view of the Hazelcast client. With no queue it serves the status page alone, and the facade
    is healthy without it."""

    def check() -> tuple[bool, str]:
        if needed:
            return connection.connected, connection.status
        return True, f"{connection.status} (for the status page only)"

    return check


def breakers_check(breakers) -> Callable[[], tuple[bool, dict]]:
    """/health's view of the logging copies' breakers. It never fails the facade's health: an open breaker
    is logging's trouble, and the facade still answers (a POST then probes a copy, or is a 503)."""

    def check() -> tuple[bool, dict]:
        copies = breakers.report()
        return True, {"open": sum(1 for c in copies.values() if c["state"] == "open"), "copies": copies}

    return check


def _member_order(address: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    return host, int(port)
