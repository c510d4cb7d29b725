"""The shared load client against a real local HTTP server, and the probe's typed readings of /health and listings."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests

from labctl.load import PostClient, failure_summary
from labctl.probe import ConsumerCounts, FacadeView, Listing, ProbeError, ServiceHealth


class Facade(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    close_after_answer = False  # answer as keep-alive, then hang up: an idle connection the server closed

    def do_POST(self):
        form = self.rfile.read(int(self.headers["Content-Length"])).decode()
        if form == "msg=full":
            self._answer(503, b"no cluster")
        else:
            self._answer(201, json.dumps({"uuid": "u-" + form.split("=", 1)[1]}).encode())
        self.close_connection = self.close_after_answer

    def _answer(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def facade():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Facade)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}", server
    server.shutdown()
    server.server_close()
    Facade.close_after_answer = False


def test_a_post_answered_201_gives_its_uuid_and_another_status_its_text(facade):
    url, _ = facade
    with PostClient(url + "/facade", timeout=5) as client:
        ok, full = client.post("m1"), client.post("full")
    assert (ok.status, ok.uuid, ok.error) == (201, "u-m1", None) and ok.elapsed > 0
    assert (full.status, full.uuid, full.error) == (503, None, "no cluster")
    assert failure_summary([full, full]) == "2 x 503"


def test_a_connection_the_server_closed_while_idle_is_opened_again_not_failed(facade):
    url, _ = facade
    Facade.close_after_answer = True
    with PostClient(url + "/facade", timeout=5) as client:
        outcomes = []
        for i in range(5):
            outcomes.append(client.post(f"m{i}"))
            time.sleep(0.05)  # idle: the server's hang-up has arrived
    assert [o.uuid for o in outcomes] == [f"u-m{i}" for i in range(5)]


def test_nothing_listening_is_an_outcome_without_status_named_by_its_error(facade):
    url, server = facade
    server.shutdown()
    server.server_close()
    outcome = PostClient(url + "/facade", timeout=2).post("m1")
    assert outcome.status is None and outcome.error == "ConnectionRefusedError"


def response(status: int, body: object) -> requests.Response:
    answer = requests.Response()
    answer.status_code = status
    answer._content = body if isinstance(body, bytes) else json.dumps(body).encode()
    return answer


def test_health_names_the_failing_checks_and_reads_the_consumers_counts():
    health = ServiceHealth.of(response(503, {"checks": {
        "cluster": {"ok": False, "detail": "not connected"},
        "consumer": {"ok": True, "detail": {"received": 7, "taken": 9, "transactions": 3}}}}))
    assert not health.healthy and health.reason() == "HTTP 503 (cluster: not connected)"
    assert health.consumer() == ConsumerCounts(7, 9, 3)
    assert health.consumer() + ConsumerCounts(1, None, None) == ConsumerCounts(8, None, None)
    assert ServiceHealth.of(response(502, b"<html>")).reason() == "HTTP 502"
    with pytest.raises(ProbeError):
        health.offered_again()


def test_a_copys_consumer_counts_are_read_whole_and_compared_over_time():
    detail = {"state": "running", "received": 10, "taken": 12, "transactions": 4, "dropped": 3, "redelivered": 2,
              "not_committed": 1, "unanswered": 0}
    later = ServiceHealth.of(response(200, {"checks": {"consumer": {"ok": True, "detail": detail}}})).consumer()
    assert later == ConsumerCounts(10, 12, 4, dropped=3, redelivered=2, not_committed=1, unanswered=0)
    assert later - ConsumerCounts(4, 5, 2, 1, 0, 0, 0) == ConsumerCounts(6, 7, 2, 2, 2, 1, 0)
    assert later - ConsumerCounts(4, 5, 2) == ConsumerCounts(6, 7, 2)  # older code: no dropped etc.


def test_listings_and_the_facade_view_are_read_into_entries():
    listing = Listing.of({"copy": "messages-1", "messages": [{"uuid": "a", "msg": "m1"}]})
    assert listing.uuids() == ["a"] and listing.count is None
    view = FacadeView.of({"logging": {"copy": "logging-2", "count": 1, "messages": [{"uuid": "a", "msg": "m1"}]},
                          "merged": [{"uuid": "a", "msg": "m1", "logged_by": "logging-2",
                                      "received_by": "messages-1"}],
                          "messages": {"copy": None, "error": "no messages copy"}})
    assert view.logged.uuids() == ["a"] and view.merged[0].received_by == "messages-1"
    assert (view.messages_copy, view.messages_error) == (None, "no messages copy")
    with pytest.raises(ProbeError):
        Listing.of({"error": "unavailable"})
