"""facade-service's HTTP face: POST /facade takes a message, GET /facade reads everything back."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from flask import Flask, Response, jsonify, request, send_from_directory

from facade_service.api import openapi
from facade_service.service import Facade, RetryWindow
from facade_service.settings import FacadeSettings
from facade_service.status import Status
from lab_common.contracts import NO_QUEUE
from lab_common.errors import BadRequest, NotFound
from lab_common.openapi import add_openapi
from lab_common.settings import ServiceSettings
from lab_common.web import (
    add_health,
    after_param,
    create_base_app,
    health_report,
    limit_param,
    request_fields,
    request_id,
    text_field,
)

MAX_IDEMPOTENCY_KEY = 128
MAX_WAIT_DIGITS = 6  # Prefer: wait=N beyond 999999 s is not a preference, it is noise
STATIC = Path(__file__).with_name("static")
STATUS_ASSETS = {"status.js", "status.css"}


def create_app(settings: ServiceSettings, *, facade: Facade, health_checks=None, status: Status | None = None) -> Flask:
    app = create_base_app(__name__, settings)
    add_health(app, settings, health_checks or {})
    add_openapi(app, openapi())
    if status is not None:
        add_status_page(app, status)

    @app.post("/facade")
    @app.post("/")
    def post_message():
        key = request.headers.get("Idempotency-Key")
        if key is not None and not (0 < len(key.strip()) <= MAX_IDEMPOTENCY_KEY and key.isprintable()):
            raise BadRequest(f"Idempotency-Key must be 1-{MAX_IDEMPOTENCY_KEY} printable characters")
        msg = text_field(request_fields(), "msg", "txt")
        wait = preferred_wait(request.headers.getlist("Prefer"))
        posted = facade.post(msg, key.strip() if key else None, request_id(), wait)
        body = {"uuid": posted.uuid, "msg": posted.msg, "logged_by": posted.logged_by}
        if posted.replayed:
            body["replayed"] = True
        response = jsonify(body)
        if wait is not None and facade.retry_window.most > 0:
            response.headers["Preference-Applied"] = f"wait={facade.retry_window.for_post(wait):g}"
        return response, 201

    @app.get("/facade")
    @app.get("/")
    def get_messages():
        limit = limit_param(default=None, maximum=1000)
        after = after_param("the 'next' value of the previous page")
        if limit is None and after is None:
            return Response(facade.read(), mimetype="application/json")
        return jsonify(facade.read_page(limit or 100, None if after is None else str(after)))

    return app


def preferred_wait(prefer_headers: list[str]) -> float | None:
    """The `wait` preference of the Prefer headers (RFC 7240: `Prefer: wait=30`), in whole seconds; None
    without one. A preference not understood is ignored, not refused, as the RFC says."""
    for preference in ",".join(prefer_headers).split(","):
        name, _, value = preference.split(";")[0].partition("=")
        if name.strip().lower() == "wait":
            value = value.strip().strip('"')
            return float(value) if value.isascii() and value.isdigit() and len(value) <= MAX_WAIT_DIGITS else None
    return None


def add_status_page(app: Flask, status: Status) -> None:
    """GET /status: the page (its script and style served from here too: it works offline);
    GET /status.json: what it shows."""

    @app.get("/status")
    def status_page():
        return send_from_directory(STATIC, "status.html")

    @app.get("/status/<asset>")
    def status_asset(asset: str):
        if asset not in STATUS_ASSETS:
            raise NotFound(f"no status page asset {asset!r}", known=sorted(STATUS_ASSETS))
        return send_from_directory(STATIC, asset)

    @app.get("/status.json")
    def status_json():
        response = jsonify(status.snapshot())
        response.headers["Cache-Control"] = "no-store"
        return response


def build(settings: FacadeSettings):
    """The real wiring: discovery, pooled HTTP clients for logging and messages, the queue: the cluster's, a
    Kafka topic (queue=kafka), or none (queue=none); a Hazelcast client unless hazelcast=false."""
    from facade_service.adapters import HazelcastQueue, LoggingClient, MessagesClient, NoQueue
    from facade_service.status_adapters import HealthProbe
    from lab_common.discovery_factory import make_discovery
    from lab_common.failover import CopyBreakers
    from lab_common.http import HttpPool, ServiceClient

    http = HttpPool(size=settings.threads * 2)
    discovery = make_discovery(settings, http)
    breakers = CopyBreakers("logging-service", fail_max=settings.breaker_fail_max,
                            reset_timeout=settings.breaker_reset_timeout)

    def client(service: str, breakers: CopyBreakers | None = None) -> ServiceClient:
        return ServiceClient(service, discovery, http, timeout=settings.http_timeout,
                             attempts=settings.http_attempts, breakers=breakers)

    logging_client = LoggingClient(client("logging-service", breakers))
    closers = [http.clear]
    if settings.logging_transport == "grpc":  # the POST's log call over gRPC, its channels made here: after the fork
        from facade_service.grpc_logging import GrpcLoggingClient
        from lab_common.contracts import LOGGING_GRPC_SERVICE
        from lab_common.failover import Failover

        breakers = CopyBreakers(LOGGING_GRPC_SERVICE, fail_max=settings.breaker_fail_max,
                                reset_timeout=settings.breaker_reset_timeout)  # /health shows the ones in use
        failover = Failover(LOGGING_GRPC_SERVICE, discovery, attempts=settings.http_attempts, breakers=breakers)
        logging_client = GrpcLoggingClient(failover, logging_client, timeout=settings.http_timeout)
        closers.insert(0, logging_client.close)
    checks, cluster_view, connection = {}, None, None
    if settings.hazelcast:  # the queue's, and the status page's
        from facade_service.status_adapters import HazelcastClusterView
        from lab_common.cluster import ClusterConnection

        connection = ClusterConnection(settings).start()
        closers.insert(0, connection.close)
        checks = (connection.health_checks() if settings.queue != NO_QUEUE
                  else {"hazelcast": cluster_check(connection, needed=False)})
        cluster_view = HazelcastClusterView(
            connection, tuple(sorted(settings.hz_members, key=_member_order)), http,
            logging_map=settings.logging_map, received_map=settings.received_map,
            queue=None if settings.queue == NO_QUEUE else settings.messages_queue)
    topic, queue = None, NoQueue()
    if settings.queue == "kafka":
        from facade_service.adapters import KafkaQueue
        from facade_service.kafka_status import KafkaTopicView
        from lab_common.kafka import AcknowledgedProducer, broker_check, inspector, metadata_client, producer_config

        producer = AcknowledgedProducer(producer_config(settings), timeout=settings.kafka_timeout)
        queue = KafkaQueue(producer, settings.kafka_topic)
        checks["kafka"] = broker_check(metadata_client(settings), settings.kafka_topic)
        group_reader = inspector(settings, settings.kafka_group)
        topic = KafkaTopicView(group_reader, settings.kafka_topic, settings.kafka_group)
        closers[:0] = [producer.close, group_reader.close]
    elif settings.queue == "hazelcast":
        queue = HazelcastQueue(connection, settings.messages_queue)
    facade = Facade(
        logging=logging_client,
        messages=MessagesClient(client("messages-service")),
        queue=queue,
        retry_window=RetryWindow(default=settings.retry_window, most=settings.retry_window_max),
    )
    checks |= {
        "discovery": lambda: (True, discovery.status()),
        "logging-breakers": breakers_check(breakers),
    }
    status = Status(
        cluster_view,
        HealthProbe(_copy_targets(settings, http), http, own_base_url=settings.base_url,
                    own_health=lambda: health_report(settings, checks)),
        facade.recent,
        topic=topic,
    )

    def close():
        for close_one in closers:
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


def _copy_targets(settings: FacadeSettings, http):
    from facade_service.status_adapters import consul_targets, registry_targets

    if settings.discovery == "consul":
        from lab_common.consul_support import agent

        return consul_targets(agent(settings, timeout=settings.http_timeout))
    return registry_targets(settings.config_server, http)
