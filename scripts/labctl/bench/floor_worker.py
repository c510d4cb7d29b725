"""The processes the floor measurement runs, each doing one part of a POST and nothing else.

    python -m labctl.bench.floor_worker flask --port P      a tiny Flask app served by lab_common.serving
    python -m labctl.bench.floor_worker echo --port P       a trivial HTTP server that answers 201 + JSON
    python -m labctl.bench.floor_worker caller --url U ...  ServiceClient calls POST /logging, as the facade does
    python -m labctl.bench.floor_worker cluster ...         put_if_absent, offer, consumer transactions

The caller and cluster workers print one JSON line per part: operations done and CPU milliseconds
spent, by payer (this process, and each member from /proc), over the measured window only.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from labctl.processes import ProcessMeter

log = logging.getLogger(__name__)

FLOOR_SERVICE = "bench-floor"
CHUNK = 500  # items per put_all / add_all while preparing a consumer part
MAX_CONSUMER_ITEMS = 6400


@dataclass
class PartResult:
    part: str
    ops: int = 0
    seconds: float = 0.0
    cpu_ms: dict[str, float] = field(default_factory=dict)  # payer -> CPU milliseconds in the window
    batch: int | None = None
    error: str = ""


def run_callers(callers: int, seconds: float, op: Callable[[int, int], int], *,
                member_pids: Mapping[str, int] | None = None, warm_up: Callable[[int], None] | None = None,
                part: str = "") -> PartResult:
    """`callers` threads call `op(caller, i)` until `seconds` pass or it answers 0 (nothing left);
    `op` answers how many operations it completed. CPU is this process's (all its threads) and each
    member's, between the moment every caller is ready and the moment the last one is done."""
    meter = ProcessMeter()
    members = dict(member_pids or {})
    counts = [0] * callers
    errors: list[str] = []
    marks: dict[str, object] = {}

    def open_window() -> None:
        own = os.times()
        marks.update(began=time.monotonic(), cpu=own.user + own.system, members=meter.cpu_ticks(members))

    start = threading.Barrier(callers + 1, action=open_window)

    def caller(index: int) -> None:
        try:
            if warm_up:
                warm_up(index)
        except Exception as err:  # reported with the part; the window still opens for the others
            errors.append(f"{type(err).__name__}: {err}")
        start.wait()
        deadline = marks["began"] + seconds
        i = 0
        try:
            while time.monotonic() < deadline:
                done = op(index, i)
                if done == 0:
                    return
                counts[index] += done
                i += 1
        except Exception as err:
            errors.append(f"{type(err).__name__}: {err}")

    threads = [threading.Thread(target=caller, args=(i,), daemon=True) for i in range(callers)]
    for thread in threads:
        thread.start()
    start.wait(timeout=60)
    for thread in threads:
        thread.join(timeout=seconds + 60)
    own = os.times()
    ended, members_after = time.monotonic(), meter.cpu_ticks(members)
    cpu_ms = {"client": round((own.user + own.system - marks["cpu"]) * 1000, 1)}
    for name, ticks in members_after.items():
        cpu_ms[name] = round((ticks - marks["members"].get(name, ticks)) * 1000 / meter.clock_ticks, 1)
    return PartResult(part=part, ops=sum(counts), seconds=round(ended - marks["began"], 3), cpu_ms=cpu_ms,
                      error=errors[0] if errors else "")


# --- the HTTP parts ------------------------------------------------------------------------------


def serve_flask(port: int, server: str) -> None:
    """A tiny app on the project's own base app and server: form `msg=...` in, small JSON out."""
    from facade_service.settings import FacadeSettings as Settings
    from lab_common.logs import configure_logging
    from lab_common.serving import serve

    settings = Settings.load(FLOOR_SERVICE, default_port=port, environ=os.environ,
                             argv=["--port", str(port), "--server", server])
    configure_logging(settings.instance, "WARNING")

    def build():
        from flask import jsonify

        from lab_common.web import add_health, create_base_app, request_fields, text_field

        app = create_base_app(__name__, settings)
        add_health(app, settings, {})

        @app.post("/floor")
        def post():
            msg = text_field(request_fields(), "msg")
            return jsonify({"uuid": str(uuid.uuid4()), "msg": msg}), 201

        return app, lambda: None

    serve(settings, build)


class _Answer201(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the logging copies answer
    body = json.dumps({"uuid": "00000000-0000-0000-0000-000000000000", "logged_by": FLOOR_SERVICE}).encode()

    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.send_response(201)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, format, *args):  # quiet
        pass


def serve_echo(port: int) -> None:
    server = ThreadingHTTPServer(("127.0.0.1", port), _Answer201)
    server.daemon_threads = True
    server.serve_forever()


def call_logging(url: str, callers: int, seconds: float) -> PartResult:
    """The client side of the facade's call to logging: lab_common.http's ServiceClient on its
    connection pool, sized and timed by the same settings as the facade's."""
    from facade_service.settings import FacadeSettings as Settings
    from lab_common.http import HttpPool, ServiceClient

    settings = Settings.load(FLOOR_SERVICE, default_port=1, environ=os.environ, argv=[])

    class OneCopy:
        def addresses(self, service: str) -> list[str]:
            return [url]

        def invalidate(self, service: str) -> None:
            pass

        def status(self) -> dict:
            return {}

    http = HttpPool(size=settings.threads * 2)
    client = ServiceClient("logging-service", OneCopy(), http, timeout=settings.http_timeout,
                           attempts=settings.http_attempts)

    def call(caller: int, i: int) -> int:
        reply = client.call("POST", "/logging", json={"uuid": str(uuid.uuid4()), "msg": f"floor-{caller}-{i}"})
        return 1 if reply.status == 201 else 0

    try:
        return run_callers(callers, seconds, call, warm_up=lambda caller: call(caller, -1), part="call_client")
    finally:
        http.clear()


