"""messages-service's HTTP API as OpenAPI 3.1, served at /openapi.json."""

from __future__ import annotations

from lab_common.openapi import document, json_response, operation

RECEIVED = {"type": "object", "required": ["uuid", "msg", "received_by", "seq"],
            "properties": {"uuid": {"type": "string"}, "msg": {"type": "string"}, "received_by": {"type": "string"},
                           "seq": {"type": "integer"}}}
LISTING = {"type": "object", "required": ["copy", "count", "messages"],
           "properties": {"copy": {"type": "string"}, "count": {"type": "integer"},
                          "messages": {"type": "array", "items": RECEIVED}}}


def openapi() -> dict:
    return document("messages-service", {"/messages": {"get": operation(
        "what this copy received from the queue, in the order received",
        {200: json_response("the listing", LISTING)}, (503,))}})
