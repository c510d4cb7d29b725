"""messages-service's HTTP API as OpenAPI 3.1, served at /openapi.json."""

from __future__ import annotations

from lab_common.openapi import document, json_response, operation, query

RECEIVED = {"type": "object", "required": ["uuid", "msg", "received_by", "seq"],
            "properties": {"uuid": {"type": "string"}, "msg": {"type": "string"}, "received_by": {"type": "string"},
                           "seq": {"type": "integer"}}}
LISTING = {"type": "object", "required": ["copy", "count", "messages"],
           "properties": {"copy": {"type": "string"}, "count": {"type": "integer"},
                          "messages": {"type": "array", "items": RECEIVED}}}
JOURNALED = {"type": "object", "required": ["uuid", "at", "copy", "batch"],
             "properties": {"uuid": {"type": "string"}, "at": {"type": "integer", "description": "µs since the epoch"},
                            "copy": {"type": "string"}, "batch": {"type": "string"}}}
JOURNAL = {"type": "object", "required": ["copy", "count", "entries"],
           "properties": {"copy": {"type": "string"}, "count": {"type": "integer"},
                          "entries": {"type": "array", "items": JOURNALED}, "next": {"type": ["string", "null"]}}}


def openapi() -> dict:
    return document("messages-service", {
        "/messages": {"get": operation(
            "what this copy received from the queue, in the order received",
            {200: json_response("the listing", LISTING)}, (503,))},
        "/messages/journal": {"get": operation(
            "this copy's journal: every message it processed, in the order journaled (across its restarts), "
            "or a page with `limit`/`after`",
            {200: json_response("the journal", JOURNAL)}, (400,),
            parameters=[query("limit", "a page of at most this many (1-10000)",
                              {"type": "integer", "minimum": 1, "maximum": 10000}),
                        query("after", "how many entries to skip: the `next` value of the previous page",
                              {"type": "integer", "minimum": 0, "maximum": 2**63 - 1})])},
    })
