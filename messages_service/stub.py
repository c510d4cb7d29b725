"""The messages service as the lab's Task 1 has it: a stub that answers GET /messages with "not implemented
yet" (as JSON, with the listing's fields, so the facade's GET merges it as an empty listing). It consumes no
queue and connects to no cluster."""

from __future__ import annotations

from flask import Flask, jsonify

from lab_common.openapi import add_openapi, document, json_response, operation
from lab_common.settings import ServiceSettings
from lab_common.web import add_health, create_base_app

NOT_IMPLEMENTED = "not implemented yet"
STUB_MESSAGE = "Message-service not implemented yet"  # the lab's own words
STUB_ANSWER = {"type": "object", "required": ["copy", "status", "message", "count", "messages"],
               "properties": {"copy": {"type": "string"}, "status": {"const": NOT_IMPLEMENTED},
                              "message": {"type": "string"}, "count": {"const": 0},
                              "messages": {"type": "array", "maxItems": 0}}}


def stub_answer(instance: str) -> dict:
    return {"copy": instance, "status": NOT_IMPLEMENTED, "message": STUB_MESSAGE, "count": 0, "messages": []}


def create_stub_app(settings: ServiceSettings) -> Flask:
    app = create_base_app(__name__, settings)
    add_health(app, settings, {"stub": lambda: (True, f"GET /messages answers {NOT_IMPLEMENTED!r}")})
    add_openapi(app, document("messages-service (stub)", {"/messages": {"get": operation(
        "the lab's Task 1 stub: says the service is not implemented yet", {200: json_response("the stub", STUB_ANSWER)},
        ())}}))

    @app.get("/messages")
    def get_messages():
        return jsonify(stub_answer(settings.instance))

    return app
