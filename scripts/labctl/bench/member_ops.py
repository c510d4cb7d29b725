"""The operations the members run, by class, from Hazelcast's diagnostics log.

With diagnostics on, every member appends an `OperationsProfiler[` block to its
`diagnostics-<address>_<port>-<start>-<n>.log` each period: per operation class, `count=` since the
member started (with thousands separators), then times and a latency distribution. Two blocks of each
member, one from before a POST level and one from after its queue drained, give what the level cost.
"""

from __future__ import annotations

import re
import time
from collections import defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from labctl.bench.results import MemberOpCount, MemberOps

PROFILER_PERIOD_S = 1  # seconds between two dumps; Hazelcast takes whole seconds
TAIL_BYTES = 512 * 1024  # read from the end of a log: the latest blocks are there (a block is tens of kB)
HEADER = re.compile(r"\d{2}-\d{2}-\d{4} \d{2}:\d{2}:\d{2} (\d+) ([^\s\[]+)\[")
CLIENT_TASKS = "com.hazelcast.client.impl.protocol.task."


def diagnostics_options(directory: Path, period_s: int = PROFILER_PERIOD_S) -> tuple[str, ...]:
    """Member JVM options: the operation profiler dumped every `period_s` into `directory`, and the
    diagnostics that would only fill the log (metrics, invocation samples and profile) off."""
    return (
        "-Dhazelcast.diagnostics.enabled=true",
        f"-Dhazelcast.diagnostics.directory={directory}",
        f"-Dhazelcast.diagnostics.operation-profiler.period.seconds={period_s}",
        "-Dhazelcast.diagnostics.metrics.period.seconds=0",
        "-Dhazelcast.diagnostics.invocation.sample.period.seconds=0",
        "-Dhazelcast.diagnostics.invocation-profiler.period.seconds=0",
    )


def parse_operation_counts(text: str) -> dict[int, dict[str, int]]:
    """Every complete `OperationsProfiler[` block in a diagnostics log's text: its timestamp (epoch
    ms) -> {operation class: count since the member started}. Text before the first block header (a
    tail cut mid-block) and a block still being written are left out."""
    blocks: dict[int, dict[str, int]] = {}
    at: int | None = None
    counts: dict[str, int] = {}
    depth = 0
    operation = ""
    for line in text.splitlines():
        header = HEADER.match(line)
        if header:
            at = None
            if header.group(2) == "OperationsProfiler":
                at, counts, operation = int(header.group(1)), {}, ""
                depth = line.count("[") - line.count("]")
                if depth == 0:  # `OperationsProfiler[]`: nothing has run yet
                    blocks[at], at = counts, None
            continue
        if at is None:
            continue
        stripped = line.strip()
        if depth == 1 and stripped.endswith("["):
            operation = stripped[:-1]
        elif depth == 2 and stripped.startswith("count="):
            counts[operation] = int(re.sub(r"\D", "", stripped[len("count="):]))
        depth += line.count("[") - line.count("]")
        if depth <= 0:
            blocks[at], at = counts, None
    return blocks


def operation_kind(name: str) -> str:
    """"client task" (a client's request as the member received it), "backup", or "operation"."""
    if name.startswith(CLIENT_TASKS) or name.endswith("MessageTask"):
        return "client task"
    if name.rsplit(".", 1)[-1] == "Backup":
        return "backup"
    return "operation"


@dataclass(frozen=True)
class ProfilerDump:
    at_ms: int  # when the member wrote it
    counts: dict[str, int]  # operation class -> count since the member started


def member_ops_between(before: Mapping[str, ProfilerDump | None], after: Mapping[str, ProfilerDump | None], *,
                       clients: int, acknowledged: int, load_s: float, period_s: int,
                       queue_drained: bool) -> MemberOps:
    """What each member ran between its two dumps, summed over the members, per acknowledged POST."""
    problems = [f"{name}: no profiler dump {when} the level" for dumps, when in ((before, "before"), (after, "after"))
                for name, dump in dumps.items() if dump is None]
    totals: dict[str, int] = defaultdict(int)
    by_member: dict[str, int] = {}
    for name in before:
        first, last = before[name], after.get(name)
        if first is None or last is None:
            continue
        diff = {op: n - first.counts.get(op, 0) for op, n in last.counts.items()}
        if any(n < 0 for n in diff.values()) or set(first.counts) - set(last.counts):
            problems.append(f"{name}: counts went down between its dumps (restarted?), left out")
            continue
        by_member[name] = sum(diff.values())
        for op, n in diff.items():
            totals[op] += n
    known = [d for d in (*before.values(), *after.values()) if d is not None]
    window = round((max(d.at_ms for d in known) - min(d.at_ms for d in known)) / 1000, 3) if known else None
    operations = sorted((MemberOpCount(operation=op, kind=operation_kind(op), count=n,
                                       per_post=round(n / acknowledged, 4) if acknowledged else None)
                         for op, n in totals.items() if n > 0), key=lambda c: (-c.count, c.operation))
    return MemberOps(clients=clients, acknowledged=acknowledged, load_s=round(load_s, 3), window_s=window,
                     period_s=period_s, queue_drained=queue_drained, by_member=by_member, operations=operations,
                     error="; ".join(problems))


def clear_diagnostics(directory: Path) -> None:
    """An empty diagnostics directory for a new system: earlier runs' logs would be read as its members'."""
    directory.mkdir(parents=True, exist_ok=True)
    for path in directory.glob("diagnostics-*.log"):
        path.unlink()


class DiagnosticsLogs:
    """The members' diagnostics logs in one directory, each member's found by its port."""

    def __init__(self, directory: Path, ports: Mapping[str, int], *, clock: Callable[[], float] = time.time,
                 sleep: Callable[[float], None] = time.sleep):
        self.directory = Path(directory)
        self.ports = dict(ports)
        self.clock = clock
        self.sleep = sleep

    def latest(self, name: str) -> ProfilerDump | None:
        """The member's newest complete operation-profiler block (its log rolls over into a new file)."""
        files = sorted(self.directory.glob(f"diagnostics-*_{self.ports[name]}-*.log"), key=lambda p: p.stat().st_mtime)
        for path in reversed(files[-2:]):
            blocks = parse_operation_counts(_tail(path, TAIL_BYTES))
            if not blocks and path.stat().st_size > TAIL_BYTES:
                blocks = parse_operation_counts(path.read_text(errors="replace"))
            if blocks:
                at = max(blocks)
                return ProfilerDump(at, blocks[at])
        return None

    def wait_for_dumps(self, since: float, timeout: float) -> dict[str, ProfilerDump | None]:
        """Each member's newest dump once it was written at `since` (epoch seconds) or later; None for a
        member that wrote none by then within `timeout`."""
        deadline = self.clock() + timeout
        found: dict[str, ProfilerDump | None] = dict.fromkeys(self.ports)
        while True:
            for name in self.ports:
                if found[name] is None:
                    dump = self.latest(name)
                    found[name] = dump if dump and dump.at_ms >= since * 1000 else None
            if all(found.values()) or self.clock() >= deadline:
                return found
            self.sleep(0.1)


def _tail(path: Path, size: int) -> str:
    with open(path, "rb") as log:
        log.seek(max(0, path.stat().st_size - size))
        return log.read().decode(errors="replace")
