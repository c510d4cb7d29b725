import json

import pytest
import requests

from lab_common.discovery import CachedDiscovery
from lab_common.errors import Unavailable
from lab_common.http import ServiceClient
from tests.unit.fakes import FakeDiscovery


class FakeClock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def test_addresses_are_cached_for_the_ttl_and_asked_again_after():
    calls = []
    clock = FakeClock()

    def lookup(service):
        calls.append(service)
        return ["http://a"]

    discovery = CachedDiscovery(lookup, ttl=5, source="fake", clock=clock)
    discovery.addresses("s")
    discovery.addresses("s")
    clock.now = 6
    discovery.addresses("s")
    assert calls == ["s", "s"]


def test_last_known_addresses_are_served_while_the_source_is_down():
    clock = FakeClock()
    up = {"value": True}

    def lookup(service):
        if not up["value"]:
            raise Unavailable("config server down")
        return ["http://a"]

    discovery = CachedDiscovery(lookup, ttl=1, source="fake", clock=clock)
    discovery.addresses("s")
    up["value"] = False
    clock.now = 10
    assert discovery.addresses("s") == ["http://a"]
    assert discovery.status()["reachable"] is False
    up["value"] = True
    clock.now = 20
    discovery.addresses("s")
    assert discovery.status()["reachable"] is True


class FakeResponse:
    def __init__(self, status, body):
        self.status_code = status
        self.content = json.dumps(body).encode()


class FakeSession:
    """Answers per base URL: an exception to raise or a (status, body) pair."""

    def __init__(self, behaviour):
        self.behaviour = behaviour
        self.calls = []

    def request(self, method, url, timeout, **kwargs):
        base = url.rsplit("/", 1)[0]
        self.calls.append(base)
        outcome = self.behaviour[base]
        if isinstance(outcome, Exception):
            raise outcome
        return FakeResponse(*outcome)


def test_a_failed_copy_is_retried_on_another_copy():
    discovery = FakeDiscovery({"logging-service": ["http://dead", "http://live"]})
    session = FakeSession({"http://dead": requests.ConnectionError(), "http://live": (201, {"ok": True})})
    client = ServiceClient("logging-service", discovery, session, timeout=1, attempts=3, backoff=0)
    for _ in range(5):
        reply = client.call("POST", "/logging", json={})
        assert reply.copy == "http://live"
    assert "logging-service" in discovery.invalidated


def test_all_copies_failing_is_unavailable_after_the_attempts():
    discovery = FakeDiscovery({"s": ["http://a", "http://b"]})
    session = FakeSession({"http://a": (503, {}), "http://b": requests.Timeout()})
    client = ServiceClient("s", discovery, session, timeout=1, attempts=3, backoff=0)
    with pytest.raises(Unavailable) as err:
        client.call("GET", "/x")
    assert len(err.value.details["attempts"]) == 3
    assert len(session.calls) == 3


def test_a_4xx_reply_is_returned_not_retried():
    discovery = FakeDiscovery({"s": ["http://a"]})
    session = FakeSession({"http://a": (400, {"error": "bad_request"})})
    reply = ServiceClient("s", discovery, session, timeout=1, attempts=3, backoff=0).call("POST", "/x")
    assert reply.status == 400 and len(session.calls) == 1
