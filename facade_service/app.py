"""facade-service's HTTP face: POST /facade takes a message, GET /facade reads everything back."""

from __future__ import annotations

from pathlib import Path

from flask import Flask, Response, jsonify, request, send_from_directory

from facade_service.api import openapi
from facade_service.service import Facade
from facade_service.status import Status
from lab_common.errors import BadRequest, NotFound
from lab_common.openapi import add_openapi
from lab_common.settings import ServiceSettings
from lab_common.web import (
    add_health,
    after_param,
    create_base_app,
    limit_param,
    request_fields,
    request_id,
    text_field,
)

MAX_IDEMPOTENCY_KEY = 128
MAX_WAIT_DIGITS = 6  # Prefer: wait=N beyond 999999 s is not a preference, it is noise
STATIC = Path(__file__).with_name("static")
STATUS_ASSETS = {"status.js", "status.css"}


def create_app(settings: ServiceSettings, *, facade: Facade, health_checks=None, status: Status | None = None) -> Flask:
    app = create_base_app(__name__, settings)
    add_health(app, settings, health_checks or {})
    add_openapi(app, openapi())
    if status is not None:
        add_status_page(app, status)

    @app.post("/facade")
    @app.post("/")
    def post_message():
        key = request.headers.get("Idempotency-Key")
        if key is not None and not (0 < len(key.strip()) <= MAX_IDEMPOTENCY_KEY and key.isprintable()):
            raise BadRequest(f"Idempotency-Key must be 1-{MAX_IDEMPOTENCY_KEY} printable characters")
        msg = text_field(request_fields(), "msg", "txt")
        wait = preferred_wait(request.headers.getlist("Prefer"))
        posted = facade.post(msg, key.strip() if key else None, request_id(), wait)
        body = {"uuid": posted.uuid, "msg": posted.msg, "logged_by": posted.logged_by}
        if posted.replayed:
            body["replayed"] = True
        response = jsonify(body)
        if wait is not None and facade.retry_window.most > 0:
            response.headers["Preference-Applied"] = f"wait={facade.retry_window.for_post(wait):g}"
        return response, 201

    @app.get("/facade")
    @app.get("/")
    def get_messages():
        limit = limit_param(default=None, maximum=1000)
        after = after_param("the 'next' value of the previous page")
        if limit is None and after is None:
            return Response(facade.read(), mimetype="application/json")
        return jsonify(facade.read_page(limit or 100, None if after is None else str(after)))

    return app


def preferred_wait(prefer_headers: list[str]) -> float | None:
    """The `wait` preference of the Prefer headers (RFC 7240: `Prefer: wait=30`), in whole seconds; None
    without one. A preference not understood is ignored, not refused, as the RFC says."""
    for preference in ",".join(prefer_headers).split(","):
        name, _, value = preference.split(";")[0].partition("=")
        if name.strip().lower() == "wait":
            value = value.strip().strip('"')
            return float(value) if value.isascii() and value.isdigit() and len(value) <= MAX_WAIT_DIGITS else None
    return None


def add_status_page(app: Flask, status: Status) -> None:
    """GET /status: the page (its script and style served from here too: it works offline);
    GET /status.json: what it shows."""

    @app.get("/status")
    def status_page():
        return send_from_directory(STATIC, "status.html")

    @app.get("/status/<asset>")
    def status_asset(asset: str):
        if asset not in STATUS_ASSETS:
            raise NotFound(f"no status page asset {asset!r}", known=sorted(STATUS_ASSETS))
        return send_from_directory(STATIC, asset)

    @app.get("/status.json")
    def status_json():
        response = jsonify(status.snapshot())
        response.headers["Cache-Control"] = "no-store"
        return response
