"""The systems a bench measures: its own (through the launcher), an attached one, and another checkout's
(through that checkout's own `labctl.cli`), each seen through the state.json its launcher writes."""

from __future__ import annotations

import functools
import json
import operator
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import requests

from labctl.bench.load import REQUEST_TIMEOUT, SLOW_REQUEST_TIMEOUT
from labctl.bench.machine import git_commit
from labctl.bench.results import Startup
from labctl.launcher import LauncherError, System, Topology
from labctl.probe import ConsumerCounts, service_health, stored_count
from labctl.processes import alive

Out = Callable[[str], None]
OTHER_START_TIMEOUT = 240.0
OTHER_STOP_TIMEOUT = 90.0


@dataclass(frozen=True)
class SeenProcess:
    name: str
    kind: str  # member | config-server | logging | messages | facade
    port: int
    pid: int | None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@dataclass(frozen=True)
class Side:
    """A running system as the bench sees it: read from its state.json, which the launcher of this
    checkout and of older ones write in the same shape (State.to_json)."""

    label: str
    run_dir: Path
    cluster_name: str
    port_offset: int
    processes: dict[str, SeenProcess]
    server: str = "granian"  # the HTTP server its services run on

    @classmethod
    def read(cls, label: str, run_dir: Path) -> Side:
        state = json.loads((Path(run_dir) / "state.json").read_text())
        processes = {name: SeenProcess(name, p["kind"], int(p["port"]), p.get("pid"))
                     for name, p in state["processes"].items()}
        topology = state["topology"]
        return cls(label, Path(run_dir), topology["cluster_name"], int(topology.get("port_offset", 0)), processes,
                   topology.get("server", "gunicorn"))

    @property
    def roots(self) -> dict[str, int]:
        return {n: p.pid for n, p in self.processes.items() if p.pid}

    @property
    def kinds(self) -> dict[str, str]:
        return {n: p.kind for n, p in self.processes.items()}

    def names(self, kind: str) -> list[str]:
        return [n for n, p in self.processes.items() if p.kind == kind]

    def url(self, name: str) -> str:
        return self.processes[name].url

    @property
    def facade(self) -> str:
        return self.url(self.names("facade")[0])

    @property
    def logging(self) -> str:
        return self.url(self.names("logging")[0])

    @property
    def messages_urls(self) -> list[str]:
        return [self.url(n) for n in self.names("messages")]

    @property
    def member_addresses(self) -> list[str]:
        return [f"127.0.0.1:{self.processes[n].port}" for n in self.names("member")]

    def name_of(self, url: str) -> str:
        return next((n for n, p in self.processes.items() if p.url == url), url)

    def stored(self) -> int:
        """How many messages the log holds (a full read: done once, at the start)."""
        return stored_count(self.logging, SLOW_REQUEST_TIMEOUT)


def consumer_counts(side: Side) -> ConsumerCounts | None:
    """The consumers' counts since the copies started, from one /health read each (None if one cannot be read)."""
    try:
        counts = [service_health(url, REQUEST_TIMEOUT).consumer() for url in side.messages_urls]
    except (requests.RequestException, ValueError, TypeError):
        return None
    return functools.reduce(operator.add, counts, ConsumerCounts(0, 0, 0))


def consumer_batch(before: ConsumerCounts | None, after: ConsumerCounts | None) -> float | None:
    """Messages per consumer transaction between two readings (None when the copies do not tell)."""
    if not before or not after or before.transactions is None or after.transactions is None:
        return None
    transactions = after.transactions - before.transactions
    return round((after.taken - before.taken) / transactions, 1) if transactions > 0 else None


def received_total(side: Side) -> int | None:
    """How many messages the messages copies have received since they started, from their /health."""
    counts = consumer_counts(side)
    return counts.received if counts else None


def wait_drained(side: Side, expected: int | None, timeout: float) -> float | None:
    """Until the copies have received `expected` in all (bounded); answers the seconds that took, None
    when they did not within `timeout` or it cannot be read (then after a fixed pause)."""
    if expected is None:
        time.sleep(min(timeout, 2.0))
        return None
    began = time.monotonic()
    while time.monotonic() - began < timeout:
        got = received_total(side)
        if got is None:
            time.sleep(min(timeout, 2.0))
            return None
        if got >= expected:
            return round(time.monotonic() - began, 2)
        time.sleep(0.1)
    return None


