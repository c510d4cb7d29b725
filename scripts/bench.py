"""labctl bench: what the system costs and how fast it answers, on this machine.

Measures POST throughput and latency at several client counts, the CPU each process spends per
acknowledged POST (from /proc), the queue's end-to-end latency, the cost of GET as data grows, the
start-up time and each process's peak memory. Prints tables, saves JSON and a PNG chart.

The load generator runs on the same cores as the system it measures: its own CPU is measured and
reported apart from the system's, and so is what the rest of the machine did meanwhile.
"""

from __future__ import annotations

import argparse
import dataclasses
import http.client
import json
import math
import os
import platform
import re
import resource
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlencode, urlsplit

import requests

from scripts.launcher import ROOT, System, Topology
from scripts.table import render

DEFAULT_OUT = ROOT / "bench-results"
DEFAULT_BENCH_RUN_DIR = ROOT / "var" / "bench-run"
PYTHON_KINDS = ("config-server", "logging", "messages", "facade")
REQUEST_TIMEOUT = 10.0
SLOW_REQUEST_TIMEOUT = 60.0

Out = Callable[[str], None]


# --- figures -------------------------------------------------------------------------------------


def percentile(values: Sequence[float], q: float) -> float | None:
    """The q-th percentile (0-100), interpolating linearly between the closest ranks; None if empty."""
    if not values:
        return None
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def latency_summary(seconds: Sequence[float]) -> dict:
    """Count, p50/p95/p99, mean and max of latencies given in seconds, in milliseconds."""

    def ms(value: float | None) -> float | None:
        return None if value is None else round(value * 1000, 3)

    return {
        "count": len(seconds),
        "p50_ms": ms(percentile(seconds, 50)),
        "p95_ms": ms(percentile(seconds, 95)),
        "p99_ms": ms(percentile(seconds, 99)),
        "mean_ms": ms(sum(seconds) / len(seconds)) if seconds else None,
        "max_ms": ms(max(seconds)) if seconds else None,
    }


# --- /proc ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ProcStat:
    pid: int
    ppid: int
    ticks: int  # utime + stime, plus cutime + cstime: a child that exited and was reaped still counts


def parse_stat(text: str) -> ProcStat:
    """One /proc/<pid>/stat line; the command name may hold spaces and parentheses."""
    head, _, tail = text.rpartition(")")
    fields = tail.split()  # fields[0] is field 3 (state) of proc(5)
    return ProcStat(pid=int(head.split("(", 1)[0]), ppid=int(fields[1]),
                    ticks=sum(int(f) for f in fields[11:15]))


def descendants(root: int, stats: Mapping[int, ProcStat]) -> list[int]:
    """The root pid and every process below it (a gunicorn master and its workers)."""
    children: dict[int, list[int]] = defaultdict(list)
    for stat in stats.values():
        children[stat.ppid].append(stat.pid)
    found, pending = [], [root] if root in stats else []
    while pending:
        pid = pending.pop()
        found.append(pid)
        pending.extend(children[pid])
    return found


def tree_ticks(roots: Mapping[str, int], stats: Mapping[int, ProcStat]) -> dict[str, int]:
    return {name: sum(stats[pid].ticks for pid in descendants(root, stats)) for name, root in roots.items()}


def status_kb(text: str, key: str) -> int | None:
    """A kB figure such as VmHWM from /proc/<pid>/status text."""
    for line in text.splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    return None


def parse_machine_cpu(text: str) -> tuple[int, int]:
    """(busy, total) ticks of all CPUs from /proc/stat; guest time is already inside user time."""
    values = [int(v) for v in text.splitlines()[0].split()[1:9]]
    idle = values[3] + values[4]
    return sum(values) - idle, sum(values)


def cpu_ms_per_message(before: Mapping[str, int], after: Mapping[str, int], acknowledged: int,
                       clock_ticks: int) -> dict[str, float | None]:
    """CPU milliseconds each process spent per acknowledged message between two tick counts."""
    if acknowledged <= 0:
        return {name: None for name in after}
    return {name: round((after[name] - before.get(name, after[name])) * 1000 / clock_ticks / acknowledged, 4)
            for name in after}


class ProcFS:
    """Reads CPU ticks and peak memory of process trees from /proc (or a fake root in tests)."""

    def __init__(self, root: Path = Path("/proc")):
        self.root = Path(root)
        self.clock_ticks = os.sysconf("SC_CLK_TCK")

    def stats(self) -> dict[int, ProcStat]:
        result = {}
        for entry in self.root.iterdir():
            if entry.name.isdigit():
                try:
                    result[int(entry.name)] = parse_stat((entry / "stat").read_text())
                except (OSError, ValueError, IndexError):
                    continue  # gone between listing and reading
        return result

    def cpu_ticks(self, roots: Mapping[str, int]) -> dict[str, int]:
        return tree_ticks(roots, self.stats())

    def machine_cpu(self) -> tuple[int, int]:
        return parse_machine_cpu((self.root / "stat").read_text())

    def peak_rss_kb(self, pid: int) -> int | None:
        try:
            return status_kb((self.root / str(pid) / "status").read_text(), "VmHWM")
        except OSError:
            return None

    def peak_memory(self, roots: Mapping[str, int]) -> dict[str, dict]:
        """VmHWM of each root process and of each process below it, in kB."""
        stats = self.stats()
        return {name: {"pid": root, "peak_kb": self.peak_rss_kb(root),
                       "children_peak_kb": {str(pid): self.peak_rss_kb(pid)
                                            for pid in descendants(root, stats) if pid != root}}
                for name, root in roots.items()}


