"""The floor: what each part of a POST costs alone on this machine, at the same number of concurrent
callers, as CPU per operation; and what one POST would cost if it were made of those parts and
nothing else (the floor sum).

Each part runs in processes of its own (labctl.bench.floor_worker), built from the project's own
functions, so that when the server, the HTTP client or the consumer changes, the floor follows.
"""

from __future__ import annotations

import contextlib
import http.client
import itertools
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence

from labctl.bench.load import post_load
from labctl.bench.results import Floor, FloorPart, FloorSum
from labctl.bench.systems import Side
from labctl.launcher import ROOT
from labctl.processes import ProcessMeter, ms_per_op

Out = Callable[[str], None]

# key -> what it is; the order of the floor table
PARTS = {
    "flask_request": "one Flask request on the project's server (form in, JSON out)",
    "call_client": "client side of one facade -> logging call (ServiceClient)",
    "put_if_absent": "map put_if_absent, 2 sync backups (JSON value, sorted index on seq, as the log)",
    "offer": "queue offer, 2 sync backups",
    "consumer_tx": "consumer transaction (HazelcastInbox.receive_batch), per message",
}
DEFAULT_BATCH = 10  # the consumer batch taken when the POST levels do not tell
CALLERS = 32  # concurrent callers of every part, as at the 32-client POST level
WORKER = [sys.executable, "-m", "labctl.bench.floor_worker"]
READY_TIMEOUT = 30.0


def floor_sum(floor: Floor, batch_seen: float | None = None) -> FloorSum:
    """One POST = a Flask request in the facade and one in logging, the client side of the facade's call
    to logging, a put_if_absent, an offer, and one message's share of a consumer transaction at the
    batch size the consumers took in the POST levels (DEFAULT_BATCH when that is unknown)."""
    by_part = {p.part: p for p in floor.parts if p.batch is None}
    wanted = batch_seen if batch_seen is not None else DEFAULT_BATCH
    consumer_ms, batch_label = consumer_share(floor, wanted)
    note = (f"consumers took {batch_seen:.1f} messages per transaction in the POST levels" if batch_seen is not None
            else "the consumers' batch size in the POST levels is unknown (their /health did not tell): "
                 f"{DEFAULT_BATCH} is taken")

    def ms(part: str) -> float | None:
        found = by_part.get(part)
        return found.cpu_ms_per_op if found else None

    terms = [("Flask request (facade, logging)", 2, ms("flask_request")),
             ("client side of the call to logging", 1, ms("call_client")),
             ("put_if_absent", 1, ms("put_if_absent")),
             ("offer", 1, ms("offer")),
             (f"consumer transaction per message, batch {batch_label}", 1, consumer_ms)]
    total = None if any(v is None for _, _, v in terms) else round(sum(n * v for _, n, v in terms), 4)
    return FloorSum(ms=total, terms=terms, batch=round(wanted, 1) if consumer_ms is not None else None,
                    batch_note=note)


def consumer_share(floor: Floor, batch: float) -> tuple[float | None, str]:
    """A message's share of a consumer transaction at `batch` messages per transaction: measured there,
    or interpolated between the two measured sizes around it, linearly in 1/batch (a transaction's own
    cost is shared by its messages); the nearest measured size outside them. Answers it and a label."""
    measured = sorted((p.batch, p.cpu_ms_per_op) for p in floor.parts
                      if p.part == "consumer_tx" and p.cpu_ms_per_op is not None)
    if not measured:
        return None, "?"
    for (low, low_ms), (high, high_ms) in itertools.pairwise(measured):
        if low < batch < high:
            weight = (1 / batch - 1 / high) / (1 / low - 1 / high)
            return round(weight * low_ms + (1 - weight) * high_ms, 4), f"{batch:g} (between {low} and {high})"
    nearest, nearest_ms = min(measured, key=lambda m: (abs(m[0] - batch), m[0]))
    return nearest_ms, f"{nearest}" if nearest == batch else f"{nearest} (nearest measured to {batch:g})"


def who_pays(part: FloorPart) -> str:
    """`server 0.61` or `client 0.21 + members 0.34 (0.11 + 0.12 + 0.11)`."""
    members = {k: v for k, v in part.ms_per_op.items() if k.startswith("member") and v is not None}
    others = [f"{k} {v:.3f}" for k, v in part.ms_per_op.items() if k not in members and v is not None]
    if members:
        others.append(f"members {sum(members.values()):.3f} ({' + '.join(f'{v:.3f}' for v in members.values())})")
    return " + ".join(others)


def _part(result: dict, payer_names: dict[str, str] | None = None) -> FloorPart:
    """A FloorPart from a worker's JSON line: CPU milliseconds by payer over operations done."""
    ops = result["ops"]
    names = payer_names or {}
    return FloorPart(part=result["part"], ops=ops, seconds=result["seconds"],
                     ms_per_op={names.get(k, k): (round(v / ops, 4) if ops else None)
                                for k, v in result["cpu_ms"].items()},
                     batch=result.get("batch"), error=result.get("error", ""))


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port(base: int) -> int:
    """The first free port from `base` on (below the ephemeral range when `base` is)."""
    return next(port for port in range(base, base + 50) if _port_free(port))


@contextlib.contextmanager
def worker(args: Sequence[str]) -> Iterator[tuple[subprocess.Popen, object]]:
    """A long-running floor worker (a server) in its own process group, stopped with everything under it."""
    errors = tempfile.TemporaryFile()
    process = subprocess.Popen([*WORKER, *args], cwd=ROOT, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                               stderr=errors, start_new_session=True)
    try:
        yield process, errors
    finally:
        for sig, wait in ((signal.SIGTERM, 10.0), (signal.SIGKILL, 5.0)):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, sig)
            try:
                process.wait(wait)
                break
            except subprocess.TimeoutExpired:
                continue
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)  # a server's worker may outlive its master by a moment
        errors.close()


