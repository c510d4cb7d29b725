import dataclasses
import threading
import time
from types import SimpleNamespace

import pytest

from facade_service import service
from facade_service.app import create_app
from facade_service.bootstrap import breakers_check
from facade_service.service import Facade, RetryWindow
from lab_common.failover import CopyBreakers, CopyFailed
from tests.unit.fakes import FakeClock, FakeLogging, FakeMessages, FakeQueue


@pytest.fixture
def parts():
    return FakeLogging(), FakeMessages(), FakeQueue()


@pytest.fixture
def client(settings, parts):
    logging, messages, queue = parts
    return create_app(settings, facade=Facade(logging, messages, queue)).test_client()


def test_form_post_is_logged_and_queued(client, parts):
    logging, _, queue = parts
    response = client.post("/facade", data={"msg": "msg1"})
    assert response.status_code == 201
    uuid = response.json["uuid"]
    assert logging.store.entries[uuid].msg == "msg1"
    assert queue.items == [{"uuid": uuid, "msg": "msg1"}]


def test_json_post_and_the_task1_txt_field_on_root_are_accepted(client):
    assert client.post("/facade", json={"msg": "a"}).status_code == 201
    assert client.post("/", data={"txt": "b"}).status_code == 201


def test_unicode_round_trips_unchanged(client):
    text = "Привіт, світ! 🌻 ґєї"
    uuid = client.post("/facade", json={"msg": text}).json["uuid"]
    merged = client.get("/facade").json["merged"]
    assert [m["msg"] for m in merged if m["uuid"] == uuid] == [text]


def test_a_retry_with_the_same_idempotency_key_is_logged_once_and_queued_again_under_the_same_uuid(client, parts):
    """The facade's part of "converges to one copy": the same uuid to logging (which answers the repeat as a
    duplicate) and to the queue (whose consumers drop a uuid they have seen: tests/integration)."""
    logging, _, queue = parts
    first = client.post("/facade", data={"msg": "once"}, headers={"Idempotency-Key": "key-1"})
    again = client.post("/facade", data={"msg": "once"}, headers={"Idempotency-Key": "key-1"})
    assert first.status_code == again.status_code == 201
    assert first.json["uuid"] == again.json["uuid"] == "key-1"
    assert "replayed" not in first.json and again.json["replayed"] is True
    assert [m.uuid for m in logging.store.all_messages()] == ["key-1"]
    assert queue.items == [{"uuid": "key-1", "msg": "once"}] * 2


def test_idempotency_key_reused_for_another_message_is_a_conflict_and_the_other_message_is_not_queued(client, parts):
    logging, _, queue = parts
    client.post("/facade", data={"msg": "one"}, headers={"Idempotency-Key": "key-2"})
    response = client.post("/facade", data={"msg": "two"}, headers={"Idempotency-Key": "key-2"})
    assert response.status_code == 409
    assert [m.msg for m in logging.store.all_messages()] == ["one"]
    assert queue.items == [{"uuid": "key-2", "msg": "one"}]


def test_logging_down_answers_503_and_the_message_is_never_queued(client, parts):
    logging, _, queue = parts
    logging.available = False
    response = client.post("/facade", data={"msg": "m"})
    assert response.status_code == 503
    assert response.json["error"] == "unavailable"
    assert queue.items == []  # only what the log holds is ever queued


def test_queue_down_answers_503_and_the_message_stays_logged_for_redelivery(client, parts):
    logging, _, queue = parts
    queue.available = False
    assert client.post("/facade", data={"msg": "m"}).status_code == 503
    assert [m.msg for m in logging.store.entries.values()] == ["m"]


@pytest.mark.parametrize(
    "kwargs, status, problem",
    [
        ({"data": {}}, 400, "empty"),
        ({"data": {"msg": ""}}, 400, "empty"),
        ({"data": {"msg": " \t\n"}}, 400, "empty"),
        ({"json": {"msg": ["a"]}}, 400, "string"),
        ({"json": ["msg"]}, 400, "object"),
        ({"data": "{bad json", "content_type": "application/json"}, 400, "JSON"),
        ({"data": "msg", "content_type": "text/plain"}, 415, "content type"),
        ({"data": {"msg": "x" * 70_000}}, 413, "limit"),
        ({"data": {"msg": "m"}, "headers": {"Idempotency-Key": "k" * 300}}, 400, "Idempotency-Key"),
    ],
)
def test_bad_input_gets_a_4xx_json_error_and_nothing_is_stored(client, parts, kwargs, status, problem):
    logging, _, queue = parts
    response = client.post("/facade", **kwargs)
    assert response.status_code == status
    assert problem in response.json["message"]
    assert logging.store.entries == {} and queue.items == []


def test_unknown_route_and_method_answer_json(client):
    assert client.get("/nope").json["error"] == "not_found"
    response = client.delete("/facade")
    assert response.status_code == 405
    assert response.json["error"] == "method_not_allowed"


