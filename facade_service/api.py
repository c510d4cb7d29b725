"""facade-service's HTTP API as OpenAPI 3.1, served at /openapi.json."""

from __future__ import annotations

from lab_common.contracts import LOGGED_SCHEMA
from lab_common.openapi import document, json_response, operation, query, ref

TEXT = {"type": "string", "pattern": "\\S"}  # not empty, not whitespace only
MESSAGE = {"type": "object", "properties": {"msg": TEXT, "txt": TEXT},
           "anyOf": [{"required": ["msg"]}, {"required": ["txt"]}],
           "description": "the message in `msg`; the lab's Task 1 field `txt` is accepted in its place"}
POST_BODY = {"required": True, "content": {"application/json": {"schema": MESSAGE},
                                           "application/x-www-form-urlencoded": {"schema": MESSAGE}}}
IDEMPOTENCY_KEY = {"name": "Idempotency-Key", "in": "header", "required": False,
                   "description": "1-128 printable characters; it becomes the uuid: a retry is stored once",
                   "schema": {"type": "string", "minLength": 1, "maxLength": 128,
                              "pattern": "^[!-~](?:[ -~]*[!-~])?$"}}
PREFER = {"name": "Prefer", "in": "header", "required": False,
          "description": "`wait=N` (RFC 7240): rather than a 503, keep trying logging up to N whole seconds while no "
                         "copy answers (at most the facade's LAB_RETRY_WINDOW_MAX); other preferences are ignored",
          "schema": {"type": "string"}}
SEQ = {"type": "integer", "minimum": 0, "maximum": 2**63 - 1}
PAGING = [query("limit", "a page of at most this many (1-1000) instead of everything",
                {"type": "integer", "minimum": 1, "maximum": 1000}),
          query("after", "the `next` of the previous page", SEQ)]

POSTED = json_response("logged and queued", ref("Posted"))
POSTED["headers"]["Preference-Applied"] = {"description": "`wait=N`: the window the POST was given, when it asked",
                                           "schema": {"type": "string"}}
POST = operation("post a message: logged by a logging copy, then queued for the messages copies",
                 {201: POSTED}, (400, 409, 413, 415, 503), parameters=[IDEMPOTENCY_KEY, PREFER], body=POST_BODY)
GET = operation("everything logged, merged with one messages copy's listing; or one page with `limit`/`after`",
                {200: json_response("the merged view, or a page", {"oneOf": [ref("Merged"), ref("Page")]})},
                (400, 503), parameters=PAGING)

SCHEMAS = {
    "Posted": {"type": "object", "required": ["uuid", "msg", "logged_by"],
               "properties": {"uuid": {"type": "string"}, "msg": {"type": "string"}, "logged_by": {"type": "string"},
                              "replayed": {"type": "boolean"}}},
    "Logged": LOGGED_SCHEMA,
    "Merged": {"type": "object", "required": ["count", "merged", "logging", "messages"],
               "properties": {"count": {"type": "integer"}, "merged": {"type": "array", "items": {"type": "object"}},
                              "logging": {"type": "object"}, "messages": {"type": "object"}}},
    "Page": {"type": "object", "required": ["count", "messages", "next", "logging"],
             "properties": {"count": {"type": "integer"}, "messages": {"type": "array", "items": ref("Logged")},
                            "next": {"type": ["string", "null"]}, "logging": {"type": "object"}}},
}


def openapi() -> dict:
    paths = {
        "/facade": {"post": POST, "get": GET},
        "/": {"post": POST, "get": GET},
        "/status": {"get": operation("the status page (HTML; it reads /status.json every second)", {
            200: {"description": "the page", "content": {"text/html": {"schema": {"type": "string"}}}}})},
        "/status/{asset}": {"get": operation("the status page's script and style", {
            200: {"description": "the file", "content": {"text/javascript": {"schema": {"type": "string"}},
                                                         "text/css": {"schema": {"type": "string"}}}}}, (404,),
            parameters=[{"name": "asset", "in": "path", "required": True,
                         "schema": {"type": "string", "enum": ["status.js", "status.css"]}}])},
        "/status.json": {"get": operation("what the status page shows", {
            200: json_response("members, queue, copies, counts, the last messages", {"type": "object"})})},
    }
    return document("facade-service", paths, SCHEMAS)
