"""Process accounting, on psutil: whether a process is alive and whose it is, the CPU ticks and peak memory of
process trees (a server's master and its workers), and the whole machine's CPU."""

from __future__ import annotations

import contextlib
import os
import time
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field

import psutil

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def ms_per_op(ticks: int, ops: int, clock_ticks: int) -> float | None:
    """CPU milliseconds per operation from a number of clock ticks; None when nothing was done."""
    return round(ticks * 1000 / clock_ticks / ops, 4) if ops > 0 else None


def to_ticks(seconds: float) -> int:
    """psutil's seconds back into the clock ticks the kernel counts them in (it divides by CLK_TCK)."""
    return round(seconds * CLOCK_TICKS)


# --- one process ---------------------------------------------------------------------------------


def alive(pid: int) -> bool:
    """Running, not a zombie waiting to be reaped. A process whose main thread is a zombie while its other
    threads are still exiting (a JVM a moment after SIGKILL) still holds its sockets: it counts as alive."""
    try:
        process = psutil.Process(pid)
        if process.status() != psutil.STATUS_ZOMBIE:
            return True
        return process.num_threads() > 1
    except psutil.Error:
        return False


def carries(pid: int, environment: Mapping[str, str]) -> bool:
    """Whether a live process's environment holds all these variables (False when it cannot be read)."""
    try:
        process = psutil.Process(pid)
        if process.status() == psutil.STATUS_ZOMBIE:
            return False
        found = process.environ()
    except psutil.Error:
        return False
    if all(found.get(key) == value for key, value in environment.items()):
        return True
    # our own child between fork and exec still shows this process's environment
    with contextlib.suppress(psutil.Error):
        return process.ppid() == os.getpid()
    return False


def wait_gone(pid: int, timeout: float) -> bool:
    """Until the process has exited (reaped if it is our child, or a zombie of someone else's)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)  # reap it if it is our child
        if not alive(pid):
            return True
        time.sleep(0.05)
    return False


def children_by_parent() -> dict[int, list[int]]:
    """Every process's children, from one pass over the process table."""
    children: dict[int, list[int]] = defaultdict(list)
    for process in psutil.process_iter(["ppid"]):
        children[process.info["ppid"]].append(process.pid)
    return children


def tree_pids(root: int, children: Mapping[int, list[int]] | None = None) -> list[int]:
    """The root pid and every process below it (a server's master and its workers); [] if it is gone."""
    if not psutil.pid_exists(root):
        return []
    children = children_by_parent() if children is None else children
    found, pending = [], [root]
    while pending:
        pid = pending.pop()
        found.append(pid)
        pending.extend(children.get(pid, ()))
    return found


def peak_rss_kb(pid: int) -> int | None:
    """VmHWM, the process's peak resident set: psutil (7.2) gives no peak for another process on Linux, so this
    one figure is read from /proc/<pid>/status."""
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return None


def private_kb(pid: int) -> int | None:
    """The pages only this process maps (USS: Private_Clean + Private_Dirty of smaps_rollup)."""
    try:
        return psutil.Process(pid).memory_full_info().uss // 1024
    except psutil.Error:
        return None


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


class ProcessMeter:
    """CPU ticks and peak memory of process trees, and the machine's CPU, in the kernel's units."""

    clock_ticks = CLOCK_TICKS

    def cpu_ticks(self, roots: Mapping[str, int]) -> dict[str, int]:
        """utime + stime, plus cutime + cstime (a child that exited and was reaped still counts), of each tree."""
        ticks, children = {}, children_by_parent()
        for name, root in roots.items():
            total = 0
            for pid in tree_pids(root, children):
                with contextlib.suppress(psutil.Error):  # gone between listing and reading
                    times = psutil.Process(pid).cpu_times()
                    total += sum(to_ticks(t) for t in (times.user, times.system, times.children_user,
                                                       times.children_system))
            ticks[name] = total
        return ticks

    def machine_cpu(self) -> tuple[int, int]:
        """(busy, total) ticks of all CPUs; idle and iowait are not busy, guest time is already inside user."""
        times = psutil.cpu_times()
        values = [to_ticks(t) for t in (times.user, times.nice, times.system, times.idle, times.iowait, times.irq,
                                        times.softirq, times.steal)]
        return sum(values) - to_ticks(times.idle) - to_ticks(times.iowait), sum(values)

    def peak_memory(self, roots: Mapping[str, int], kinds: Mapping[str, str] | None = None
                    ) -> dict[str, ProcessMemory]:
        """VmHWM of each root process and of each process below it, and what each holds privately, in kB."""
        memory, children = {}, children_by_parent()
        for name, root in roots.items():
            below = tree_pids(root, children)[1:]
            memory[name] = ProcessMemory(pid=root, peak_kb=peak_rss_kb(root),
                                         children_peak_kb={str(pid): peak_rss_kb(pid) for pid in below},
                                         kind=(kinds or {}).get(name, ""),
                                         private_kb={str(pid): private_kb(pid) for pid in (root, *below)})
        return memory


@dataclass(frozen=True)
class CpuSnapshot:
    """Everything a CPU-per-message figure needs: the system's trees, this process, the whole machine."""

    at: float
    trees: dict[str, int]  # ticks by process name
    bench_s: float  # this process's own CPU seconds
    machine: tuple[int, int]  # (busy, total) ticks

    @classmethod
    def take(cls, meter: ProcessMeter, roots: Mapping[str, int]) -> CpuSnapshot:
        own = os.times()
        return cls(at=time.monotonic(), trees=meter.cpu_ticks(roots), bench_s=own.user + own.system,
                   machine=meter.machine_cpu())
