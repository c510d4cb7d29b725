"""The load the bench puts on a system: keep-alive POST clients (on labctl.load's PostClient), sequential
GETs, the queue-latency probe and slow clients that hold connections open."""

from __future__ import annotations

import socket
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import requests

from labctl.bench.results import Gets, Latency, QueueLatency
from labctl.load import LOAD_ERRORS, PostClient

REQUEST_TIMEOUT = 10.0
SLOW_REQUEST_TIMEOUT = 60.0

Out = Callable[[str], None]


@dataclass
class LoadRun:
    clients: int
    wall_s: float = 0.0
    acknowledged: int = 0
    failures: Counter = field(default_factory=Counter)
    latencies: list[float] = field(default_factory=list)  # seconds, acknowledged POSTs only

    @property
    def throughput(self) -> float:
        return self.acknowledged / self.wall_s if self.wall_s else 0.0


def post_load(url: str, clients: int, *, seconds: float, max_requests: int, tag: str,
              progress: Out | None = None, progress_every: float = 5.0,
              on_window_open: Callable[[], None] | None = None) -> LoadRun:
    """`clients` threads, each with its own keep-alive connection, POST `msg=...` until the time or the
    count runs out; a 201 counts as acknowledged. `on_window_open` runs as the clients, connected, start."""
    lock = threading.Lock()
    issued = 0
    per_client: list[LoadRun] = [LoadRun(clients) for _ in range(clients)]
    window: dict[str, float] = {}

    def open_window() -> None:  # runs once, as the barrier lets every client go at the same moment
        if on_window_open:
            on_window_open()
        window["began"] = time.monotonic()
        window["stop_at"] = window["began"] + seconds

    start = threading.Barrier(clients + 1, action=open_window)
    health_path = urlsplit(url).path.rsplit("/", 1)[0] + "/health"

    def client(result: LoadRun) -> None:
        nonlocal issued
        with PostClient(url, REQUEST_TIMEOUT) as connection:
            try:
                connection.request("GET", health_path)  # opens the keep-alive connection
            except LOAD_ERRORS:
                pass
            start.wait()
            while time.monotonic() < window["stop_at"]:
                with lock:
                    if issued >= max_requests:
                        return
                    issued += 1
                    number = issued
                outcome = connection.post(f"{tag}-{number}", want_uuid=False)
                if outcome.status == 201:
                    result.latencies.append(outcome.elapsed)
                    result.acknowledged += 1
                else:
                    result.failures[outcome.error if outcome.status is None else f"HTTP {outcome.status}"] += 1

    threads = [threading.Thread(target=client, args=(r,), name=f"bench-client-{i}", daemon=True)
               for i, r in enumerate(per_client)]
    for thread in threads:
        thread.start()
    start.wait(timeout=60)
    began = last_report = window["began"]
    for thread in threads:
        while thread.is_alive():
            thread.join(timeout=1.0)
            now = time.monotonic()
            if progress and now - last_report >= progress_every:
                done = sum(r.acknowledged for r in per_client)
                progress(f"    {done} acknowledged of {max_requests}, {done / (now - began):.0f} msg/s")
                last_report = now
            if now > window["stop_at"] + REQUEST_TIMEOUT + 5:
                break  # a client stuck past every timeout: leave it, it is a daemon thread
    merged = LoadRun(clients, wall_s=time.monotonic() - began)
    for result in per_client:
        merged.acknowledged += result.acknowledged
        merged.failures.update(result.failures)
        merged.latencies.extend(result.latencies)
    return merged


def timed_gets(url: str, *, samples: int, budget_s: float, timeout: float = SLOW_REQUEST_TIMEOUT) -> Gets:
    """Sequential GETs on one keep-alive session, at most `samples` and within `budget_s` (at least one)."""
    session = requests.Session()
    latencies, statuses, sizes, counts = [], Counter(), [], []
    deadline = time.monotonic() + budget_s
    try:
        while sum(statuses.values()) < samples:
            began = time.perf_counter()
            try:
                response = session.get(url, timeout=timeout)
            except requests.RequestException as err:
                statuses[type(err).__name__] += 1
            else:
                statuses[str(response.status_code)] += 1
                if response.status_code == 200:
                    latencies.append(time.perf_counter() - began)
                    sizes.append(len(response.content))
                    counts.append(response.json().get("count"))
            if time.monotonic() > deadline:
                break
    finally:
        session.close()
    failed = sum(n for status, n in statuses.items() if status != "200")
    return Gets(url=url, latency=Latency.of(latencies), latencies_ms=[round(s * 1000, 3) for s in latencies],
                statuses=dict(statuses), failed=failed, bytes=max(sizes) if sizes else None,
                messages_returned=max((c for c in counts if c is not None), default=None))


