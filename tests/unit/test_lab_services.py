"""The services as the lab's Tasks 1 and 3 run them: the messages stub, a facade that only logs, the status
page of a system without a queue (and without members), the logging copy on its in-memory store."""

import dataclasses

from facade_service.adapters.none import NoQueue
from facade_service.app import create_app as create_facade_app
from facade_service.service import Facade
from facade_service.status import RecentPosts, Status
from logging_service.bootstrap import build as build_logging
from logging_service.settings import LoggingSettings
from messages_service.bootstrap import build as build_messages
from messages_service.settings import MessagesSettings
from tests.unit.fakes import FakeClock, FakeLogging, FakeMessages, FakeStubMessages
from tests.unit.test_status import FakeCopies


def test_the_stub_answers_not_implemented_yet_as_json_and_is_healthy():
    settings = MessagesSettings.load("messages-service", default_port=8082, argv=[], environ={},
                                     instance="messages-1", messages_stub=True)
    app, close = build_messages(settings)  # no cluster, no queue: nothing to connect to
    try:
        client = app.test_client()
        answer = client.get("/messages")
        assert answer.status_code == 200 and answer.is_json
        assert answer.json == {"copy": "messages-1", "status": "not implemented yet",
                               "message": "Message-service not implemented yet", "count": 0, "messages": []}
        health = client.get("/health")
        assert health.status_code == 200 and health.json["checks"]["stub"]["ok"]
        assert client.post("/messages").status_code == 405
    finally:
        close()


def test_a_facade_without_a_queue_logs_answers_201_and_offers_nothing():
    logging = FakeLogging()
    client = create_facade_app(_settings(), facade=Facade(logging, FakeStubMessages(), NoQueue())).test_client()
    posted = client.post("/facade", data={"msg": "Hello"})
    assert posted.status_code == 201
    assert [m.msg for m in logging.store.all_messages()] == ["Hello"]


def test_the_facades_get_merges_the_log_with_the_stubs_answer():
    client = create_facade_app(_settings(), facade=Facade(FakeLogging(), FakeStubMessages(), NoQueue())).test_client()
    for text in ("Hello", "Its me"):
        client.post("/", data={"txt": text})
    body = client.get("/facade").json
    assert [(m["msg"], m["received_by"]) for m in body["merged"]] == [("Hello", None), ("Its me", None)]
    assert body["messages"]["status"] == "not implemented yet"


def test_the_facades_get_without_any_messages_copy_answers_the_log_and_says_why_there_is_no_more():
    messages = FakeMessages()
    messages.available = False  # as when the config server lists no copy of messages-service
    client = create_facade_app(_settings(), facade=Facade(FakeLogging(), messages, NoQueue())).test_client()
    client.post("/facade", data={"msg": "msg1"})
    answer = client.get("/facade")
    assert answer.status_code == 200
    assert [m["msg"] for m in answer.json["merged"]] == ["msg1"]
    assert answer.json["messages"] == {"copy": None, "error": "no copy of messages-service answered"}


def test_the_status_page_of_a_system_without_members_shows_no_cluster_and_no_queue():
    recent = RecentPosts()
    recent.add("u1", "Hello", "logging-1")
    snapshot = Status(None, FakeCopies(), recent, clock=FakeClock()).snapshot()
    assert (snapshot["cluster"], snapshot["members"], snapshot["queue"]) == (False, [], None)
    assert snapshot["maps"] == {"logged": None, "received": None} and snapshot["error"] is None
    assert snapshot["recent"][0]["received_by"] is None


def test_the_status_page_of_a_system_with_members_and_no_queue_shows_the_members_and_no_queue():
    from tests.unit.test_status import FakeCluster

    class FakeClusterWithoutQueue(FakeCluster):
        def view(self):
            return dataclasses.replace(super().view(), queue=None)

    snapshot = Status(FakeClusterWithoutQueue(), FakeCopies(), RecentPosts(), clock=FakeClock()).snapshot()
    assert snapshot["cluster"] and len(snapshot["members"]) == 3 and snapshot["queue"] is None


def test_a_logging_copy_on_the_memory_store_needs_no_cluster_and_keeps_the_dedup_protocol():
    settings = LoggingSettings.load("logging-service", default_port=8081, argv=[], environ={}, instance="logging-1",
                                    logging_store="memory", hz_members=("127.0.0.1:1",))  # never connected to
    app, close = build_logging(settings)
    try:
        client = app.test_client()
        assert client.get("/health").status_code == 200
        answers = [client.post("/logging", data={"id": "1111-2222-3333", "txt": "Duplicate test"})
                   for _ in range(3)]
        assert [a.status_code for a in answers] == [201, 200, 200]
        assert [a.json["status"] for a in answers] == ["stored", "duplicate", "duplicate"]
        listing = client.get("/logging").json
        assert [(m["uuid"], m["msg"]) for m in listing["messages"]] == [("1111-2222-3333", "Duplicate test")]
        assert client.get("/health").json["checks"]["store"]["detail"] == {"kind": "memory", "messages": 1}
    finally:
        close()


def _settings():
    from facade_service.settings import FacadeSettings

    return FacadeSettings.load("facade-service", default_port=8080, argv=[], environ={}, instance="facade-1",
                               queue="none", hazelcast=False)

