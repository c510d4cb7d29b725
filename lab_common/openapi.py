"""OpenAPI 3.1 descriptions of the services' HTTP APIs, served at GET /openapi.json.

Each service states its own routes (its `api.py`); what every service answers the same way (/health,
/live, /metrics, /openapi.json, the error shape, X-Request-Id) is stated here once. A unit test holds each
description to the routes its Flask app really has.
"""

from __future__ import annotations

import re
from typing import Any

from flask import Flask, jsonify

from lab_common.contracts import REQUEST_ID_HEADER

ERROR_CODES = {400: "bad_request", 404: "not_found", 405: "method_not_allowed", 409: "conflict",
               413: "payload_too_large", 415: "unsupported_media_type", 503: "unavailable"}
WHY = {400: "the request is malformed; nothing was stored", 404: "no such thing",
       409: "the idempotency key was used for another message", 413: "the body is over the size limit",
       415: "the body is neither JSON nor a form", 503: "a dependency (the cluster, every copy) is unavailable"}


def ref(schema: str) -> dict:
    return {"$ref": f"#/components/schemas/{schema}"}


def json_response(description: str, schema: dict) -> dict:
    return {"description": description, "headers": {REQUEST_ID_HEADER: {"$ref": "#/components/headers/RequestId"}},
            "content": {"application/json": {"schema": schema}}}


def operation(summary: str, ok: dict[int, dict], errors: tuple[int, ...] = (), *, parameters: list | None = None,
              body: dict | None = None) -> dict:
    """One route's description: its successful answers and the error statuses it can give."""
    responses = {str(status): answer for status, answer in ok.items()}
    responses |= {str(status): json_response(WHY[status], ref("Error")) for status in errors}
    described: dict[str, Any] = {"summary": summary,
                                 "parameters": [{"$ref": "#/components/parameters/RequestId"}, *(parameters or [])],
                                 "responses": responses}
    if body is not None:
        described["requestBody"] = body
    return described


def query(name: str, description: str, schema: dict) -> dict:
    return {"name": name, "in": "query", "required": False, "description": description, "schema": schema}


def document(service: str, paths: dict[str, dict[str, dict]], schemas: dict[str, dict] | None = None) -> dict:
    """The service's description: its own paths plus what every service answers."""
    common = {
        "/health": {"get": operation("200 when the copy can do its job, else 503 naming the failing checks",
                                     {200: json_response("healthy", ref("Health")),
                                      503: json_response("not healthy", ref("Health"))})},
        "/live": {"get": operation("200 whenever the copy answers at all; checks nothing (a liveness probe)",
                                   {200: json_response("alive", ref("Live"))})},
        "/metrics": {"get": operation("Prometheus metrics of this copy (absent with LAB_METRICS=false)", {
            200: {"description": "the text exposition format",
                  "content": {"text/plain": {"schema": {"type": "string"}}}}}, (404,))},
        "/openapi.json": {"get": operation("this description", {
            200: json_response("OpenAPI 3.1", {"type": "object"})})},
    }
    return {
        "openapi": "3.1.0",
        "info": {"title": service, "version": "1", "description": f"The HTTP API of one {service} copy."},
        "paths": {**paths, **common},
        "components": {
            "schemas": {
                "Error": {"type": "object", "required": ["error", "message"],
                          "properties": {"error": {"type": "string", "enum": sorted(set(ERROR_CODES.values()))},
                                         "message": {"type": "string"}}},
                "Live": {"type": "object", "required": ["status", "service", "instance"],
                         "properties": {"status": {"const": "alive"}, "service": {"type": "string"},
                                        "instance": {"type": "string"}}},
                "Health": {"type": "object", "required": ["status", "service", "instance", "checks"],
                           "properties": {"status": {"enum": ["ok", "unavailable"]}, "service": {"type": "string"},
                                          "instance": {"type": "string"}, "checks": {"type": "object"}}},
                **(schemas or {}),
            },
            "parameters": {"RequestId": {"name": REQUEST_ID_HEADER, "in": "header", "required": False,
                                         "description": "kept if 1-128 printable characters, else a new one is made",
                                         "schema": {"type": "string"}}},
            "headers": {"RequestId": {"description": "the request's id", "schema": {"type": "string"}}},
        },
    }


def add_openapi(app: Flask, description: dict) -> None:
    @app.get("/openapi.json")
    def openapi():
        return jsonify(description)


def described_routes(description: dict) -> set[tuple[str, str]]:
    return {(path, method.upper()) for path, methods in description["paths"].items() for method in methods}


def app_routes(app: Flask) -> set[tuple[str, str]]:
    """The app's (path, method) pairs in OpenAPI's path syntax (`<name>` becomes `{name}`)."""
    return {(re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule.rule), method)
            for rule in app.url_map.iter_rules() if rule.endpoint != "static"
            for method in rule.methods - {"HEAD", "OPTIONS"}}
