"""Reading /proc: process trees, their CPU ticks and peak memory, and the whole machine's CPU."""

from __future__ import annotations

import os
import time
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path


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
    """The root pid and every process below it (a server's master and its workers)."""
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


def ms_per_op(ticks: int, ops: int, clock_ticks: int) -> float | None:
    """CPU milliseconds per operation from a number of clock ticks; None when nothing was done."""
    return round(ticks * 1000 / clock_ticks / ops, 4) if ops > 0 else None


@dataclass(frozen=True)
class ProcessMemory:
    pid: int
    peak_kb: int | None
    children_peak_kb: dict[str, int | None]  # pid -> VmHWM of each process below it
    kind: str = ""
    private_kb: dict[str, int | None] = field(default_factory=dict)  # pid -> pages no other process maps, at the end

    def service_peak_kb(self) -> int | None:
        """The tree's peak without counting a page twice: the largest process's peak plus what the others
        hold privately (a server master's pages that its worker shares since the fork are in the worker's
        peak already). Without private figures, every peak summed: an upper bound."""
        peaks = {str(self.pid): self.peak_kb, **self.children_peak_kb}
        known = {pid: kb for pid, kb in peaks.items() if kb}
        if not known:
            return None
        if any(self.private_kb.get(pid) is None for pid in known):
            return sum(known.values())
        return max(kb + sum(self.private_kb[other] for other in known if other != pid) for pid, kb in known.items())


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

    def private_kb(self, pid: int) -> int | None:
        """Private_Clean + Private_Dirty from smaps_rollup: the pages only this process maps."""
        try:
            text = (self.root / str(pid) / "smaps_rollup").read_text()
        except OSError:
            return None
        clean, dirty = status_kb(text, "Private_Clean"), status_kb(text, "Private_Dirty")
        return None if clean is None or dirty is None else clean + dirty

    def peak_memory(self, roots: Mapping[str, int], kinds: Mapping[str, str] | None = None
                    ) -> dict[str, ProcessMemory]:
        """VmHWM of each root process and of each process below it, and what each holds privately, in kB."""
        stats = self.stats()
        memory = {}
        for name, root in roots.items():
            below = [pid for pid in descendants(root, stats) if pid != root]
            memory[name] = ProcessMemory(pid=root, peak_kb=self.peak_rss_kb(root),
                                         children_peak_kb={str(pid): self.peak_rss_kb(pid) for pid in below},
                                         kind=(kinds or {}).get(name, ""),
                                         private_kb={str(pid): self.private_kb(pid) for pid in (root, *below)})
        return memory


@dataclass(frozen=True)
class CpuSnapshot:
    """Everything a CPU-per-message figure needs: the system's trees, this process, the whole machine."""

    at: float
    trees: dict[str, int]  # ticks by process name
    bench_s: float  # this process's own CPU seconds
    machine: tuple[int, int]  # (busy, total) ticks

    @classmethod
    def take(cls, procfs: ProcFS, roots: Mapping[str, int]) -> CpuSnapshot:
        own = os.times()
        return cls(at=time.monotonic(), trees=procfs.cpu_ticks(roots), bench_s=own.user + own.system,
                   machine=procfs.machine_cpu())