def test_a_form_of_over_1000_parts_is_a_413_with_the_services_own_code(client, parts):
    logging, _, queue = parts
    part = b"--b\r\nContent-Disposition: form-data; name=a\r\n\r\n\r\n"  # within the byte limit: werkzeug's refusal
    body = part * 1001 + b"--b\r\nContent-Disposition: form-data; name=msg\r\n\r\nm\r\n--b--\r\n"
    response = client.post("/facade", data=body, content_type="multipart/form-data; boundary=b")
    assert response.status_code == 413 and response.json["error"] == "payload_too_large"
    assert logging.store.entries == {} and queue.items == []


def test_a_form_field_is_limited_by_the_body_limit_alone(settings, parts):
    logging, messages, queue = parts
    roomy = dataclasses.replace(settings, max_body_bytes=1_000_000)  # werkzeug's own cap on a field is 500 kB
    client = create_app(roomy, facade=Facade(logging, messages, queue)).test_client()
    response = client.post("/facade", data={"msg": "x" * 600_000}, content_type="multipart/form-data")
    assert response.status_code == 201


def test_get_merges_logging_with_one_messages_copy_marking_only_what_that_copy_received(client, parts):
    _, messages, queue = parts
    for msg in ("a", "b"):
        client.post("/facade", data={"msg": msg})
    messages.received = [queue.items[1]]
    body = client.get("/facade").json
    assert body["count"] == 2
    assert [(m["msg"], m["received_by"]) for m in body["merged"]] == [("a", None), ("b", "messages-1")]
    assert body["logging"]["copy"] == "logging-1" and body["messages"]["copy"] == "messages-1"


def test_full_get_written_in_pieces_is_the_whole_merged_view(client, parts, monkeypatch):
    monkeypatch.setattr(service, "MERGED_CHUNK", 3)  # pieces as small as can be, to cross every boundary
    monkeypatch.setattr(service, "PIECE_BYTES", 7)
    logging, messages, queue = parts
    for i in range(10):
        client.post("/facade", data={"msg": f"m{i} ünï"})
    messages.received = queue.items[1::2]  # only every other one reached the messages copy
    body = client.get("/facade").json
    logged = [m.to_json() for m in logging.store.all_messages()]
    assert body["count"] == 10
    assert body["merged"] == [{"uuid": m["uuid"], "msg": m["msg"], "logged_by": "logging-1",
                               "received_by": "messages-1" if i % 2 else None} for i, m in enumerate(logged)]
    assert body["logging"] == {"url": "http://fake-logging", "copy": "logging-1", "count": 10, "messages": logged}
    assert body["messages"]["count"] == 5 and body["messages"]["url"] == "http://fake-messages"
    assert [m["uuid"] for m in body["messages"]["messages"]] == [m["uuid"] for m in logged[1::2]]


def test_get_still_answers_logging_when_messages_is_down(client, parts):
    _, messages, _ = parts
    client.post("/facade", data={"msg": "a"})
    messages.available = False
    body = client.get("/facade").json
    assert body["count"] == 1
    assert "error" in body["messages"]


class ListingsAskedAtOnce:
    """Each listing waits (bounded) until the other one has been asked for, then answers the fake's."""

    def __init__(self):
        self.asked = {"logging": threading.Event(), "messages": threading.Event()}
        self.listings = []

    def ask(self, name: str, other: str, listing):
        self.asked[name].set()
        if not self.asked[other].wait(timeout=5):
            raise AssertionError(f"{other} was not asked while {name} was being answered")
        self.listings.append(result := listing())
        return result


def test_full_get_asks_logging_and_messages_at_once(settings, parts):
    logging, messages, queue = parts
    both = ListingsAskedAtOnce()
    facade = Facade(SimpleNamespace(messages=lambda: both.ask("logging", "messages", logging.messages)),
                    SimpleNamespace(messages=lambda: both.ask("messages", "logging", messages.messages)), queue)
    Facade(logging, messages, queue).post("a")
    messages.received = list(queue.items)
    body = create_app(settings, facade=facade).test_client().get("/facade").json
    assert body["count"] == 1 and body["merged"][0]["received_by"] == "messages-1"
    assert [listing.file.closed for listing in both.listings] == [True, True]


def test_a_messages_listing_that_comes_after_logging_failed_is_closed(settings, parts):
    logging, messages, queue = parts
    logging.available = False
    arrived = []

    def slow_messages():
        time.sleep(0.2)  # answers after logging has failed and the GET has answered 503
        arrived.append(messages.messages())
        return arrived[-1]

    facade = Facade(logging, SimpleNamespace(messages=slow_messages), queue)
    assert create_app(settings, facade=facade).test_client().get("/facade").status_code == 503
    deadline = time.monotonic() + 5
    while not (arrived and arrived[0].file.closed) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert arrived and arrived[0].file.closed


