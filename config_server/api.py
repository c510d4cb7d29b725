"""config-server's HTTP API as OpenAPI 3.1, served at /openapi.json."""

from __future__ import annotations

from lab_common.openapi import document, json_response, operation

URLS = {"type": "array", "items": {"type": "string"}}


def openapi() -> dict:
    return document("config-server", {
        "/services": {"get": operation("the whole registry", {200: json_response(
            "service name -> base URLs", {"type": "object", "required": ["services"],
                                          "properties": {"services": {"type": "object",
                                                                      "additionalProperties": URLS}}})})},
        "/services/{name}": {"get": operation("one service's base URLs", {200: json_response(
            "its addresses", {"type": "object", "required": ["service", "addresses"],
                              "properties": {"service": {"type": "string"}, "addresses": URLS}})}, (404,),
            parameters=[{"name": "name", "in": "path", "required": True, "schema": {"type": "string"}}])},
    })