def cpu_snapshot(procfs: ProcFS, roots: Mapping[str, int]) -> dict:
    """Everything a CPU-per-message figure needs: system trees, this process, the whole machine."""
    own = os.times()
    return {"at": time.monotonic(), "trees": procfs.cpu_ticks(roots), "bench_s": own.user + own.system,
            "machine": procfs.machine_cpu()}


def cpu_between(before: dict, after: dict, acknowledged: int, kinds: Mapping[str, str], clock_ticks: int) -> dict:
    """CPU per acknowledged message by process and kind, the bench's own, and what the machine did."""
    per_process = cpu_ms_per_message(before["trees"], after["trees"], acknowledged, clock_ticks)
    wall = after["at"] - before["at"]
    system_s = sum(after["trees"][n] - before["trees"][n] for n in after["trees"]) / clock_ticks
    bench_s = after["bench_s"] - before["bench_s"]
    machine_s = (after["machine"][0] - before["machine"][0]) / clock_ticks
    per_kind: dict[str, float] = defaultdict(float)
    for name, value in per_process.items():
        per_kind[kinds[name]] += value or 0.0
    return {
        "window_s": round(wall, 3),
        "ms_per_msg": per_process,
        "ms_per_msg_by_kind": {k: round(v, 4) for k, v in per_kind.items()},
        "total_ms_per_msg": round(system_s * 1000 / acknowledged, 4) if acknowledged else None,
        "bench_ms_per_msg": round(bench_s * 1000 / acknowledged, 4) if acknowledged else None,
        "system_cores": round(system_s / wall, 3) if wall else None,
        "bench_cores": round(bench_s / wall, 3) if wall else None,
        "machine_busy_cores": round(machine_s / wall, 3) if wall else None,
        "others_cores": round(max(0.0, machine_s - system_s - bench_s) / wall, 3) if wall else None,
    }


# --- targets -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    key: str
    what: str
    limit: float
    unit: str
    at_least: bool = False  # a floor (throughput) rather than a ceiling

    def describe(self) -> str:
        return f"{'>=' if self.at_least else '<='} {self.limit:g}{' ' + self.unit if self.unit else ''}"

    def met(self, measured: float | None) -> str:
        if measured is None:
            return "not measured"
        return "yes" if (measured >= self.limit if self.at_least else measured <= self.limit) else "NO"


TARGETS = (
    Target("post_throughput_32", "POST acknowledged at 32 clients", 800, "msg/s", at_least=True),
    Target("post_p99_32", "POST p99 at 32 clients", 100, "ms"),
    Target("post_failures_32", "POST failures at 32 clients", 0, ""),
    Target("cpu_per_post_32", "total CPU per acknowledged POST (32 clients)", 2.5, "ms"),
    Target("queue_p50", "queue latency p50, 201 -> visible in a messages copy", 20, "ms"),
    Target("paged_p50_100k", "paged GET first page (100) p50, 100k stored", 20, "ms"),
    Target("full_get_p50_10k", "full GET /facade p50, 10k stored", 250, "ms"),
    Target("startup", "launch -> all healthy", 30, "s"),
    Target("python_rss", "peak RSS of each Python service (worst)", 100, "MB"),
)
TARGET_BY_KEY = {t.key: t for t in TARGETS}


def _level(results: dict, clients: int) -> dict | None:
    return next((r for r in results.get("post", []) if r["clients"] == clients), None)


def _size(results: dict, size: int) -> dict | None:
    return next((s for s in results.get("get_cost", []) if s["size"] == size and not s.get("skipped")), None)


def python_service_peaks_mb(memory: Mapping[str, dict]) -> dict[str, float | None]:
    """Each Python service's peak RSS in MB: its gunicorn master's and worker's peaks summed.

    Pages the two share since the fork count twice, so this is an upper bound of what the service holds."""
    peaks = {}
    for name, entry in memory.items():
        if entry.get("kind") not in PYTHON_KINDS:
            continue
        kb = (entry["peak_kb"] or 0) + sum(kb or 0 for kb in entry["children_peak_kb"].values())
        peaks[name] = round(kb / 1024, 1) if kb else None
    return peaks


def measured_figures(results: dict) -> dict[str, float | None]:
    """The figure each target is judged on, None where it was not measured."""
    at32 = _level(results, 32)
    at10k, at100k = _size(results, 10_000), _size(results, 100_000)
    paged_100k = None
    if at100k:
        paged = at100k.get("facade_paged") or at100k.get("logging_paged")
        paged_100k = paged["latency"]["p50_ms"] if paged else None
    peaks = [v for v in python_service_peaks_mb(results.get("memory", {})).values() if v is not None]
    return {
        "post_throughput_32": at32["throughput"] if at32 else None,
        "post_p99_32": at32["latency"]["p99_ms"] if at32 else None,
        "post_failures_32": sum(at32["failures"].values()) if at32 else None,
        "cpu_per_post_32": at32["cpu"]["total_ms_per_msg"] if at32 else None,
        "queue_p50": results.get("queue_latency", {}).get("latency", {}).get("p50_ms"),
        "paged_p50_100k": paged_100k,
        "full_get_p50_10k": at10k["full"]["latency"]["p50_ms"] if at10k else None,
        "startup": results.get("startup", {}).get("seconds"),
        "python_rss": max(peaks) if peaks else None,
    }


def target_rows(results: dict) -> list[tuple[str, str, str, str]]:
    """(what, measured, target, met) for every target of the issue."""
    figures = measured_figures(results)
    return [(t.what, fmt(figures[t.key], 2), t.describe(), t.met(figures[t.key])) for t in TARGETS]


