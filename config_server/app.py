"""config-server's HTTP face: GET /services/<name> answers that service's base URLs."""

from __future__ import annotations

import json
from pathlib import Path

from flask import Flask, jsonify

from config_server.api import openapi
from lab_common.errors import NotFound
from lab_common.openapi import add_openapi
from lab_common.settings import ServiceSettings
from lab_common.web import add_health, create_base_app

DEFAULT_REGISTRY = Path(__file__).with_name("registry.json")


def load_registry(path: Path) -> dict[str, list[str]]:
    """The registry file: {"service-name": ["http://host:port", ...]}; ValueError if malformed."""
    data = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict) or not all(
        isinstance(urls, list) and all(isinstance(u, str) for u in urls) for urls in data.values()
    ):
        raise ValueError(f"{path}: expected an object of service name -> list of URLs")
    return data


def create_app(settings: ServiceSettings, *, registry: dict[str, list[str]]) -> Flask:
    app = create_base_app(__name__, settings)
    add_health(app, settings, {"registry": lambda: (True, f"{len(registry)} services")})
    add_openapi(app, openapi())

    @app.get("/services")
    def all_services():
        return jsonify({"services": registry})

    @app.get("/services/<name>")
    def service(name: str):
        if name not in registry:
            raise NotFound(f"no service named {name!r}", known=sorted(registry))
        return jsonify({"service": name, "addresses": registry[name]})

    return app