def _tail(errors) -> str:
    errors.seek(0)
    return errors.read().decode(errors="replace")[-400:].strip()


def wait_ready(process: subprocess.Popen, port: int, health_path: str | None, timeout: float = READY_TIMEOUT) -> bool:
    """Until the server answers on `port` (200 on `health_path` when given); False if it exited or took too long."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and process.poll() is None:
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            try:
                if health_path is None:
                    connection.connect()
                    return True
                connection.request("GET", health_path)
                if connection.getresponse().status == 200:
                    return True
            finally:
                connection.close()
        except OSError:
            pass
        time.sleep(0.2)
    return False


class FloorRun:
    """Measures the parts one after the other, against `side`'s members, each for `seconds`."""

    def __init__(self, side: Side, *, callers: int, seconds: float, batches: Sequence[int], out: Out,
                 meter: ProcessMeter | None = None):
        self.side = side
        self.callers = callers
        self.seconds = seconds
        self.batches = tuple(batches)
        self.out = out
        self.meter = meter or ProcessMeter()
        self.port_base = 8060 + side.port_offset  # a port the system's topology does not use

    def run(self) -> Floor:
        began = time.monotonic()
        parts = [self.flask_request(), self.call_client(), *self.cluster_parts()]
        for part in parts:
            if part.error:
                self.out(f"  {part.part}: {part.error}")
        return Floor(callers=self.callers, seconds_per_part=self.seconds, wall_s=round(time.monotonic() - began, 1),
                     parts=parts)

    def flask_request(self) -> FloorPart:
        self.out(f"  {PARTS['flask_request']}: {self.callers} keep-alive clients for {self.seconds:g}s...")
        port = free_port(self.port_base)
        with worker(["flask", "--port", str(port), "--server", self.side.server]) as (server, errors):
            if not wait_ready(server, port, "/health"):
                return FloorPart("flask_request", 0, 0.0, {}, error=f"the server did not answer: {_tail(errors)}")
            window: dict[str, object] = {}

            def open_window() -> None:
                window.update(ticks=self.meter.cpu_ticks({"server": server.pid}), at=time.monotonic())

            run = post_load(f"http://127.0.0.1:{port}/floor", self.callers, seconds=self.seconds,
                            max_requests=int(self.seconds * 20_000), tag="floor", on_window_open=open_window)
            ticks = self.meter.cpu_ticks({"server": server.pid})["server"] - window["ticks"]["server"]
            failed = sum(run.failures.values())
        return FloorPart("flask_request", run.acknowledged, round(run.wall_s, 3),
                         {"server": ms_per_op(ticks, run.acknowledged, self.meter.clock_ticks)},
                         error=f"{failed} failed: {dict(run.failures)}" if failed else "")

    def call_client(self) -> FloorPart:
        self.out(f"  {PARTS['call_client']}: {self.callers} threads for {self.seconds:g}s...")
        port = free_port(self.port_base + 1)
        with worker(["echo", "--port", str(port)]) as (echo, errors):
            if not wait_ready(echo, port, None):
                return FloorPart("call_client", 0, 0.0, {}, error=f"the echo server did not start: {_tail(errors)}")
            lines, error = self._run_worker(["caller", "--url", f"http://127.0.0.1:{port}", "--callers",
                                             str(self.callers), "--seconds", str(self.seconds)],
                                            timeout=self.seconds + 60)
        if not lines:
            return FloorPart("call_client", 0, 0.0, {}, error=error)
        return _part(lines[0], {"client": "caller"})

    def cluster_parts(self) -> list[FloorPart]:
        self.out(f"  put_if_absent, offer, then consumer transactions at batch sizes "
                 f"{', '.join(map(str, self.batches))}: {self.callers} threads in one client, "
                 f"{self.seconds:g}s each...")
        members = self.side.names("member")
        pids = ",".join(f"{n}={self.side.processes[n].pid}" for n in members if self.side.processes[n].pid)
        lines, error = self._run_worker(
            ["cluster", "--cluster-name", self.side.cluster_name, "--members", ",".join(self.side.member_addresses),
             "--member-pids", pids, "--batches", ",".join(map(str, self.batches)), "--callers", str(self.callers),
             "--seconds", str(self.seconds)],
            timeout=(self.seconds + 20) * (2 + len(self.batches)) + 30)
        parts = [_part(line) for line in lines]
        if error:  # the parts it did not get to are missing; the floor sum then says it is incomplete
            parts.append(FloorPart("cluster", 0, 0.0, {}, error=error))
        return parts

    def _run_worker(self, args: Sequence[str], timeout: float) -> tuple[list[dict], str]:
        """Runs a worker that prints one JSON line per part; answers the parts and what went wrong, if anything."""
        try:
            done = subprocess.run([*WORKER, *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout)
            output, error = done.stdout, "" if done.returncode == 0 else f"exit {done.returncode}: {done.stderr[-400:]}"
        except subprocess.TimeoutExpired as err:
            output = err.stdout.decode() if isinstance(err.stdout, bytes) else (err.stdout or "")
            error = f"not done within {timeout:.0f}s"
        lines = []
        for line in output.splitlines():
            with contextlib.suppress(ValueError):
                lines.append(json.loads(line))
        return lines, error
