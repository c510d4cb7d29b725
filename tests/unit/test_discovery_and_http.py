import json
import json as json_module

import pytest

from lab_common.discovery import CachedDiscovery, NoCopies
from lab_common.errors import Unavailable
from lab_common.http import HttpResponse, ServiceClient, TransportError
from tests.unit.fakes import FakeClock, FakeDiscovery


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


def test_a_service_the_source_lists_without_copies_is_not_a_source_fault():
    """The lab's Task 3 has no messages copies: the config server answers, with none."""

    def lookup(service):
        if service == "messages-service":
            raise NoCopies("config server lists no copies of 'messages-service'")
        return ["http://a"]

    discovery = CachedDiscovery(lookup, ttl=1, source="fake", clock=FakeClock())
    with pytest.raises(NoCopies):
        discovery.addresses("messages-service")
    assert discovery.status() == {"source": "fake", "reachable": True}
    assert discovery.addresses("logging-service") == ["http://a"]


class FakePool:
    """A fake of HttpPool: answers per base URL an exception to raise or a (status, body) pair."""

    def __init__(self, behaviour):
        self.behaviour = behaviour
        self.calls = []

    def request(self, method, base, path, *, timeout, json=None, params=None, stream=False):
        self.calls.append(base)
        outcome = self.behaviour[base]
        if isinstance(outcome, Exception):
            raise outcome
        status, body = outcome
        return HttpResponse(status, json_module.dumps(body).encode())


def test_a_failed_copy_is_retried_on_another_copy():
    discovery = FakeDiscovery({"logging-service": ["http://dead", "http://live"]})
    refused = TransportError("ConnectionRefusedError")
    pool = FakePool({"http://dead": refused, "http://live": (201, {"ok": True})})
    client = ServiceClient("logging-service", discovery, pool, timeout=1, attempts=3, backoff=0)
    for _ in range(50):  # the copy tried first is random: until the dead one has been tried first
        reply = client.call("POST", "/logging", json={})
        assert reply.base_url == "http://live"
        if "http://dead" in pool.calls:
            break
    assert "logging-service" in discovery.invalidated


def test_all_copies_failing_is_unavailable_after_the_attempts():
    discovery = FakeDiscovery({"s": ["http://a", "http://b"]})
    timed_out = TransportError("TimeoutError")
    pool = FakePool({"http://a": (503, {}), "http://b": timed_out})
    client = ServiceClient("s", discovery, pool, timeout=1, attempts=3, backoff=0)
    with pytest.raises(Unavailable) as err:
        client.call("GET", "/x")
    assert len(err.value.details["attempts"]) == 3
    assert len(pool.calls) == 3


def test_a_call_with_a_window_reaches_a_copy_that_starts_after_its_attempts_failed():
    class Starting(FakePool):
        def request(self, method, base, path, **kwargs):
            if len(self.calls) == 5:  # the copy is up from the sixth call on
                self.behaviour[base] = (201, {"ok": True})
            return super().request(method, base, path, **kwargs)

    pool = Starting({"http://a": TransportError("ConnectionRefusedError")})
    client = ServiceClient("s", FakeDiscovery({"s": ["http://a"]}), pool, timeout=1, attempts=3, backoff=0)
    assert client.call("POST", "/logging", json={}, window=60).status == 201
    assert len(pool.calls) == 6


def test_a_4xx_reply_is_returned_not_retried():
    discovery = FakeDiscovery({"s": ["http://a"]})
    pool = FakePool({"http://a": (400, {"error": "bad_request"})})
    reply = ServiceClient("s", discovery, pool, timeout=1, attempts=3, backoff=0).call("POST", "/x")
    assert reply.status == 400 and len(pool.calls) == 1


def test_a_real_request_sends_json_and_query_and_reads_the_reply():
    """HttpPool against a real local HTTP server (no fake): body, headers, query, keep-alive reuse."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from lab_common.http import HttpPool

    seen = {"connections": set()}

    class Echo(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self):
            seen["connections"].add(self.client_address)
            seen["path"] = self.path
            seen["type"] = self.headers["Content-Type"]
            seen["body"] = self.rfile.read(int(self.headers["Content-Length"]))
            payload = b'{"ok": true}'
            self.send_response(201)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Echo)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    pool = HttpPool()
    try:
        base = f"http://127.0.0.1:{server.server_port}"
        replies = [pool.request("POST", base, "/logging", timeout=(1, 2), json={"msg": "Привіт"},
                                params={"a": "1 2"}) for _ in range(3)]
    finally:
        pool.clear()
        server.shutdown()
    assert all(r.status == 201 and json.loads(r.data) == {"ok": True} for r in replies)
    assert seen["type"] == "application/json" and json.loads(seen["body"]) == {"msg": "Привіт"}
    assert seen["path"] == "/logging?a=1+2"
    assert len(seen["connections"]) == 1  # one keep-alive connection served all three


def test_a_spooled_answer_comes_whole_and_one_cut_short_fails_over(monkeypatch):
    """Real local servers: a large GET answer is kept in a file as it came; a copy that stops mid-way
    counts as failed and another copy is asked."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from lab_common import http

    monkeypatch.setattr(http, "SPOOL_IN_MEMORY", 1000)  # this answer goes to disk
    body = json.dumps({"copy": "whole", "messages": [{"n": i, "msg": "Привіт"} for i in range(20_000)]}).encode()

    class Whole(BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    class CutShort(Whole):
        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body[:5000])
            self.close_connection = True

    servers = [ThreadingHTTPServer(("127.0.0.1", 0), handler) for handler in (Whole, CutShort)]
    for server in servers:
        threading.Thread(target=server.serve_forever, daemon=True).start()
    whole, cut = (f"http://127.0.0.1:{server.server_port}" for server in servers)
    try:
        client = ServiceClient("s", FakeDiscovery({"s": [cut, whole]}), http.HttpPool(), timeout=(1, 2),
                               attempts=4, backoff=0)
        replies = [client.call("GET", "/logging", spool=True) for _ in range(4)]  # the order of copies is random
    finally:
        for server in servers:
            server.shutdown()
    for reply in replies:
        assert reply.base_url == whole and reply.status == 200 and reply.body == {}
        assert reply.file.read() == body
        reply.file.close()


def test_a_keep_alive_connection_the_copy_closed_while_idle_is_replaced_once():
    """A real server that answers as HTTP/1.1 keep-alive, then drops the connection: the pool's next
    request through it fails on the stale socket and goes out once more on a new connection."""
    import socket
    import threading

    from lab_common.http import HttpPool

    listener = socket.create_server(("127.0.0.1", 0))
    answered = []

    def serve():
        for _ in range(2):
            connection, _ = listener.accept()
            with connection:
                connection.recv(65536)
                answered.append(1)
                connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Type: application/json\r\n\r\n{}")

    threading.Thread(target=serve, daemon=True).start()
    pool = HttpPool()
    base = f"http://127.0.0.1:{listener.getsockname()[1]}"
    try:
        first = pool.request("GET", base, "/x", timeout=2)
        second = pool.request("GET", base, "/x", timeout=2)
    finally:
        pool.clear()
        listener.close()
    assert first.status == second.status == 200 and len(answered) == 2
