import dataclasses

import pytest
from prometheus_client.parser import text_string_to_metric_families

from facade_service.app import create_app
from facade_service.service import Facade
from lab_common import metrics
from lab_common.discovery import CachedDiscovery
from lab_common.errors import Unavailable
from lab_common.http import HttpPool, ServiceClient
from tests.unit.fakes import FakeLogging, FakeMessages, FakeQueue


def samples(client) -> dict[tuple[str, frozenset], float]:
    """Every sample of GET /metrics as (name, labels) -> value."""
    text = client.get("/metrics").get_data(as_text=True)
    return {(s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


@pytest.fixture
def facade_client(settings):
    queue = FakeQueue()
    return create_app(settings, facade=Facade(FakeLogging(), FakeMessages(), queue)).test_client()


def test_requests_are_counted_by_route_method_and_status(facade_client):
    created = ("lab_http_requests_total", frozenset({"route": "/facade", "method": "POST", "status": "201"}.items()))
    refused = ("lab_http_requests_total", frozenset({"route": "/facade", "method": "POST", "status": "400"}.items()))
    before = samples(facade_client)
    for _ in range(3):
        assert facade_client.post("/facade", data={"msg": "m"}).status_code == 201
    assert facade_client.post("/facade", data={"msg": " "}).status_code == 400
    after = samples(facade_client)
    assert after[created] - before.get(created, 0) == 3
    assert after[refused] - before.get(refused, 0) == 1
    timed = ("lab_http_request_duration_seconds_count", frozenset({"route": "/facade", "method": "POST"}.items()))
    assert after[timed] - before.get(timed, 0) == 4


def test_an_unknown_path_is_one_label_not_one_per_path(facade_client):
    facade_client.get("/no/such/path/1")
    facade_client.get("/no/such/path/2")
    routes = {dict(labels).get("route") for name, labels in samples(facade_client) if name == "lab_http_requests_total"}
    assert "unmatched" in routes and not any(route and route.startswith("/no/") for route in routes)


def test_with_metrics_off_there_is_no_metrics_route_and_nothing_is_counted(settings):
    queue = FakeQueue()
    off = dataclasses.replace(settings, metrics=False)
    try:
        client = create_app(off, facade=Facade(FakeLogging(), FakeMessages(), queue)).test_client()
        before = metrics.REQUESTS.labels("/facade", "POST", "201")._value.get()
        assert client.post("/facade", data={"msg": "m"}).status_code == 201
        assert client.get("/metrics").status_code == 404
        assert metrics.REQUESTS.labels("/facade", "POST", "201")._value.get() == before
    finally:
        metrics.enable(True)


def test_calls_to_a_copy_that_does_not_answer_count_as_failed_and_retried():
    dead = "http://127.0.0.1:9"  # the discard port: nothing listens there
    discovery = CachedDiscovery(lambda service: [dead], ttl=60, source="test")
    client = ServiceClient("logging-service", discovery, HttpPool(), timeout=(0.5, 0.5), attempts=2, backoff=0)
    failed = metrics.CALLS.labels("logging-service", dead, "failed")
    retried = metrics.RETRIES.labels("logging-service")
    fetched = metrics.DISCOVERY_LOOKUPS.labels("logging-service", "fetched")
    before = failed._value.get(), retried._value.get(), fetched._value.get()
    with pytest.raises(Unavailable):
        client.call("GET", "/logging")
    assert failed._value.get() - before[0] == 2
    assert retried._value.get() - before[1] == 1
    assert fetched._value.get() - before[2] == 2  # the first lookup, and again before the attempt after a failure


def test_discovery_counts_cached_answers_apart_from_lookups():
    discovery = CachedDiscovery(lambda service: ["http://127.0.0.1:1"], ttl=60, source="test")
    cached, fetched = (metrics.DISCOVERY_LOOKUPS.labels("svc-x", result) for result in ("cached", "fetched"))
    before = cached._value.get(), fetched._value.get()
    for _ in range(3):
        discovery.addresses("svc-x")
    assert (cached._value.get() - before[0], fetched._value.get() - before[1]) == (2, 1)
