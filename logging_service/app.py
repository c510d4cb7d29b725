"""logging-service's HTTP face: POST /logging stores {uuid, msg}, GET /logging reads all (or a page)."""

from __future__ import annotations

from flask import Flask, jsonify

from lab_common.contracts import Logged
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
        answer = Logged(result.message, duplicate=not result.created, copy=settings.instance)
        return jsonify(answer.to_json()), 201 if result.created else 200

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
