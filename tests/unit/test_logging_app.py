import dataclasses

import pytest

from lab_common import web
from lab_common.errors import Unavailable
from logging_service.app import create_app
from tests.unit.fakes import FakeMessageStore


@pytest.fixture
def store():
    return FakeMessageStore()


@pytest.fixture
def client(settings, store):
    health = {"hazelcast": lambda: (store.available, "fake")}
    copy_settings = dataclasses.replace(settings, instance="logging-2")
    return create_app(copy_settings, store=store, health_checks=health).test_client()


def test_new_message_is_stored_and_names_the_copy(client, store):
    response = client.post("/logging", json={"uuid": "u1", "msg": "msg1"})
    assert response.status_code == 201
    assert response.json["status"] == "stored"
    assert response.json["logged_by"] == "logging-2"
    assert store.entries["u1"].msg == "msg1"


def test_duplicate_uuid_is_stored_once_and_answered_without_error(client, store):
    client.post("/logging", json={"uuid": "u1", "msg": "msg1"})
    again = client.post("/logging", json={"uuid": "u1", "msg": "msg1"})
    assert again.status_code == 200
    assert again.json["status"] == "duplicate"
    assert len(store.entries) == 1


def test_messages_are_listed_in_posting_order(client):
    for i in range(5):
        client.post("/logging", json={"uuid": f"u{i}", "msg": f"msg{i}"})
    body = client.get("/logging").json
    assert [m["msg"] for m in body["messages"]] == [f"msg{i}" for i in range(5)]
    assert body["count"] == 5


def test_a_full_read_written_in_pieces_is_the_whole_listing(client, monkeypatch):
    monkeypatch.setattr(web, "LISTING_CHUNK", 2)
    for i in range(5):
        client.post("/logging", json={"uuid": f"u{i}", "msg": f"msg {i} ✓"})
    body = client.get("/logging").json
    assert list(body) == ["copy", "count", "messages"]
    assert [(m["uuid"], m["msg"], m["logged_by"]) for m in body["messages"]] == \
        [(f"u{i}", f"msg {i} ✓", "logging-2") for i in range(5)]


def test_a_full_read_that_fails_after_its_first_page_is_a_503_not_a_cut_listing(client, store, monkeypatch):
    for i in range(5):
        client.post("/logging", json={"uuid": f"u{i}", "msg": f"msg{i}"})
    pages = store.all_as_json

    def failing_after_one_page():
        yield next(pages())
        raise Unavailable("member gone mid-read")

    monkeypatch.setattr(store, "all_as_json", failing_after_one_page)
    response = client.get("/logging")
    assert response.status_code == 503
    assert "member gone mid-read" in response.json["message"]


@pytest.mark.parametrize("after", ["-1", "-99999999999999999999999", "99999999999999999999999", "abc", "٣", "²",
                                   "9" * 5000])
def test_a_cursor_that_is_not_a_seq_is_a_400_and_never_reaches_the_store(client, after):
    response = client.get(f"/logging?limit=5&after={after}")
    assert response.status_code == 400 and response.json["error"] == "bad_request"


def test_paged_read_follows_the_cursor(client):
    for i in range(5):
        client.post("/logging", json={"uuid": f"u{i}", "msg": f"msg{i}"})
    first = client.get("/logging?limit=2").json
    second = client.get(f"/logging?limit=2&after={first['next']}").json
    assert [m["msg"] for m in first["messages"] + second["messages"]] == ["msg0", "msg1", "msg2", "msg3"]


def test_the_task1_form_of_id_and_txt_posted_three_times_is_stored_once_and_never_an_error(client, store):
    answers = [client.post("/logging", data={"id": "1111-2222-3333", "txt": "Duplicate test"}) for _ in range(3)]
    assert [a.status_code for a in answers] == [201, 200, 200]
    assert [a.json["status"] for a in answers] == ["stored", "duplicate", "duplicate"]
    assert [(m.uuid, m.msg) for m in store.entries.values()] == [("1111-2222-3333", "Duplicate test")]


def test_id_and_txt_are_read_from_json_too(client, store):
    assert client.post("/logging", json={"id": "u7", "txt": "seven"}).status_code == 201
    assert store.entries["u7"].msg == "seven"


@pytest.mark.parametrize(
    "body, problem",
    [
        ({"msg": "no uuid"}, "field 'uuid' is missing (or 'id')"),
        ({"txt": "no id"}, "field 'uuid' is missing (or 'id')"),
        ({"id": "u1"}, "field 'msg' is missing (or 'txt')"),
        ({"id": 5, "txt": "m"}, "field 'id' must be a string"),
        ({"id": "u1", "txt": " "}, "field 'txt' is empty"),
        ({"id": "x" * 200, "txt": "m"}, "longer"),
        ({"uuid": "u1"}, "msg"),
        ({"uuid": "u1", "msg": "   "}, "empty"),
        ({"uuid": "u1", "msg": 7}, "string"),
        ({"uuid": "x" * 200, "msg": "m"}, "longer"),
    ],
)
def test_bad_input_is_rejected_and_nothing_is_stored(client, store, body, problem):
    response = client.post("/logging", json=body)
    assert response.status_code == 400
    assert problem in response.json["message"]
    assert store.entries == {}


def test_store_down_answers_503_with_json(client, store):
    store.available = False
    response = client.post("/logging", json={"uuid": "u1", "msg": "m"})
    assert response.status_code == 503
    assert response.json["error"] == "unavailable"
    assert client.get("/health").status_code == 503


def test_health_is_200_when_checks_pass(client):
    response = client.get("/health")
    assert response.status_code == 200
    assert response.json["instance"] == "logging-2"


def test_a_page_never_splits_messages_that_share_the_cursor_seq():
    from lab_common.contracts import LoggedMessage
    from logging_service.service import cut_page

    messages = [LoggedMessage(f"u{i}", "m", "logging-1", seq) for i, seq in enumerate([1, 2, 2, 2, 3])]
    assert [m.uuid for m in cut_page(messages, 2)] == ["u0", "u1", "u2", "u3"]


def test_the_log_line_of_a_message_names_its_uuid_and_request_id(client, caplog):
    caplog.set_level("INFO", logger="logging_service.service")
    response = client.post("/logging", json={"uuid": "u1", "msg": "m"}, headers={"X-Request-Id": "trace-7"})
    assert response.headers["X-Request-Id"] == "trace-7"
    assert any("uuid=u1" in r.getMessage() and "request_id=trace-7" in r.getMessage() for r in caplog.records)


def test_the_log_line_of_a_long_message_shows_only_its_start(client, caplog):
    caplog.set_level("INFO", logger="logging_service.service")
    msg = "start " + "x" * 5000 + " secret end"
    for _ in range(2):  # logged, then a duplicate
        client.post("/logging", json={"uuid": "u1", "msg": msg})
    lines = [r.getMessage() for r in caplog.records if "uuid=u1" in r.getMessage()]
    assert len(lines) == 2
    assert all(f"msg={msg[:32] + '…'!r} (5017 chars)" in line and "secret" not in line for line in lines)


def test_live_is_200_while_health_is_503_so_a_liveness_probe_does_not_restart_a_copy_without_its_cluster(
        client, store):
    store.available = False
    assert client.get("/health").status_code == 503
    response = client.get("/live")
    assert response.status_code == 200
    assert response.json == {"status": "alive", "service": "test-service", "instance": "logging-2"}
