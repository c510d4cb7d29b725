import dataclasses

from lab_common import web
from messages_service.app import create_app
from tests.unit.fakes import FakeInbox, FakeJournal, FakeMessagesCluster


def test_get_answers_what_this_copy_received_in_order_and_nothing_else(settings, monkeypatch):
    monkeypatch.setattr(web, "LISTING_CHUNK", 2)
    cluster = FakeMessagesCluster()
    inbox = FakeInbox(cluster)
    for i in (0, 1, 3, 4):
        cluster.offer_logged(f"u{i}", f"m{i}")
    inbox.receive_batch("messages-1", 10, 0)
    cluster.offer_logged("u2", "m2")
    inbox.receive_batch("messages-2", 10, 0)
    copy_settings = dataclasses.replace(settings, instance="messages-1")
    body = create_app(copy_settings, inbox=inbox, journal=FakeJournal()).test_client().get("/messages").json
    assert body["copy"] == "messages-1" and body["count"] == 4
    assert [(m["uuid"], m["received_by"]) for m in body["messages"]] == \
        [(f"u{i}", "messages-1") for i in (0, 1, 3, 4)]


def test_get_of_a_copy_that_received_nothing_is_an_empty_list(settings):
    body = create_app(settings, inbox=FakeInbox(), journal=FakeJournal()).test_client().get("/messages").json
    assert body["count"] == 0 and body["messages"] == []
