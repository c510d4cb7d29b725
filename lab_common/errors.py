"""The services' own error types and the one table that turns them into JSON answers."""

from __future__ import annotations

import logging

from flask import Flask, jsonify
from werkzeug.exceptions import HTTPException

from lab_common.contracts import QUORUM
from lab_common.logs import ERROR_PREFIX, clipped

log = logging.getLogger(__name__)


class ServiceError(Exception):
    """An error a service answers with a JSON body `{"error": code, "message": text}`."""

    status = 500
    code = "internal_error"

    def __init__(self, message: str, **details):
        super().__init__(message)
        self.message = message
        self.details = details


class BadRequest(ServiceError):
    status, code = 400, "bad_request"


class NotFound(ServiceError):
    status, code = 404, "not_found"


class Conflict(ServiceError):
    status, code = 409, "conflict"


class PayloadTooLarge(ServiceError):
    status, code = 413, "payload_too_large"


class UnsupportedMediaType(ServiceError):
    status, code = 415, "unsupported_media_type"


class Unavailable(ServiceError):
    """A dependency (the cluster, another service) cannot be reached right now: answer 503 fast."""

    status, code = 503, "unavailable"


class NoQuorum(Unavailable):
    """The cluster refused a write because fewer than QUORUM of its members are in touch (quorum mode): nothing was
    stored, and no copy of any service can do better until members are back. Answered as any 503, with
    `reason` telling a caller that another copy would be refused the same."""

    reason = "no_quorum"
    text = f"the cluster has fewer than {QUORUM} members reachable: writes refused in quorum mode"

    def __init__(self, message: str = text):
        super().__init__(message, reason=self.reason)


# werkzeug's own refusals (its form parser's 413, routing's 404) answer with the code of the service's error
# of that status: one code per status, the ones the OpenAPI descriptions list
OWN_CODES = {error.status: error.code
             for error in (BadRequest, NotFound, Conflict, PayloadTooLarge, UnsupportedMediaType, Unavailable)}


def error_body(code: str, message: str, **details) -> dict:
    return {"error": code, "message": message, **details}


def register_error_handlers(app: Flask) -> None:
    @app.errorhandler(ServiceError)
    def service_error(err: ServiceError):
        if err.status >= 500:
            log.warning("%s: %s", err.code, clipped(err.message, ERROR_PREFIX))
        return jsonify(error_body(err.code, err.message, **err.details)), err.status

    @app.errorhandler(HTTPException)
    def http_error(err: HTTPException):
        code = OWN_CODES.get(err.code) or (err.name or "error").lower().replace(" ", "_")
        response = jsonify(error_body(code, err.description or err.name))
        response.status_code = err.code or 500
        if err.code == 405 and hasattr(err, "valid_methods") and err.valid_methods:
            response.headers["Allow"] = ", ".join(err.valid_methods)
        return response

    @app.errorhandler(Exception)
    def unexpected(err: Exception):
        log.exception("unexpected error")
        return jsonify(error_body("internal_error", f"{type(err).__name__}: {err}")), 500
