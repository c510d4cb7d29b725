"""logging-service's HTTP face: POST /logging stores {uuid, msg}, GET /logging reads all (or a page)."""

from __future__ import annotations

from flask import Flask, jsonify

from lab_common.cluster import ClusterConnection
from lab_common.errors import BadRequest
from lab_common.openapi import add_openapi
from lab_common.settings import ServiceSettings
from lab_common.web import (
    add_health,
    after_param,
    create_base_app,
    limit_param,
    listing_response,
    request_fields,
    request_id,
    text_field,
)
from logging_service.api import openapi
from logging_service.service import MAX_UUID_LENGTH, MessageLog, MessageStore
from logging_service.settings import LoggingSettings


def create_app(settings: ServiceSettings, *, store: MessageStore, health_checks=None) -> Flask:
    app = create_base_app(__name__, settings)
    message_log = MessageLog(store, settings.instance)
    add_health(app, settings, health_checks or {})
    add_openapi(app, openapi())

    @app.post("/logging")
    def post_message():
        fields = request_fields()
        uuid = text_field(fields, "uuid", "id")  # id and txt: the lab's Task 1 names
        if len(uuid) > MAX_UUID_LENGTH:
            raise BadRequest(f"uuid is longer than {MAX_UUID_LENGTH} characters")
        msg = text_field(fields, "msg", "txt")
        result = message_log.record(uuid, msg, request_id())
        body = {"status": "stored" if result.created else "duplicate", "copy": settings.instance,
                **result.message.to_json()}
        return jsonify(body), 201 if result.created else 200

    @app.get("/logging")
    def get_messages():
        limit = limit_param(default=None)
        after = after_param("the seq of the last message of the previous page")
        if limit is None and after is None:
            return listing_response({"copy": settings.instance}, message_log.messages_as_json())
        limit = limit or 100
        page = message_log.page(after, limit)
        body = {"copy": settings.instance, "count": len(page), "messages": [m.to_json() for m in page],
                "next": str(page[-1].seq) if len(page) >= limit else None}
        return jsonify(body)

    return app


def build(settings: LoggingSettings):
    """The real wiring: the store (the cluster's map through a connection, or this copy's memory); with a gRPC
    port, the gRPC server too (started here, in the serving worker, after the fork)."""
    if settings.logging_store == "memory":
        from logging_service.memory_store import MemoryMessageStore

        store = MemoryMessageStore()
        checks = {"store": lambda: (True, {"kind": "memory", "messages": store.count()})}
        can_store, closers = (lambda: True), []
    else:
        from logging_service.store import HazelcastMessageStore

        connection = ClusterConnection(settings).start()
        store = HazelcastMessageStore(connection, settings.logging_map)
        checks = connection.health_checks()
        can_store, closers = (lambda: connection.connected), [connection.close]

    def close():
        for close_one in closers:
            close_one()

    if settings.grpc_port:
        from logging_service.grpc_api import serve_grpc

        try:
            grpc_server = serve_grpc(settings, MessageLog(store, settings.instance), can_store)
        except BaseException:
            close()
            raise
        checks["grpc"] = lambda: (True, f"serving on {grpc_server.address}")
        closers.insert(0, grpc_server.stop)
    return create_app(settings, store=store, health_checks=checks), close