def queue_latency(facade_url: str, messages_urls: Sequence[str], *, samples: int, tag: str, warmup: int = 3,
                  poll_interval: float = 0.003, timeout: float = 10.0) -> QueueLatency:
    """POST with a known uuid, then poll every messages copy until one shows it: 201 -> visible.

    The first `warmup` samples open connections and wake the consumers; they are not counted.
    `seen_at` names the copies by URL."""
    post_client = PostClient(facade_url + "/facade", REQUEST_TIMEOUT)
    poll_sessions = [requests.Session() for _ in messages_urls]
    latencies, lower_bounds, poll_rtts, missing, failed = [], [], [], 0, Counter()
    receivers: Counter = Counter()
    lock = threading.Lock()

    def poll(session: requests.Session, url: str, key: str, seen: threading.Event, found: dict, deadline: float):
        while not seen.is_set() and time.perf_counter() < deadline:
            began = time.perf_counter()
            try:
                response = session.get(url + "/messages", timeout=REQUEST_TIMEOUT)
            except requests.RequestException:
                time.sleep(poll_interval)
                continue
            ended = time.perf_counter()
            poll_rtts.append(ended - began)
            if response.status_code == 200 and key in response.text:
                with lock:
                    if not seen.is_set():
                        found.update(began=began, ended=ended, url=url)
                        seen.set()
                return
            time.sleep(poll_interval)

    try:
        for i in range(-warmup, samples):
            key = f"bench-e2e-{tag}-{i}"
            outcome = post_client.post(key, headers={"Idempotency-Key": key}, want_uuid=False)
            acknowledged_at = time.perf_counter()
            if outcome.status is None:
                failed[outcome.error] += 1
                continue
            if outcome.status != 201:
                failed[f"HTTP {outcome.status}"] += 1
                continue
            seen, found = threading.Event(), {}
            pollers = [threading.Thread(target=poll, args=(s, u, key, seen, found, acknowledged_at + timeout))
                       for s, u in zip(poll_sessions, messages_urls, strict=True)]
            for poller in pollers:
                poller.start()
            for poller in pollers:
                poller.join(timeout + REQUEST_TIMEOUT)
            if i < 0:
                continue
            if not found:
                missing += 1
                continue
            latencies.append(found["ended"] - acknowledged_at)
            lower_bounds.append(max(0.0, found["began"] - acknowledged_at))
            receivers[found["url"]] += 1
    finally:
        post_client.close()
        for session in poll_sessions:
            session.close()
    return QueueLatency(samples=samples, warmup=warmup, latency=Latency.of(latencies),
                        lower_bound=Latency.of(lower_bounds), poll_rtt=Latency.of(poll_rtts),
                        latencies_ms=[round(s * 1000, 3) for s in latencies], missing=missing,
                        failures=dict(failed), seen_at=dict(receivers))


def slow_request_head(host: str, port: int, path: str) -> bytes:
    """A POST's request line and headers without the blank line that ends them: sent whole, it still
    leaves the server waiting for the rest."""
    return (f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: application/x-www-form-urlencoded\r\n"
            f"Content-Length: 8\r\nX-Bench-Slow: {'s' * 200}\r\n").encode()


class SlowClients:
    """Connections that each send a POST's headers a byte a second and never finish them; one thread
    drips a byte into every open connection each second, and opens a new one in place of any the
    server closes, so `count` of them press on the server all along. Close them all with `close()`."""

    def __init__(self, url: str, count: int, *, interval: float = 1.0):
        parts = urlsplit(url)
        self._address = (parts.hostname, parts.port)
        self._head = slow_request_head(parts.hostname, parts.port, parts.path)
        self._count = count
        self._interval = interval
        self._sockets: list[socket.socket] = []
        self._sent: list[int] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._drip, name="bench-slow-clients", daemon=True)
        self.opened = 0
        self.reopened = 0  # opened in place of one the server closed (e.g. after its header timeout)

    def open(self) -> SlowClients:
        for _ in range(self._count):
            sock = self._connect()
            if sock is not None:
                self._sockets.append(sock)
                self._sent.append(0)
        self.opened = len(self._sockets)
        self._thread.start()
        return self

    def _connect(self) -> socket.socket | None:
        try:
            sock = socket.create_connection(self._address, timeout=REQUEST_TIMEOUT)
        except OSError:
            return None
        sock.setblocking(False)
        return sock

    def _drip(self) -> None:
        while not self._stop.is_set():
            for i, sock in enumerate(self._sockets):
                if sock.fileno() < 0 or not _is_open(sock):
                    sock.close()  # the server let it go: another takes its place
                    fresh = self._connect()
                    if fresh is None:
                        continue
                    self._sockets[i], self._sent[i], sock = fresh, 0, fresh
                    self.reopened += 1
                if self._sent[i] >= len(self._head):
                    continue
                try:
                    self._sent[i] += sock.send(self._head[self._sent[i]:self._sent[i] + 1])
                except OSError:  # full, or the server let it go: seen on the next round
                    continue
            self._stop.wait(self._interval)

    def still_open(self) -> int:
        """Connections the server has not closed (a closed one reads as end of file)."""
        return sum(1 for sock in self._sockets if sock.fileno() >= 0 and _is_open(sock))

    def close(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)
        for sock in self._sockets:
            sock.close()


def _is_open(sock: socket.socket) -> bool:
    """Whether the server still waits for the rest of the request: nothing to read yet."""
    try:
        sock.recv(1, socket.MSG_PEEK)
    except BlockingIOError:
        return True
    except OSError:
        return False
    return False  # end of file, or an answer (say a timeout's 408): the server is done with it


class StatusPageReader:
    """What an open status page does: GET /status.json every second, on one keep-alive session."""

    def __init__(self, url: str, period_s: float = 1.0):
        self._url = url
        self._period = period_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="status-page", daemon=True)
        self.answered = 0

    def start(self) -> StatusPageReader:
        self._thread.start()
        return self

    def stop(self) -> int:
        """Stop reading; answers how many reads got a 200."""
        self._stop.set()
        self._thread.join(timeout=REQUEST_TIMEOUT + 1)
        return self.answered

    def _run(self) -> None:
        with requests.Session() as session:
            while not self._stop.is_set():
                try:
                    if session.get(self._url, timeout=REQUEST_TIMEOUT).status_code == 200:
                        self.answered += 1
                except requests.RequestException:
                    pass
                self._stop.wait(self._period)