def test_paged_get_walks_the_log_with_a_cursor(client):
    for i in range(5):
        client.post("/facade", data={"msg": f"m{i}"})
    first = client.get("/facade?limit=3").json
    rest = client.get(f"/facade?limit=3&after={first['next']}").json
    assert [m["msg"] for m in first["messages"] + rest["messages"]] == [f"m{i}" for i in range(5)]
    assert rest["next"] is None


@pytest.mark.parametrize("query", ["limit=0", "limit=abc", "limit=5000", "limit=-1", "limit=99999999999999999999",
                                   "after=xyz", "after=-5", "after=-99999999999999999999999",
                                   "after=99999999999999999999999", "after=9223372036854775808", "after=１２",
                                   "after=", "limit=5&after=1.5", "limit=²", "limit=٥", "limit=" + "9" * 5000,
                                   "after=" + "9" * 5000, "after=" + "0" * 5000 + "1x"])
def test_bad_paging_parameters_are_a_400_with_the_json_error_shape(client, parts, query):
    logging, _, _ = parts
    response = client.get(f"/facade?{query}")
    assert response.status_code == 400
    assert response.json["error"] == "bad_request" and response.json["message"]


def test_the_largest_seq_is_a_valid_cursor(client):
    assert client.get("/facade?limit=5&after=9223372036854775807").status_code == 200


def test_leading_zeros_do_not_change_a_number(client):
    zeros = "0" * 5000
    assert client.get(f"/facade?limit={zeros}5&after={zeros}9223372036854775807").status_code == 200


def test_the_request_id_given_goes_to_logging_and_the_queue_and_comes_back(client, parts):
    logging, _, queue = parts
    response = client.post("/facade", data={"msg": "m"}, headers={"X-Request-Id": "trace-42"})
    assert response.headers["X-Request-Id"] == "trace-42"
    assert logging.request_ids == ["trace-42"] and queue.request_ids == ["trace-42"]


def test_a_request_without_a_sane_request_id_gets_one_of_its_own(client, parts):
    logging, _, queue = parts
    first = client.post("/facade", data={"msg": "a"})
    second = client.post("/facade", data={"msg": "b"}, headers={"X-Request-Id": "x" * 200})
    made = [first.headers["X-Request-Id"], second.headers["X-Request-Id"]]
    assert all(len(rid) == 32 for rid in made) and made[0] != made[1]
    assert logging.request_ids == queue.request_ids == made


def test_health_shows_each_logging_copys_breaker_and_stays_200_while_one_is_open(settings, parts):
    breakers = CopyBreakers("logging-service", fail_max=1, reset_timeout=10, clock=FakeClock(0))
    breakers.of("http://l1").succeeded()
    breakers.of("http://l2").failed(CopyFailed("http://l2: ConnectionRefusedError"))
    app = create_app(settings, facade=Facade(*parts), health_checks={"logging-breakers": breakers_check(breakers)})
    response = app.test_client().get("/health")
    assert response.status_code == 200
    assert response.json["checks"]["logging-breakers"] == {"ok": True, "detail": {"open": 1, "copies": {
        "http://l1": {"state": "closed", "failures_in_a_row": 0},
        "http://l2": {"state": "open", "failures_in_a_row": 1, "probe_in_seconds": 10.0}}}}


@pytest.mark.parametrize("prefer, window, applied", [
    (None, 2.0, None),  # the facade's own default
    ("wait=10", 10.0, "wait=10"),
    ("respond-async, wait=5", 5.0, "wait=5"),
    ("WAIT = 7 ; x=y", 7.0, "wait=7"),
    ("wait=600", 30.0, "wait=30"),  # no longer than the facade allows
    ("wait=0", 0.0, "wait=0"),  # a client may ask for a fast 503
    ("wait=soon", 2.0, None),  # a preference not understood is ignored
    ("wait=1234567", 2.0, None),
    ("respond-async", 2.0, None),
])
def test_prefer_wait_sets_how_long_logging_is_tried_up_to_the_facades_most(settings, prefer, window, applied):
    logging = FakeLogging()
    facade = Facade(logging, FakeMessages(), FakeQueue(), retry_window=RetryWindow(default=2.0, most=30.0))
    response = create_app(settings, facade=facade).test_client().post(
        "/facade", data={"msg": "m"}, headers={"Prefer": prefer} if prefer else {})
    assert response.status_code == 201
    assert logging.windows == [window]
    assert response.headers.get("Preference-Applied") == applied


def test_with_no_window_allowed_prefer_wait_is_ignored(client, parts):
    logging, _, _ = parts
    response = client.post("/facade", data={"msg": "m"}, headers={"Prefer": "wait=20"})
    assert response.status_code == 201 and logging.windows == [0.0]
    assert "Preference-Applied" not in response.headers