def fmt(value: float | int | None, digits: int = 1) -> str:
    if value is None:
        return "-"
    return str(value) if isinstance(value, int) else f"{value:.{digits}f}"


def _drain_cell(level: dict) -> str:
    if "queue_drained_after_s" not in level:  # a result saved before the drain was timed
        return "-"
    drained = level["queue_drained_after_s"]
    return "> 30" if drained is None else fmt(drained)


# --- load ----------------------------------------------------------------------------------------


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


LOAD_ERRORS = (OSError, http.client.HTTPException)  # refused, reset, timed out, cut off mid-answer


class KeepAlive:
    """One load client's keep-alive connection, on the standard library's http.client: about a fifth of
    the CPU per request of a requests session (0.4 against 1.9 ms on the lab's 2-core machine), so the
    load generator takes fewer of the cores the system under test shares with it. After a failure the
    connection is closed and the next request opens a new one."""

    def __init__(self, url: str):
        parts = urlsplit(url)
        self._connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=REQUEST_TIMEOUT)

    def request(self, method: str, path: str, form: bytes | None = None) -> int:
        """Sends the request, reads the whole answer (so the connection can be used again), answers
        the status."""
        headers = {"Content-Type": "application/x-www-form-urlencoded"} if form is not None else {}
        try:
            self._connection.request(method, path, body=form, headers=headers)
            response = self._connection.getresponse()
            response.read()
        except BaseException:
            self._connection.close()
            raise
        return response.status

    def close(self) -> None:
        self._connection.close()


def post_load(url: str, clients: int, *, seconds: float, max_requests: int, tag: str,
              progress: Out | None = None, progress_every: float = 5.0) -> LoadRun:
    """`clients` threads, each with its own keep-alive connection, POST until the time or the count runs out."""
    lock = threading.Lock()
    issued = 0
    per_client: list[LoadRun] = [LoadRun(clients) for _ in range(clients)]
    window: dict[str, float] = {}

    def open_window() -> None:  # runs once, as the barrier lets every client go at the same moment
        window["began"] = time.monotonic()
        window["stop_at"] = window["began"] + seconds

    start = threading.Barrier(clients + 1, action=open_window)
    path = urlsplit(url).path
    health_path = path.rsplit("/", 1)[0] + "/health"

    def client(result: LoadRun) -> None:
        nonlocal issued
        connection = KeepAlive(url)
        try:
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
                began = time.perf_counter()
                try:
                    status = connection.request("POST", path, urlencode({"msg": f"{tag}-{number}"}).encode())
                except LOAD_ERRORS as err:
                    result.failures[type(err).__name__] += 1
                    continue
                if status == 201:
                    result.latencies.append(time.perf_counter() - began)
                    result.acknowledged += 1
                else:
                    result.failures[f"HTTP {status}"] += 1
        finally:
            connection.close()

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


def timed_gets(url: str, *, samples: int, budget_s: float, timeout: float = SLOW_REQUEST_TIMEOUT) -> dict:
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
    return {"url": url, "latency": latency_summary(latencies), "latencies_ms": [round(s * 1000, 3) for s in latencies],
            "statuses": dict(statuses), "failed": failed, "bytes": max(sizes) if sizes else None,
            "messages_returned": max((c for c in counts if c is not None), default=None)}


def queue_latency(facade_url: str, messages_urls: Sequence[str], *, samples: int, tag: str, warmup: int = 3,
                  poll_interval: float = 0.003, timeout: float = 10.0) -> dict:
    """POST with a known uuid, then poll every messages copy until one shows it: 201 -> visible.

    The first `warmup` samples open connections and wake the consumers; they are not counted."""
    post_session = requests.Session()
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
            try:
                response = post_session.post(facade_url + "/facade", data={"msg": key},
                                             headers={"Idempotency-Key": key}, timeout=REQUEST_TIMEOUT)
            except requests.RequestException as err:
                failed[type(err).__name__] += 1
                continue
            acknowledged_at = time.perf_counter()
            if response.status_code != 201:
                failed[f"HTTP {response.status_code}"] += 1
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
        post_session.close()
        for session in poll_sessions:
            session.close()
    return {"samples": samples, "warmup": warmup, "latency": latency_summary(latencies),
            "lower_bound": latency_summary(lower_bounds), "poll_rtt": latency_summary(poll_rtts),
            "latencies_ms": [round(s * 1000, 3) for s in latencies], "missing": missing,
            "failures": dict(failed), "seen_at": dict(receivers)}


def received_total(system: System, names: Sequence[str]) -> int | None:
    """How many messages the messages copies have received since they started, from their /health."""
    total = 0
    for name in names:
        try:
            health = requests.get(system.url(name) + "/health", timeout=REQUEST_TIMEOUT).json()
            total += int(health["checks"]["consumer"]["detail"]["received"])
        except (requests.RequestException, ValueError, KeyError, TypeError):
            return None
    return total


def wait_drained(system: System, names: Sequence[str], expected: int | None, timeout: float) -> float | None:
    """Until the copies have received `expected` in all (bounded); answers the seconds that took, None
    when they did not within `timeout` or it cannot be read (then after a fixed pause)."""
    if expected is None:
        time.sleep(min(timeout, 2.0))
        return None
    began = time.monotonic()
    while time.monotonic() - began < timeout:
        got = received_total(system, names)
        if got is None:
            time.sleep(min(timeout, 2.0))
            return None
        if got >= expected:
            return round(time.monotonic() - began, 2)
        time.sleep(0.1)
    return None


# --- the machine ---------------------------------------------------------------------------------


