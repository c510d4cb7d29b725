import dataclasses

import pytest
from flask import Flask

from facade_service.adapters.hazelcast import HazelcastQueue
from facade_service.adapters.http import LoggingClient
from facade_service.app import create_app
from facade_service.service import Facade
from lab_common.contracts import Logged, LoggedMessage
from lab_common.errors import Unavailable
from lab_common.http import Reply
from logging_service.app import create_app as create_logging_app
from tests.unit.fakes import FakeMessages, FakeMessageStore, FakeQueue


class InProcessClient:
    """A ServiceClient that calls one copy's real Flask app through its test client: no network."""

    def __init__(self, app: Flask, base_url: str = "http://in-process"):
        self._client = app.test_client()
        self._base_url = base_url

    def call(self, method: str, path: str, *, json=None, params=None, headers=None, **_) -> Reply:
        response = self._client.open(path, method=method, json=json, query_string=params, headers=headers)
        return Reply(self._base_url, response.status_code, response.json)


@pytest.mark.parametrize("kwargs", [
    {"data": {"msg": "\x01" * 20_000}},  # 60 kB as a form; as JSON each one is \u0001: 120 kB
    {"json": {"msg": "x" * (64 * 1024 - 20)}},  # within the limit, but not with a uuid beside it
])
def test_a_message_too_large_for_logging_is_a_413_not_a_503_and_nothing_is_stored(settings, kwargs):
    store, queue = FakeMessageStore(), FakeQueue()
    logging = LoggingClient(InProcessClient(create_logging_app(dataclasses.replace(settings, instance="logging-1"),
                                                               store=store)))
    client = create_app(settings, facade=Facade(logging, FakeMessages(), queue)).test_client()
    response = client.post("/facade", **kwargs)
    assert response.status_code == 413 and response.json["error"] == "payload_too_large"
    assert "too large for logging" in response.json["message"]
    assert store.entries == {} and queue.items == []


def test_a_message_logging_takes_is_posted_through_the_real_logging_app(settings):
    store, queue = FakeMessageStore(), FakeQueue()
    logging = LoggingClient(InProcessClient(create_logging_app(dataclasses.replace(settings, instance="logging-1"),
                                                               store=store)))
    client = create_app(settings, facade=Facade(logging, FakeMessages(), queue)).test_client()
    response = client.post("/facade", data={"msg": "ü" * 1000})
    assert response.status_code == 201 and response.json["logged_by"] == "logging-1"
    assert [m.msg for m in store.entries.values()] == ["ü" * 1000]


def test_the_logging_client_gives_its_call_the_posts_retry_window():
    class Recording:
        def call(self, method, path, **kwargs):
            self.kwargs = kwargs
            return Reply("http://l1", 201, {"status": "stored", "copy": "logging-1", "uuid": "u", "msg": "m",
                                            "logged_by": "logging-1", "seq": 7})

    client = Recording()
    assert LoggingClient(client).log("u", "m", window=12.0) == Logged(LoggedMessage("u", "m", "logging-1", 7),
                                                                      duplicate=False, copy="logging-1")
    assert client.kwargs["window"] == 12.0


@pytest.mark.parametrize("body", [{"status": "stored", "uuid": "u"}, {"status": "kept", "copy": "logging-1",
                                  "uuid": "u", "msg": "m", "logged_by": "logging-1", "seq": 7}, []])
def test_a_logging_answer_that_is_not_the_contract_s_is_a_503_not_a_201(body):
    class Answering:
        def call(self, method, path, **kwargs):
            return Reply("http://l1", 201, body)

    with pytest.raises(Unavailable, match="without the entry it stored"):
        LoggingClient(Answering()).log("u", "m")


class FakeRefusingConnection:
    """A ClusterConnection whose queue proxy refuses every offer, as a full bounded queue does (offer -> False)."""

    def __init__(self):
        self.offered: list[str] = []

    def proxy(self, kind: str, name: str):
        assert kind == "queue"
        return self

    def offer(self, item: str) -> bool:
        self.offered.append(item)
        return False


def test_an_offer_the_queue_refuses_is_unavailable():
    connection = FakeRefusingConnection()
    with pytest.raises(Unavailable, match="queue messages is full"):
        HazelcastQueue(connection, "messages").offer("u-1", "msg1")
    assert len(connection.offered) == 1  # a refusal is an answer: not offered again
