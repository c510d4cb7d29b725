"""Each service's OpenAPI description names exactly the routes its app has, and is valid OpenAPI 3.1 in shape."""

import dataclasses

import pytest

from config_server.app import create_app as config_app
from facade_service.app import create_app as facade_app
from facade_service.service import Facade
from lab_common.openapi import app_routes, described_routes
from logging_service.app import create_app as logging_app
from messages_service.app import create_app as messages_app
from tests.unit.fakes import FakeInbox, FakeJournal, FakeLogging, FakeMessages, FakeMessageStore, FakeQueue


def apps(settings):
    queue = FakeQueue()
    yield "facade-service", facade_app(settings, facade=Facade(FakeLogging(), FakeMessages(), queue),
                                       status=object())
    yield "logging-service", logging_app(settings, store=FakeMessageStore())
    yield "messages-service", messages_app(settings, inbox=FakeInbox(), journal=FakeJournal())
    yield "config-server", config_app(settings, registry={"logging-service": ["http://127.0.0.1:8081"]})


@pytest.fixture(params=["facade-service", "logging-service", "messages-service", "config-server"])
def service_app(request, settings):
    return dict(apps(settings))[request.param]


def test_the_description_names_every_route_of_the_app_and_no_other(service_app):
    description = service_app.test_client().get("/openapi.json").json
    assert described_routes(description) == app_routes(service_app)


def test_every_reference_resolves_and_every_error_answer_has_the_error_shape(service_app):
    description = service_app.test_client().get("/openapi.json").json
    assert description["openapi"] == "3.1.0"

    def refs(node):
        if isinstance(node, dict):
            if "$ref" in node:
                yield node["$ref"]
            for value in node.values():
                yield from refs(value)
        elif isinstance(node, list):
            for value in node:
                yield from refs(value)

    for target in refs(description):
        section, kind, name = target.removeprefix("#/").split("/")
        assert name in description[section][kind], target
    for path, methods in description["paths"].items():
        for method, operation in methods.items():
            for status, answer in operation["responses"].items():
                if int(status) >= 400 and path != "/health":
                    schema = answer["content"]["application/json"]["schema"]
                    assert schema == {"$ref": "#/components/schemas/Error"}, (path, method, status)


def test_without_metrics_the_description_still_matches_because_metrics_is_documented_as_absent(settings):
    off = dataclasses.replace(settings, metrics=False)
    app = logging_app(off, store=FakeMessageStore())
    try:
        assert app_routes(app) | {("/metrics", "GET")} == described_routes(app.test_client().get("/openapi.json").json)
    finally:
        from lab_common import metrics

        metrics.enable(True)
