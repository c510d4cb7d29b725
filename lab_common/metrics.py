"""Prometheus metrics every service exposes at GET /metrics, in the default registry.

Each service process serves from one worker (lab_common.serving), so the default registry of that
process is the service's whole story: no multiprocess mode. The metrics are module-level: one set per
process, however many apps a test builds. The queue's depth comes from the members' own metrics
(hazelcast/jmx-exporter.yaml), where it is exact, not from a copy's last read.
"""

from __future__ import annotations

import time

from flask import Flask, Response, g, request
from prometheus_client import CONTENT_TYPE_LATEST, Counter, Gauge, Histogram, generate_latest

# seconds: a POST takes ~2-20 ms under load, a full read of 100k seconds
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

REQUESTS = Counter("lab_http_requests", "HTTP requests answered", ["route", "method", "status"])
REQUEST_SECONDS = Histogram("lab_http_request_duration_seconds",
                            "time to answer an HTTP request (until the first byte of a streamed answer)",
                            ["route", "method"], buckets=LATENCY_BUCKETS)
GRPC_REQUESTS = Counter("lab_grpc_requests", "gRPC calls answered, by status code", ["method", "code"])
GRPC_SECONDS = Histogram("lab_grpc_request_duration_seconds", "time to answer a gRPC call", ["method"],
                         buckets=LATENCY_BUCKETS)
CALLS = Counter("lab_outgoing_calls", "calls to a copy of another service, by outcome (ok, failed)",
                ["service", "target", "outcome"])
CALL_SECONDS = Histogram("lab_outgoing_call_duration_seconds", "time of one call to one copy",
                         ["service", "target"], buckets=LATENCY_BUCKETS)
RETRIES = Counter("lab_outgoing_retries", "calls tried again on another copy after one failed", ["service"])
BREAKER_STATE = Gauge("lab_outgoing_breaker_state",
                      "the circuit breaker of a copy of another service: 0 closed, 1 half-open (probing), 2 open",
                      ["service", "target"])
BREAKER_OPENED = Counter("lab_outgoing_breaker_opened", "times a copy's circuit breaker opened (a failed probe too)",
                         ["service", "target"])
BREAKER_LEVELS = {"closed": 0, "half-open": 1, "open": 2}
HAZELCAST_SECONDS = Histogram("lab_hazelcast_operation_duration_seconds", "time of one Hazelcast operation",
                              ["operation"], buckets=LATENCY_BUCKETS)
HAZELCAST_ERRORS = Counter("lab_hazelcast_operation_errors", "Hazelcast operations that failed", ["operation"])
CONSUMED = Counter("lab_messages_consumed", "queue items recorded as received by this copy")
DUPLICATES_DROPPED = Counter("lab_messages_duplicates_dropped",
                             "queue items taken but dropped: their uuid was received before")
REDELIVERED = Counter("lab_messages_redelivered", "logged messages no copy received, offered to the queue again")
DISCOVERY_LOOKUPS = Counter("lab_discovery_lookups",
                            "address lookups, by result (cached, fetched, stale, failed, none)", ["service", "result"])


_enabled = True
_children: dict[tuple, object] = {}  # (metric, label values) -> its child: labels() costs more than the update


def _child(metric, *values: str):
    key = (metric, values)
    child = _children.get(key)
    if child is None:
        child = _children.setdefault(key, metric.labels(*values))
    return child


def enable(on: bool) -> None:
    """Switch recording on or off for this process (LAB_METRICS): off measures what the metrics cost."""
    global _enabled
    _enabled = on


def record_call(service: str, target: str, seconds: float, ok: bool) -> None:
    if _enabled:
        _child(CALL_SECONDS, service, target).observe(seconds)
        _child(CALLS, service, target, "ok" if ok else "failed").inc()


def record_grpc_request(method: str, code: str, seconds: float) -> None:
    if _enabled:
        _child(GRPC_SECONDS, method).observe(seconds)
        _child(GRPC_REQUESTS, method, code).inc()


def record_retry(service: str) -> None:
    if _enabled:
        _child(RETRIES, service).inc()


def record_breaker_state(service: str, target: str, state: str) -> None:
    if _enabled:
        _child(BREAKER_STATE, service, target).set(BREAKER_LEVELS[state])
        if state == "open":
            _child(BREAKER_OPENED, service, target).inc()


def record_lookup(service: str, result: str) -> None:
    if _enabled:
        _child(DISCOVERY_LOOKUPS, service, result).inc()


def record_consumed(received: int, dropped: int) -> None:
    if _enabled:
        CONSUMED.inc(received)
        DUPLICATES_DROPPED.inc(dropped)


def record_redelivered(count: int) -> None:
    if _enabled and count:
        REDELIVERED.inc(count)


def record_hazelcast(operation: str, seconds: float) -> None:
    if _enabled:
        _child(HAZELCAST_SECONDS, operation).observe(seconds)


def record_hazelcast_error(operation: str) -> None:
    if _enabled:
        _child(HAZELCAST_ERRORS, operation).inc()


def add_metrics(app: Flask) -> None:
    """Count and time every request of the app by its route, and answer GET /metrics."""

    @app.before_request
    def started():
        g.lab_started = time.perf_counter()

    @app.after_request
    def answered(response):
        started_at = g.pop("lab_started", None)
        if started_at is not None:
            route = request.url_rule.rule if request.url_rule is not None else "unmatched"
            _child(REQUEST_SECONDS, route, request.method).observe(time.perf_counter() - started_at)
            _child(REQUESTS, route, request.method, str(response.status_code)).inc()
        return response

    @app.get("/metrics")
    def metrics():
        return Response(generate_latest(), mimetype=CONTENT_TYPE_LATEST)


class hazelcast_operation:  # lower case: it reads as a `with` statement
    """Time one Hazelcast operation under `name` (e.g. "map.put_if_absent"); count it if it fails."""

    __slots__ = ("name", "started")

    def __init__(self, name: str):
        self.name = name

    def __enter__(self) -> None:
        self.started = time.perf_counter()

    def __exit__(self, kind, error, trace) -> bool:
        if _enabled:
            if kind is not None and issubclass(kind, Exception):
                record_hazelcast_error(self.name)
            record_hazelcast(self.name, time.perf_counter() - self.started)
        return False
