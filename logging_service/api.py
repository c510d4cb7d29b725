"""logging-service's HTTP API as OpenAPI 3.1, served at /openapi.json."""

from __future__ import annotations

from lab_common.contracts import LOGGED_ANSWER_SCHEMA, LOGGED_SCHEMA
from lab_common.openapi import document, json_response, operation, query, ref

UUID = {"type": "string", "maxLength": 128, "pattern": "\\S"}
TEXT = {"type": "string", "pattern": "\\S"}
ENTRY = {"type": "object", "properties": {"uuid": UUID, "msg": TEXT, "id": UUID, "txt": TEXT},
         "allOf": [{"anyOf": [{"required": ["uuid"]}, {"required": ["id"]}]},
                   {"anyOf": [{"required": ["msg"]}, {"required": ["txt"]}]}],
         "description": "`uuid` and `msg`; the lab's Task 1 names `id` and `txt` are accepted in their place"}
LISTING = {"type": "object", "required": ["copy", "count", "messages"],
           "properties": {"copy": {"type": "string"}, "count": {"type": "integer"},
                          "messages": {"type": "array", "items": ref("Logged")}, "next": {"type": ["string", "null"]}}}
def openapi() -> dict:
    return document("logging-service", {"/logging": {
        "post": operation("store a message once by its uuid (a repeat is answered as a duplicate)",
                          {201: json_response("stored", LOGGED_ANSWER_SCHEMA),
                           200: json_response("stored before", LOGGED_ANSWER_SCHEMA)},
                          (400, 413, 415, 503),
                          body={"required": True, "content": {"application/json": {"schema": ENTRY},
                                                              "application/x-www-form-urlencoded": {"schema": ENTRY}}}),
        "get": operation("every message in the order logged, or a page with `limit`/`after`",
                         {200: json_response("the listing", LISTING)}, (400, 503),
                         parameters=[query("limit", "a page of at most this many (1-10000)",
                                           {"type": "integer", "minimum": 1, "maximum": 10000}),
                                     query("after", "the seq of the last message of the previous page",
                                           {"type": "integer", "minimum": 0, "maximum": 2**63 - 1})]),
    }}, {"Logged": LOGGED_SCHEMA})
