"""Where a request's Python CPU goes inside the facade and a logging copy: each service's real app
(its `build`, against the bench's running system) driven in-process from one thread through Flask's
test client, with the calls to its ports timed in thread CPU time.

    python -m labctl.bench.pieces --config-server URL --cluster-name NAME --members H:P,... [--requests N]

prints one JSON object: per service, CPU milliseconds per request in all (every thread of this
process: the handler's and the Hazelcast client's reactor), in the handler's thread, and in each timed
piece; "rest of the handler" is the handler's thread less its pieces (Flask, parsing, the answer).
The test client's own work (building the request) is outside the measured app call.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import logging
import os
import subprocess
import sys
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

WARM_UP = 100


@dataclass
class Piece:
    name: str
    ms_per_request: float


@dataclass
class ServicePieces:
    service: str
    requests: int
    process_ms: float  # every thread of the process, per request
    handler_ms: float  # the thread that ran the request, per request
    pieces: list[Piece] = field(default_factory=list)  # timed calls inside the handler, per request

    @property
    def rest_ms(self) -> float:
        return self.handler_ms - sum(p.ms_per_request for p in self.pieces)


class ThreadCpu:
    """Thread CPU seconds spent inside the wrapped callables, by name, while `measuring`."""

    def __init__(self):
        self.spent: dict[str, float] = defaultdict(float)
        self.measuring = False

    @contextlib.contextmanager
    def timing(self, owner: type, method: str, name: str) -> Iterator[None]:
        original = getattr(owner, method)

        @functools.wraps(original)
        def timed(*args, **kwargs):
            began = time.thread_time()
            try:
                return original(*args, **kwargs)
            finally:
                if self.measuring:
                    self.spent[name] += time.thread_time() - began

        setattr(owner, method, timed)
        try:
            yield
        finally:
            setattr(owner, method, original)


def drive(app, request: Callable[[object, str], None], requests: int, cpu: ThreadCpu) -> tuple[float, float]:
    """Runs `request(client, key)` `requests` times after a warm-up, with a different key each time;
    answers (process, handler thread) CPU seconds spent inside the app."""
    handler = {"s": 0.0}
    wsgi_app = app.wsgi_app

    def measured_app(environ, start_response):
        began = time.thread_time()
        try:
            return wsgi_app(environ, start_response)
        finally:
            if cpu.measuring:
                handler["s"] += time.thread_time() - began

    app.wsgi_app = measured_app
    client = app.test_client()
    for i in range(WARM_UP):
        request(client, f"warm-up-{i}")
    cpu.measuring = True
    began = time.process_time()
    for i in range(requests):
        request(client, str(i))
    spent = time.process_time() - began
    cpu.measuring = False
    return spent, handler["s"]


def _per_request(seconds: float, requests: int) -> float:
    return round(seconds * 1000 / requests, 4)


def measure_facade(settings, requests: int) -> ServicePieces:
    from facade_service.adapters.hazelcast import HazelcastQueue
    from facade_service.adapters.http import LoggingClient
    from facade_service.bootstrap import build

    cpu = ThreadCpu()
    with cpu.timing(LoggingClient, "log", "call to logging (client side)"), \
            cpu.timing(HazelcastQueue, "offer", "queue offer (client side)"):
        app, close = build(settings)
        try:
            _connected(app)

            def post(client, key):
                answer = client.post("/facade", data={"msg": f"pieces-{key}"})
                assert answer.status_code == 201, answer.data

            process_s, handler_s = drive(app, post, requests, cpu)
        finally:
            close()
    return _result("facade", requests, process_s, handler_s, cpu)


def measure_logging(settings, requests: int) -> ServicePieces:
    from logging_service.adapters.hazelcast import HazelcastMessageStore
    from logging_service.bootstrap import build

    cpu = ThreadCpu()
    logger = logging.getLogger("logging_service.service")
    with cpu.timing(HazelcastMessageStore, "add_if_absent", "put_if_absent (client side)"), \
            cpu.timing(type(logger), "info", "the log line"):
        app, close = build(settings)
        try:
            _connected(app)
            def post(client, key):
                answer = client.post("/logging", json={"uuid": f"pieces-{key}", "msg": f"pieces-{key}"})
                assert answer.status_code == 201, answer.data

            process_s, handler_s = drive(app, post, requests, cpu)
        finally:
            close()
    return _result("logging", requests, process_s, handler_s, cpu)


def _connected(app, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    client = app.test_client()
    while client.get("/health").status_code != 200:
        if time.monotonic() > deadline:
            raise RuntimeError(f"not healthy within {timeout:.0f}s: {client.get('/health').json}")
        time.sleep(0.2)


def _result(service: str, requests: int, process_s: float, handler_s: float, cpu: ThreadCpu) -> ServicePieces:
    return ServicePieces(service, requests, _per_request(process_s, requests), _per_request(handler_s, requests),
                         [Piece(name, _per_request(s, requests)) for name, s in cpu.spent.items()])


def run_pieces(config_server: str, cluster_name: str, members: list[str], requests: int,
               timeout: float = 300.0) -> tuple[list[ServicePieces], str]:
    """Runs this module in a process of its own (its CPU is all the measured work); answers the results
    and what went wrong, if anything."""
    from labctl.launcher import ROOT

    command = [sys.executable, "-m", "labctl.bench.pieces", "--config-server", config_server,
               "--cluster-name", cluster_name, "--members", ",".join(members), "--requests", str(requests)]
    try:
        done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return [], f"not done within {timeout:.0f}s"
    if done.returncode != 0:
        return [], f"exit {done.returncode}: {done.stderr[-400:]}"
    services = json.loads(done.stdout.splitlines()[-1])
    return [ServicePieces(**{**s, "pieces": [Piece(**p) for p in s["pieces"]]}) for s in services], ""


def main(argv: list[str] | None = None) -> int:
    from dataclasses import asdict

    from facade_service.settings import FacadeSettings as Settings
    from lab_common.logs import configure_logging
    from logging_service.settings import LoggingSettings

    parser = argparse.ArgumentParser(prog="python -m labctl.bench.pieces", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config-server", required=True)
    parser.add_argument("--cluster-name", required=True)
    parser.add_argument("--members", required=True, help="host:port,...")
    parser.add_argument("--requests", type=int, default=2000)
    args = parser.parse_args(argv)
    common = {"LAB_CONFIG_SERVER": args.config_server, "HZ_CLUSTER_NAME": args.cluster_name,
              "HZ_MEMBERS": args.members}
    configure_logging("bench-pieces")
    # the services' log lines are part of the work measured, written where they cost what they cost
    # in a service (a file), not to the bench's terminal
    logging.getLogger().handlers[0].stream = open(os.devnull, "w")  # noqa: SIM115
    own_map = f"bench-pieces-{uuid.uuid4().hex[:8]}"
    facade = Settings.load("facade-service", default_port=1, environ=common, argv=[], instance="facade-pieces")
    logging_copy = LoggingSettings.load("logging-service", default_port=1,
                                        environ={**common, "LAB_LOGGING_MAP": own_map}, argv=[],
                                        instance="logging-pieces")
    try:
        results = [asdict(measure_facade(facade, args.requests)), asdict(measure_logging(logging_copy, args.requests))]
    finally:
        _destroy(logging_copy, [own_map, own_map + "-meta"])
    sys.stdout.write(json.dumps(results) + "\n")
    return 0


def _destroy(settings, maps: list[str]) -> None:
    from lab_common import hazelcast_fixes
    from lab_common.cluster import ClusterConnection

    hazelcast_fixes.apply()
    connection = ClusterConnection(settings).start()
    try:
        if connection.wait_connected(10):
            for name in maps:
                connection.client().get_map(name).blocking().destroy()
    finally:
        connection.close()


if __name__ == "__main__":
    sys.exit(main())