# --- the cluster parts ---------------------------------------------------------------------------


def cluster_parts(cluster_name: str, members: list[str], member_pids: Mapping[str, int], callers: int,
                  seconds: float, batches: list[int], emit: Callable[[PartResult], None]) -> None:
    """put_if_absent, offer and consumer transactions at each batch size, on objects of unique names,
    destroyed afterwards."""
    import orjson
    from hazelcast.config import IndexType
    from hazelcast.core import HazelcastJsonValue

    from facade_service.settings import FacadeSettings as Settings
    from lab_common import hazelcast_fixes
    from lab_common.cluster import ClusterConnection
    from lab_common.contracts import encode_queue_item
    from messages_service.adapters.hazelcast import HazelcastInbox

    settings = Settings.load(FLOOR_SERVICE, default_port=1, environ={}, argv=[], hz_cluster_name=cluster_name,
                             hz_members=tuple(members))
    hazelcast_fixes.apply()  # the client as the services run it
    connection = ClusterConnection(settings).start()
    tag = uuid.uuid4().hex[:8]
    made: list[tuple[str, str]] = []

    def proxy(kind: str, name: str):
        if (kind, name) not in made:
            made.append((kind, name))
        return connection.proxy(kind, name)

    def logged_entry(key: str, msg: str) -> HazelcastJsonValue:
        return HazelcastJsonValue(orjson.dumps({"uuid": key, "msg": msg, "logged_by": FLOOR_SERVICE,
                                                "seq": time.time_ns() // 1000}).decode())

    try:
        if not connection.wait_connected(30):
            raise RuntimeError(f"no connection to {cluster_name} at {','.join(members)}: {connection.status}")
        log_map = proxy("map", f"bench-floor-{tag}-log")
        log_map.add_index(attributes=["seq"], index_type=IndexType.SORTED, name=f"bench-floor-{tag}-seq")

        def put(caller: int, i: int) -> int:
            key = f"{caller}-{i}"
            log_map.put_if_absent(key, logged_entry(key, f"floor-{key}"))
            return 1

        emit(run_callers(callers, seconds, put, member_pids=member_pids, part="put_if_absent",
                         warm_up=lambda caller: put(caller, -1)))

        queue = proxy("queue", f"bench-floor-{tag}-offer")

        def offer(caller: int, i: int) -> int:
            queue.offer(encode_queue_item(f"{caller}-{i}", f"floor-{caller}-{i}"))
            return 1

        emit(run_callers(callers, seconds, offer, member_pids=member_pids, part="offer",
                         warm_up=lambda caller: offer(caller, -1)))

        for batch in batches:
            names = tuple(f"bench-floor-{tag}-{what}{batch}" for what in ("queue", "received", "log"))
            items = min(MAX_CONSUMER_ITEMS, max(2000, batch * callers * 4))
            keys = [f"{batch}-{n}" for n in range(items)]
            for start in range(0, items, CHUNK):
                chunk = keys[start:start + CHUNK]
                proxy("map", names[2]).put_all({k: logged_entry(k, f"floor-{k}") for k in chunk})
                proxy("queue", names[0]).add_all([encode_queue_item(k, f"floor-{k}") for k in chunk])
            proxy("map", names[1])
            inbox = HazelcastInbox(connection, *names[:2])

            def consume(caller: int, i: int, inbox=inbox, batch=batch) -> int:
                return len(inbox.receive_batch(FLOOR_SERVICE, batch, 0.05).recorded)

            result = run_callers(callers, seconds, consume, member_pids=member_pids, part="consumer_tx")
            result.batch = batch
            emit(result)
    finally:
        for kind, name in made:
            try:
                getter = connection.client().get_map if kind == "map" else connection.client().get_queue
                getter(name).blocking().destroy()
            except Exception:  # a floor object left behind costs a little member memory, nothing more
                log.warning("could not destroy %s %s", kind, name)
        connection.close()


# --- entry point ---------------------------------------------------------------------------------


def _emit(result: PartResult) -> None:
    sys.stdout.write(json.dumps(asdict(result)) + "\n")
    sys.stdout.flush()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m labctl.bench.floor_worker", description=__doc__)
    sub = parser.add_subparsers(dest="what", required=True)
    for name in ("flask", "echo"):
        sub.add_parser(name).add_argument("--port", type=int, required=True)
    sub.choices["flask"].add_argument("--server", default="granian", help="as the system's services")
    caller = sub.add_parser("caller")
    caller.add_argument("--url", required=True)
    cluster = sub.add_parser("cluster")
    cluster.add_argument("--cluster-name", required=True)
    cluster.add_argument("--members", required=True, help="host:port,...")
    cluster.add_argument("--member-pids", default="", help="name=pid,...")
    cluster.add_argument("--batches", default="1,10,50")
    for p in (caller, cluster):
        p.add_argument("--callers", type=int, default=32)
        p.add_argument("--seconds", type=float, default=3.0)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    if args.what == "flask":
        serve_flask(args.port, args.server)
    elif args.what == "echo":
        serve_echo(args.port)
    elif args.what == "caller":
        _emit(call_logging(args.url, args.callers, args.seconds))
    else:
        pids = dict(item.split("=", 1) for item in args.member_pids.split(",") if item)
        cluster_parts(args.cluster_name, args.members.split(","), {n: int(p) for n, p in pids.items()},
                      args.callers, args.seconds, [int(b) for b in args.batches.split(",") if b], _emit)
    return 0


if __name__ == "__main__":
    sys.exit(main())