def start_own_system(system: System, topology: Topology, out: Out) -> Startup:
    """Start through the launcher and time launch -> each process healthy -> all healthy."""
    out(f"starting a system for the bench on port offset {topology.port_offset} "
        f"(cluster {topology.cluster_name}, run dir {system.run_dir})...")
    healthy_at: dict[str, float] = {}
    began = time.monotonic()

    def progress(line: str) -> None:
        match = re.fullmatch(r"\s*(\S+) healthy", line)
        if match:
            healthy_at[match.group(1)] = round(time.monotonic() - began, 2)
        out(line)

    system.start(topology, timeout=120, progress=progress)
    seconds = round(time.monotonic() - began, 2)
    out(f"all healthy in {seconds:.1f}s")
    return Startup(seconds=seconds, healthy_after_s=healthy_at)


def stop_own_system(system: System) -> dict:
    """Stop what the bench started; answers what the saved results say about it."""
    state = system.load()
    ports = [p.port for p in state.processes.values()] if state else []
    pids = [p.pid for p in state.processes.values() if p.pid] if state else []
    system.stop()
    still_running = [pid for pid in pids if alive(pid)]
    return {"stopped": system.load() is None and not still_running, "ports": ports, "still_running": still_running}


class OtherCheckout:
    """Another checkout of the project (say a worktree of the previous main), run with its own code:
    its `labctl.cli` from its own directory, so its modules come first on sys.path."""

    def __init__(self, path: Path, run_dir: Path, *, port_offset: int, cluster_name: str,
                 env: dict[str, str] | None = None, start_options: tuple[str, ...] = ()):
        self.path = Path(path).resolve()
        self.env = env or {}  # what A's processes start with besides ours (its launcher passes it on)
        self.start_options = start_options  # more options of its `labctl start`, e.g. --transport http
        self.run_dir = Path(run_dir).resolve()
        self.port_offset = port_offset
        self.cluster_name = cluster_name

    def _cli(self, *args: str, timeout: float) -> subprocess.CompletedProcess:
        env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}  # its own modules, none of ours
        env.update(self.env)
        if (self.path / "scripts" / "labctl" / "cli.py").exists():  # the tools as the package labctl
            env["PYTHONPATH"] = str(self.path / "scripts")
            module = "labctl.cli"
        else:  # a checkout from before: the tools as the top-level package scripts
            module = "scripts.cli"
        return subprocess.run([sys.executable, "-m", module, "--run-dir", str(self.run_dir), *args],
                              cwd=self.path, env=env, capture_output=True, text=True, timeout=timeout)

    def check(self) -> str:
        """Why this path cannot be run, or "" when it looks like a checkout of the project."""
        tools = (self.path / "scripts" / "labctl" / "cli.py").exists() or (self.path / "scripts" / "cli.py").exists()
        if not tools or not (self.path / "facade_service").is_dir():
            return (f"{self.path} is not a checkout of this project (no scripts/labctl/cli.py or scripts/cli.py, "
                    f"or no facade_service/)")
        return ""

    @property
    def label(self) -> str:
        """What A is, as the report names it."""
        return " ".join([str(self.path), *self.start_options])

    def commit(self) -> tuple[str, list[str] | None]:
        return git_commit(self.path)

    def start(self, out: Out) -> Side:
        out(f"starting A, the system of {self.label} (its own code), on port offset {self.port_offset} "
            f"(cluster {self.cluster_name}, run dir {self.run_dir})...")
        began = time.monotonic()
        try:
            done = self._cli("start", "--port-offset", str(self.port_offset), "--cluster-name", self.cluster_name,
                             *self.start_options, timeout=OTHER_START_TIMEOUT)
        except subprocess.TimeoutExpired as err:  # what it started is stopped by the caller's stop()
            raise LauncherError(f"A did not start within {OTHER_START_TIMEOUT:.0f}s") from err
        if done.returncode != 0:
            raise LauncherError(f"A did not start (exit {done.returncode}): {(done.stderr or done.stdout)[-800:]}")
        out(f"A healthy in {time.monotonic() - began:.1f}s")
        return Side.read("A", self.run_dir)

    def running(self) -> bool:
        return (self.run_dir / "state.json").exists()

    def stop(self) -> dict:
        """Stops A through its own `labctl stop`; answers what the saved results say about it."""
        pids = []
        try:
            pids = [p.pid for p in Side.read("A", self.run_dir).processes.values() if p.pid]
        except (OSError, ValueError, KeyError):
            pass
        try:
            done = self._cli("stop", timeout=OTHER_STOP_TIMEOUT)
            error = "" if done.returncode == 0 else (done.stderr or done.stdout)[-400:]
        except subprocess.TimeoutExpired:
            error = f"stop took over {OTHER_STOP_TIMEOUT:.0f}s"
        still_running = [pid for pid in pids if alive(pid)]
        return {"stopped": not error and not still_running and not (self.run_dir / "state.json").exists(),
                "still_running": still_running, "error": error}
