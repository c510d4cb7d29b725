"""facade-service's HTTP face: POST /facade takes a message, GET /facade reads everything back."""

from __future__ import annotations

from pathlib import Path

from flask import Flask, Response, jsonify, request, send_from_directory

from facade_service.api import openapi
from facade_service.service import Facade
from facade_service.settings import FacadeSettings
from facade_service.status import Status
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
        posted = facade.post(msg, key.strip() if key else None, request_id())
        body = {"uuid": posted.uuid, "msg": posted.msg, "logged_by": posted.logged_by}
        if posted.replayed:
            body["replayed"] = True
        return jsonify(body), 201

    @app.get("/facade")
    @app.get("/")
    def get_messages():
        limit = limit_param(default=None, maximum=1000)
        after = after_param("the 'next' value of the previous page")
        if limit is None and after is None:
            return Response(facade.read(), mimetype="application/json")
        return jsonify(facade.read_page(limit or 100, None if after is None else str(after)))

    return app


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
    """The real wiring: discovery, pooled HTTP clients for logging and messages, the cluster queue."""
    from facade_service.adapters import HazelcastQueue, LoggingClient, MessagesClient
    from facade_service.status_adapters import HazelcastClusterView, HealthProbe
    from lab_common.cluster import ClusterConnection
    from lab_common.discovery_factory import make_discovery
    from lab_common.http import HttpPool, ServiceClient

    http = HttpPool(size=settings.threads * 2)
    discovery = make_discovery(settings, http)
    connection = ClusterConnection(settings).start()

    def client(service: str) -> ServiceClient:
        return ServiceClient(service, discovery, http, timeout=settings.http_timeout,
                             attempts=settings.http_attempts)

    logging_client = LoggingClient(client("logging-service"))
    closers = [connection.close, http.clear]
    if settings.logging_transport == "grpc":  # the POST's log call over gRPC, its channels made here: after the fork
        from facade_service.grpc_logging import GrpcLoggingClient
        from lab_common.contracts import LOGGING_GRPC_SERVICE
        from lab_common.failover import Failover

        logging_client = GrpcLoggingClient(Failover(LOGGING_GRPC_SERVICE, discovery, attempts=settings.http_attempts),
                                           logging_client, timeout=settings.http_timeout)
        closers.insert(0, logging_client.close)
    facade = Facade(
        logging=logging_client,
        messages=MessagesClient(client("messages-service")),
        queue=HazelcastQueue(connection, settings.messages_queue),
    )
    checks = {
        "hazelcast": lambda: (connection.connected, connection.status),
        "discovery": lambda: (True, discovery.status()),
    }
    status = Status(
        HazelcastClusterView(connection, tuple(sorted(settings.hz_members, key=_member_order)), http,
                             logging_map=settings.logging_map, received_map=settings.received_map,
                             queue=settings.messages_queue),
        HealthProbe(_copy_targets(settings, http), http, own_base_url=settings.base_url,
                    own_health=lambda: health_report(settings, checks)),
        facade.recent,
    )

    def close():
        for close_one in closers:
            close_one()

    return create_app(settings, facade=facade, health_checks=checks, status=status), close


def _member_order(address: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    return host, int(port)


def _copy_targets(settings: FacadeSettings, http):
    from facade_service.status_adapters import consul_targets, registry_targets

    if settings.discovery == "consul":
        from lab_common.consul_support import agent

        return consul_targets(agent(settings, timeout=settings.http_timeout))
    return registry_targets(settings.config_server, http)