def loadavg() -> list[float]:
    return [float(v) for v in Path("/proc/loadavg").read_text().split()[:3]]


def machine_info() -> dict:
    cpuinfo = Path("/proc/cpuinfo").read_text()
    model = next((line.split(":", 1)[1].strip() for line in cpuinfo.splitlines() if line.startswith("model name")),
                 platform.processor() or "unknown")
    mem_kb = status_kb(Path("/proc/meminfo").read_text(), "MemTotal")
    try:
        java = subprocess.run(["java", "-version"], capture_output=True, text=True, timeout=30).stderr
        java_version = java.splitlines()[0] if java else "unknown"
    except (OSError, subprocess.SubprocessError):
        java_version = "not found"
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                                timeout=10).stdout.strip()
        changed = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT,
                                 capture_output=True, text=True, timeout=10).stdout.split("\n")
        changed = [line.strip() for line in changed if line.strip()]  # what the measured tree had uncommitted
    except (OSError, subprocess.SubprocessError):
        commit, changed = "", None
    return {"nproc": os.cpu_count(), "usable_cpus": len(os.sched_getaffinity(0)), "cpu_model": model,
            "memory_mb": round(mem_kb / 1024) if mem_kb else None, "python": platform.python_version(),
            "java": java_version, "platform": platform.platform(), "git_commit": commit, "git_uncommitted": changed,
            "clock_ticks_per_s": os.sysconf("SC_CLK_TCK")}


# --- the run -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Plan:
    levels: tuple[int, ...]
    duration_s: float
    sizes: tuple[int, ...]
    e2e_samples: int
    full_get_samples: int
    paged_get_samples: int
    idle_s: float
    fill_clients: int
    fill_budget_s: float

    @classmethod
    def from_args(cls, args) -> Plan:
        quick = args.quick
        return cls(
            levels=tuple(args.levels or (1, 8, 32, 64)),
            duration_s=args.duration if args.duration is not None else (2.0 if quick else 10.0),
            sizes=tuple(sorted(args.sizes or ((1000, 10_000) if quick else (1000, 10_000, 100_000)))),
            e2e_samples=args.e2e_samples if args.e2e_samples is not None else (30 if quick else 100),
            full_get_samples=5 if quick else 20,
            paged_get_samples=20 if quick else 50,
            idle_s=1.0 if quick else 3.0,
            fill_clients=args.fill_clients,
            fill_budget_s=args.fill_budget,
        )


class Bench:
    """One benchmark run against one system; fills `results` phase by phase."""

    def __init__(self, system: System, plan: Plan, out: Out, results: dict):
        self.system = system
        self.plan = plan
        self.out = out
        self.results = results
        self.procfs = ProcFS()
        self.tag = uuid.uuid4().hex[:8]
        self.stored = 0
        self.fill_seconds = 0.0

    # the system's shape, read from the launcher's state
    @property
    def roots(self) -> dict[str, int]:
        return {n: p.pid for n, p in self.system.state().processes.items() if p.pid}

    @property
    def kinds(self) -> dict[str, str]:
        return {n: p.kind for n, p in self.system.state().processes.items()}

    @property
    def facade(self) -> str:
        return self.system.url(self.system.names("facade")[0])

    @property
    def messages_names(self) -> list[str]:
        return self.system.names("messages")

    def run(self) -> None:
        self.stored = self._stored_now()
        self.results["stored_at_start"] = self.stored
        self.idle_cpu()
        self.queue_latency()
        self.get_cost()
        self.post_levels()
        self.memory()

    def _stored_now(self) -> int:
        logging = self.system.url(self.system.names("logging")[0])
        return requests.get(logging + "/logging", timeout=SLOW_REQUEST_TIMEOUT).json()["count"]

    def idle_cpu(self) -> None:
        self.out(f"\nidle CPU for {self.plan.idle_s:g}s...")
        before = cpu_snapshot(self.procfs, self.roots)
        time.sleep(self.plan.idle_s)
        after = cpu_snapshot(self.procfs, self.roots)
        wall = after["at"] - before["at"]
        self.results["idle_cpu"] = {
            "window_s": round(wall, 3),
            "ms_per_s": {n: round((after["trees"][n] - before["trees"][n]) * 1000 / self.procfs.clock_ticks / wall, 2)
                         for n in after["trees"]},
        }

    def queue_latency(self) -> None:
        self.out(f"\nqueue latency: {self.plan.e2e_samples} sequential POSTs, polling GET /messages of "
                 f"{', '.join(self.messages_names)} every ~3 ms...")
        received_before = received_total(self.system, self.messages_names)
        result = queue_latency(self.facade, [self.system.url(n) for n in self.messages_names],
                               samples=self.plan.e2e_samples, tag=self.tag)
        result["seen_at"] = {self._name_of(url): n for url, n in result["seen_at"].items()}
        self.results["queue_latency"] = result
        acknowledged = result["warmup"] + self.plan.e2e_samples - sum(result["failures"].values())
        self.stored += acknowledged
        if received_before is not None:
            wait_drained(self.system, self.messages_names, received_before + acknowledged, 30)

    def _name_of(self, url: str) -> str:
        return next((n for n, p in self.system.state().processes.items() if p.url == url), url)

    def fill_to(self, size: int) -> dict:
        """POST through the facade, concurrently, until `size` messages are stored (bounded in time)."""
        need = size - self.stored
        fill = {"from": self.stored, "posted": 0, "failures": {}, "seconds": 0.0}
        if need <= 0:
            return fill
        self.out(f"\nfilling to {size} stored: {need} POSTs through the facade with {self.plan.fill_clients} "
                 f"clients (at most {self.plan.fill_budget_s:.0f}s in all)...")
        received_before = received_total(self.system, self.messages_names)
        began = time.monotonic()
        failures: Counter = Counter()
        latencies: list[float] = []
        for _ in range(3):  # failures leave it short: top up, a bounded number of times
            remaining = self.plan.fill_budget_s - self.fill_seconds
            if self.stored >= size or remaining <= 0:
                break
            run = post_load(self.facade + "/facade", self.plan.fill_clients, seconds=remaining,
                            max_requests=size - self.stored, tag=f"bench-fill-{self.tag}", progress=self.out)
            self.fill_seconds += run.wall_s
            self.stored += run.acknowledged
            fill["posted"] += run.acknowledged
            failures.update(run.failures)
            latencies.extend(run.latencies)
        fill.update(seconds=round(time.monotonic() - began, 1), failures=dict(failures),
                    throughput=round(fill["posted"] / (time.monotonic() - began), 1),
                    latency=latency_summary(latencies), reached=self.stored >= size)
        self.out(f"  stored {self.stored} after {fill['seconds']:.0f}s ({fill['throughput']:.0f} msg/s)")
        if received_before is not None:
            drained = wait_drained(self.system, self.messages_names, received_before + fill["posted"], 120)
            fill["queue_drained"] = drained is not None
            fill["queue_drained_after_s"] = drained
        return fill

    def get_cost(self) -> None:
        self.results["get_cost"] = []
        logging = self.system.url(self.system.names("logging")[0])
        for size in self.plan.sizes:
            if self.stored > size:
                self.out(f"\nGET cost at {size}: skipped, {self.stored} already stored")
                self.results["get_cost"].append({"size": size, "skipped": f"{self.stored} already stored"})
                continue
            fill = self.fill_to(size)
            if not fill.get("reached", True):
                self.out(f"  the fill did not reach {size} within its time budget: measuring at {self.stored}")
            budget = 10.0 if self.plan.full_get_samples <= 5 else 30.0
            self.out(f"GET cost with {self.stored} stored...")
            entry = {"size": size, "stored": self.stored, "fill": fill,
                     "full": timed_gets(self.facade + "/facade", samples=self.plan.full_get_samples,
                                        budget_s=budget),
                     "logging_paged": timed_gets(logging + "/logging?limit=100",
                                                 samples=self.plan.paged_get_samples, budget_s=15.0,
                                                 timeout=REQUEST_TIMEOUT)}
            supported, note = self._facade_paging()
            self.results["facade_paging"] = {"supported": supported, "note": note}
            if supported:
                entry["facade_paged"] = timed_gets(self.facade + "/facade?limit=100",
                                                   samples=self.plan.paged_get_samples, budget_s=15.0,
                                                   timeout=REQUEST_TIMEOUT)
            else:
                self.out(f"  {note}")
            self.results["get_cost"].append(entry)

    def _facade_paging(self) -> tuple[bool, str]:
        """Whether GET /facade?limit=100 answers one page; the paged figure falls back to logging's if not."""
        try:
            response = requests.get(self.facade + "/facade?limit=100", timeout=SLOW_REQUEST_TIMEOUT)
        except requests.RequestException as err:
            return False, f"GET /facade?limit=100 failed ({type(err).__name__}): paged figure is GET /logging?limit=100"
        if response.status_code != 200:
            return False, (f"GET /facade?limit=100 answers HTTP {response.status_code}: "
                           "paged figure is GET /logging?limit=100")
        body = response.json()
        if "next" not in body or (body.get("count") or 0) > 100:
            return False, "GET /facade ignores limit: paged figure is GET /logging?limit=100"
        return True, "GET /facade?limit=100 answers one page"

    def post_levels(self) -> None:
        self.results["post"] = []
        for clients in self.plan.levels:
            self.out(f"\nPOST with {clients} keep-alive clients for {self.plan.duration_s:g}s "
                     f"({self.stored} stored)...")
            received_before = received_total(self.system, self.messages_names)
            before = cpu_snapshot(self.procfs, self.roots)
            run = post_load(self.facade + "/facade", clients, seconds=self.plan.duration_s,
                            max_requests=max(1000, int(self.plan.duration_s * 5000)),
                            tag=f"bench-post-{self.tag}-{clients}")
            drained = wait_drained(self.system, self.messages_names,
                                   None if received_before is None else received_before + run.acknowledged, 30)
            after = cpu_snapshot(self.procfs, self.roots)
            stored_before = self.stored
            self.stored += run.acknowledged
            cpu = cpu_between(before, after, run.acknowledged, self.kinds, self.procfs.clock_ticks)
            self.results["post"].append({
                "clients": clients, "seconds": round(run.wall_s, 3), "acknowledged": run.acknowledged,
                "failures": dict(run.failures), "throughput": round(run.throughput, 1),
                "latency": latency_summary(run.latencies), "stored_before": stored_before,
                "queue_drained_before_cpu_read": drained is not None, "queue_drained_after_s": drained, "cpu": cpu,
                "latencies_ms": [round(s * 1000, 3) for s in run.latencies],
            })
            self.out(f"  {run.throughput:.0f} msg/s, p99 {fmt(latency_summary(run.latencies)['p99_ms'])} ms, "
                     f"{sum(run.failures.values())} failed, {fmt(cpu['total_ms_per_msg'], 2)} ms CPU/msg")

    def memory(self) -> None:
        peaks = self.procfs.peak_memory(self.roots)
        for name, entry in peaks.items():
            entry["kind"] = self.kinds[name]
        self.results["memory"] = peaks
        self.results["bench_peak_rss_kb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def start_own_system(system: System, topology: Topology, out: Out, results: dict) -> None:
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
    results["startup"] = {"seconds": seconds, "healthy_after_s": healthy_at}
    out(f"all healthy in {seconds:.1f}s")


def stop_own_system(system: System, results: dict) -> None:
    state = system.load()
    ports = [p.port for p in state.processes.values()] if state else []
    pids = [p.pid for p in state.processes.values() if p.pid] if state else []
    system.stop()
    still_running = [pid for pid in pids if Path(f"/proc/{pid}").exists()
                     and Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"]
    results["system"].update(stopped=system.load() is None and not still_running, ports=ports,
                             still_running=still_running)


# --- reporting -----------------------------------------------------------------------------------


def report_tables(results: dict) -> list[str]:
    """The printed report: one table per figure of the issue, then the targets."""
    sections = []
    startup = results.get("startup", {})
    if startup.get("seconds") is not None:
        rows = sorted(startup["healthy_after_s"].items(), key=lambda kv: kv[1])
        target = TARGET_BY_KEY["startup"]
        sections.append("Start-up: seconds from launch until each process answered healthy\n" + render(
            ["PROCESS", "HEALTHY AFTER (s)"], [(n, fmt(s)) for n, s in rows]
            + [("all healthy", fmt(startup["seconds"]))])
            + f"\nall healthy: {fmt(startup['seconds'])} s   TARGET {target.describe()}   MET "
              f"{target.met(startup['seconds'])}")
    elif startup.get("skipped"):
        sections.append(f"Start-up: {startup['skipped']}")

    if results.get("post"):
        thr, p99 = TARGET_BY_KEY["post_throughput_32"], TARGET_BY_KEY["post_p99_32"]
        rows = []
        for level in results["post"]:
            lat, failed = level["latency"], sum(level["failures"].values())
            at32 = level["clients"] == 32
            met = "-"
            if at32:
                met = "yes" if (thr.met(level["throughput"]) == "yes" and p99.met(lat["p99_ms"]) == "yes"
                                and failed == 0) else "NO"
            rows.append((level["clients"], fmt(level["seconds"]), level["acknowledged"], failed,
                         fmt(level["throughput"]), fmt(lat["p50_ms"]), fmt(lat["p95_ms"]), fmt(lat["p99_ms"]),
                         fmt(lat["max_ms"]), _drain_cell(level), fmt(level["cpu"]["bench_cores"], 2),
                         fmt(level["cpu"]["others_cores"], 2),
                         f"{thr.describe()}, p99 {p99.describe()}, 0 failed" if at32 else "", met))
        stored = results["post"][0]["stored_before"]
        sections.append(f"POST /facade (keep-alive clients, {stored}+ messages stored)\n" + render(
            ["CLIENTS", "SECONDS", "ACKED", "FAILED", "MSG/S", "P50 ms", "P95 ms", "P99 ms", "MAX ms",
             "QUEUE DRAINED s", "LOADGEN CORES", "OTHER CORES", "TARGET", "MET"], rows))
        sections[-1] += ("\nQUEUE DRAINED: seconds after the load until the messages copies had received every "
                         "acknowledged POST (> 30: not within 30 s, or the copies' /health could not be read)")
        failures = {lv["clients"]: lv["failures"] for lv in results["post"] if lv["failures"]}
        if failures:
            sections[-1] += "\nfailures: " + "; ".join(f"{c} clients: {f}" for c, f in failures.items())
        sections.append(cpu_table(results))

    queue = results.get("queue_latency")
    if queue:
        target = TARGET_BY_KEY["queue_p50"]
        lat, low = queue["latency"], queue["lower_bound"]
        sections.append(
            "End-to-end queue latency: 201 of the POST -> the message visible in GET /messages of a copy\n" + render(
                ["SAMPLES", "SEEN", "MISSING", "P50 ms", "P99 ms", "MAX ms", "P50 LOWER BOUND ms", "POLL RTT P50 ms",
                 "TARGET", "MET"],
                [(queue["samples"], lat["count"], queue["missing"], fmt(lat["p50_ms"]), fmt(lat["p99_ms"]),
                  fmt(lat["max_ms"]), fmt(low["p50_ms"]), fmt(queue["poll_rtt"]["p50_ms"]),
                  f"p50 {target.describe()}", target.met(lat["p50_ms"]))])
            + "\n(visible = the end of the poll that first showed it; the lower bound is that poll's start)")

    if results.get("get_cost"):
        sections.append(get_table(results))
    if results.get("memory"):
        sections.append(memory_table(results))
    if results.get("post") or results.get("queue_latency"):
        sections.append("Targets (issue 5)\n" + render(["WHAT", "MEASURED", "TARGET", "MET"], target_rows(results)))
    return sections


def cpu_table(results: dict) -> str:
    levels = results["post"]
    names = list(levels[0]["cpu"]["ms_per_msg"])
    idle = results.get("idle_cpu", {}).get("ms_per_s", {})
    target = TARGET_BY_KEY["cpu_per_post_32"]
    headers = ["PROCESS", "IDLE ms/s"] + [f"{lv['clients']} CLIENTS" for lv in levels] + ["TARGET", "MET"]
    rows = [[name, fmt(idle.get(name), 1)] + [fmt(lv["cpu"]["ms_per_msg"][name], 3) for lv in levels] + ["", ""]
            for name in names]
    at32 = _level(results, 32)
    rows.append(["TOTAL (system)", fmt(sum(idle.values()), 1) if idle else "-"]
                + [fmt(lv["cpu"]["total_ms_per_msg"], 3) for lv in levels]
                + [f"{target.describe()} at 32", target.met(at32["cpu"]["total_ms_per_msg"] if at32 else None)])
    rows.append(["load generator (bench)", "-"] + [fmt(lv["cpu"]["bench_ms_per_msg"], 3) for lv in levels] + ["", ""])
    rows.append(["system cores busy", "-"] + [fmt(lv["cpu"]["system_cores"], 2) for lv in levels] + ["", ""])
    rows.append(["rest of machine, cores", "-"] + [fmt(lv["cpu"]["others_cores"], 2) for lv in levels] + ["", ""])
    return ("CPU milliseconds per acknowledged POST, by process (recorded pid + descendants, from /proc; "
            "window = load + queue drain)\n" + render(headers, rows))


def get_table(results: dict) -> str:
    paged_target, full_target = TARGET_BY_KEY["paged_p50_100k"], TARGET_BY_KEY["full_get_p50_10k"]
    rows, failures = [], []
    for entry in results["get_cost"]:
        if entry.get("skipped"):
            rows.append((entry["size"], "-", "(skipped: " + entry["skipped"] + ")", "", "", "", "", "", "", "", ""))
            continue
        for key, label in (("full", "GET /facade"), ("facade_paged", "GET /facade?limit=100"),
                           ("logging_paged", "GET /logging?limit=100")):
            figures = entry.get(key)
            if not figures:
                continue
            target = ""
            if key == "full" and entry["size"] == 10_000:
                target = full_target
            elif key != "full" and entry["size"] == 100_000:
                target = paged_target
            lat = figures["latency"]
            failed = {status: n for status, n in figures["statuses"].items() if status != "200"}
            if failed:
                failures.append(f"{label} at {entry['stored']}: " + ", ".join(
                    f"{n} x {'HTTP ' + s if s.isdigit() else s}" for s, n in failed.items()))
            rows.append((entry["size"], entry["stored"], label, lat["count"], figures["failed"], fmt(lat["p50_ms"]),
                         fmt(lat["p95_ms"]), fmt(lat["max_ms"]), fmt(figures["bytes"], 0),
                         f"p50 {target.describe()}" if target else "", target.met(lat["p50_ms"]) if target else ""))
    notes = [results.get("facade_paging", {}).get("note", "")] + [f"failed: {f}" for f in failures]
    return ("GET cost as data grows (sequential, one keep-alive client; percentiles of the answered ones)\n"
            + render(["SIZE", "STORED", "REQUEST", "OK", "FAILED", "P50 ms", "P95 ms", "MAX ms", "BYTES", "TARGET",
                      "MET"], rows)
            + "".join(f"\n{note}" for note in notes if note))


def memory_table(results: dict) -> str:
    target = TARGET_BY_KEY["python_rss"]
    peaks = python_service_peaks_mb(results["memory"])
    rows = []
    for name, entry in results["memory"].items():
        own = round(entry["peak_kb"] / 1024, 1) if entry["peak_kb"] else None
        children = [round(kb / 1024, 1) for kb in entry["children_peak_kb"].values() if kb]
        if name in peaks:
            rows.append((name, entry["kind"], fmt(peaks[name]), fmt(own), " + ".join(fmt(c) for c in children),
                         target.describe(), target.met(peaks[name])))
        else:
            rows.append((name, entry["kind"], fmt(own), fmt(own), "", "", ""))
    bench_mb = results.get("bench_peak_rss_kb", 0) / 1024
    return ("Peak RSS (VmHWM, MB): a Python service's figure is its gunicorn master's plus its worker's\n"
            "(pages shared since the fork count twice: an upper bound)\n"
            + render(["PROCESS", "KIND", "PEAK MB", "MASTER MB", "WORKER MB", "TARGET", "MET"], rows)
            + f"\nload generator (bench) peak RSS: {bench_mb:.1f} MB")


def save_chart(results: dict, path: Path) -> None:
    """Throughput and latency per client count, and CPU per message by kind, in one PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    levels = results.get("post", [])
    clients = [str(lv["clients"]) for lv in levels]
    figure, (thr_ax, lat_ax, cpu_ax) = plt.subplots(1, 3, figsize=(16, 5.2), dpi=100)
    thr_ax.bar(clients, [lv["throughput"] for lv in levels], color="#4C72B0")
    thr_ax.axhline(800, color="#C44E52", linestyle="--", label="target at 32 clients: 800 msg/s")
    thr_ax.set(title="POST throughput (acknowledged)", xlabel="concurrent keep-alive clients", ylabel="msg/s")
    thr_ax.legend(loc="upper left", fontsize=8)
    for x, lv in zip(clients, levels, strict=True):
        thr_ax.annotate(f"{lv['throughput']:.0f}", (x, lv["throughput"]), ha="center", va="bottom", fontsize=9)
    for q, style in (("p50_ms", "o-"), ("p95_ms", "s-"), ("p99_ms", "^-")):
        lat_ax.plot(clients, [lv["latency"][q] or 0 for lv in levels], style, label=q.split("_")[0])
    lat_ax.axhline(100, color="#C44E52", linestyle="--", label="p99 target: 100 ms")
    lat_ax.set(title="POST latency", xlabel="concurrent keep-alive clients", ylabel="ms")
    lat_ax.set_ylim(bottom=0)
    lat_ax.legend(fontsize=8)
    bottom = [0.0] * len(levels)
    kinds = sorted({k for lv in levels for k in lv["cpu"]["ms_per_msg_by_kind"]})
    for kind in kinds:
        values = [lv["cpu"]["ms_per_msg_by_kind"].get(kind, 0.0) for lv in levels]
        cpu_ax.bar(clients, values, bottom=bottom, label=kind)
        bottom = [b + v for b, v in zip(bottom, values, strict=True)]
    cpu_ax.plot(clients, [lv["cpu"]["bench_ms_per_msg"] or 0 for lv in levels], "kx--", label="load generator")
    cpu_ax.axhline(2.5, color="#C44E52", linestyle="--", label="target: 2.5 ms")
    cpu_ax.set(title="CPU per acknowledged POST", xlabel="concurrent keep-alive clients", ylabel="CPU ms / message")
    cpu_ax.legend(fontsize=8)
    machine = results.get("machine", {})
    after = results.get("load_after") or [float("nan")]
    figure.suptitle(f"facade-lab bench, {results['bench']['started_at'][:16]} UTC, {machine.get('nproc')} cores "
                    f"({machine.get('cpu_model', '')}), {levels[0]['stored_before'] if levels else 0}+ messages "
                    f"stored; load average before {results['load_before'][0]:.2f}, after {after[0]:.2f}",
                    fontsize=10)
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)


# --- entry point ---------------------------------------------------------------------------------


def _int_list(text: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError as err:
        raise argparse.ArgumentTypeError(f"expected whole numbers separated by commas, got {text!r}") from err
    if not values or any(v <= 0 for v in values):
        raise argparse.ArgumentTypeError(f"expected positive whole numbers, got {text!r}")
    return values


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--attach", action="store_true",
                        help="measure the system running from labctl --run-dir (default var/run), not start one")
    parser.add_argument("--duration", type=float, default=None, help="seconds per client count (default 10)")
    parser.add_argument("--levels", type=_int_list, default=None, help="client counts (default 1,8,32,64)")
    parser.add_argument("--sizes", type=_int_list, default=None,
                        help="stored-message counts for the GET figures (default 1000,10000,100000)")
    parser.add_argument("--quick", action="store_true",
                        help="a smoke run: 2 s per level, sizes 1000,10000, fewer samples")
    parser.add_argument("--e2e-samples", type=int, default=None, help="queue latency samples (default 100)")
    parser.add_argument("--fill-clients", type=int, default=32, help="clients that fill the store (default 32)")
    parser.add_argument("--fill-budget", type=float, default=1800.0,
                        help="seconds the fills may take in all before the sizes are measured as reached")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="where JSON and PNG go (default bench-results/)")
    parser.add_argument("--port-offset", type=int, default=3_000,
                        help="port offset of the system the bench starts (default 3000: every port stays below "
                             "the kernel's ephemeral range, 32768 and up)")
    parser.add_argument("--bench-run-dir", type=Path, default=DEFAULT_BENCH_RUN_DIR,
                        help="run dir of the system the bench starts (default var/bench-run)")


def run_bench(args, out: Out = print) -> int:
    plan = Plan.from_args(args)
    started = datetime.now(UTC)
    results: dict = {
        "bench": {"command": [Path(sys.argv[0]).name, *sys.argv[1:]], "started_at": started.isoformat(),
                  "mode": "attach" if args.attach else "own system", "plan": dataclasses.asdict(plan),
                  "completed": False},
        "machine": machine_info(),
        "load_before": loadavg(),
    }
    out(f"load average before: {' '.join(f'{v:.2f}' for v in results['load_before'])} "
        f"({results['machine']['nproc']} cores)")
    if results["machine"]["git_uncommitted"]:
        out(f"measuring commit {results['machine']['git_commit'][:7]} with uncommitted changes: "
            + ", ".join(results["machine"]["git_uncommitted"]))
    system = System(args.run_dir if args.attach else args.bench_run_dir)
    results["system"] = {"run_dir": str(system.run_dir), "stopped": None}

    def stop_on_sigterm(signum, frame):
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, stop_on_sigterm)
    try:
        if args.attach:
            results["startup"] = {"seconds": None, "skipped": "attached to a running system: start-up not measured"}
        else:
            topology = Topology(cluster_name=f"bench-{uuid.uuid4().hex[:8]}", port_offset=args.port_offset)
            start_own_system(system, topology, out, results)
        results["system"]["run_id"] = system.state().run_id
        Bench(system, plan, out, results).run()
        results["bench"]["completed"] = True
    finally:
        results["load_after"] = loadavg()
        results["bench"]["finished_at"] = datetime.now(UTC).isoformat()
        if not args.attach:
            out("\nstopping the bench's system...")
            stop_own_system(system, results)
            out("stopped." if results["system"]["stopped"] else
                f"NOT fully stopped: {results['system'].get('still_running')}")
        signal.signal(signal.SIGTERM, previous)
        paths = save(results, args.out, started)
    out("")
    for section in report_tables(results):
        out(section + "\n")
    out(f"load average before {results['load_before']}, after {results['load_after']}")
    out(f"saved {paths[0]}" + (f" and {paths[1]}" if len(paths) > 1 else ""))
    return 0


def save(results: dict, out_dir: Path, started: datetime) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = out_dir / f"bench-{started.strftime('%Y%m%d-%H%M%S')}"
    json_path = stem.with_suffix(".json")
    results["targets"] = [dict(zip(("what", "measured", "target", "met"), row, strict=True))
                          for row in target_rows(results)]
    json_path.write_text(json.dumps(results, indent=1, ensure_ascii=False))
    paths = [json_path]
    if results.get("post"):
        save_chart(results, stem.with_suffix(".png"))
        paths.append(stem.with_suffix(".png"))
    return paths
