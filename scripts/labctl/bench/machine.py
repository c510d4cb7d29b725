"""The machine the bench ran on, and the commit it measured."""

from __future__ import annotations

import os
import platform
import subprocess
from pathlib import Path

import psutil

from labctl.launcher import ROOT


def loadavg() -> list[float]:
    return list(os.getloadavg())


def git_commit(path: Path = ROOT) -> tuple[str, list[str] | None]:
    """HEAD of the checkout at `path`, and its uncommitted tracked files (None if git cannot tell)."""
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=path, capture_output=True, text=True,
                                timeout=10).stdout.strip()
        changed = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=path,
                                 capture_output=True, text=True, timeout=10).stdout.split("\n")
    except (OSError, subprocess.SubprocessError):
        return "", None
    return commit, [line.strip() for line in changed if line.strip()]


def machine_info() -> dict:
    cpuinfo = Path("/proc/cpuinfo").read_text()
    model = next((line.split(":", 1)[1].strip() for line in cpuinfo.splitlines() if line.startswith("model name")),
                 platform.processor() or "unknown")
    mem_kb = psutil.virtual_memory().total // 1024
    try:
        java = subprocess.run(["java", "-version"], capture_output=True, text=True, timeout=30).stderr
        java_version = java.splitlines()[0] if java else "unknown"
    except (OSError, subprocess.SubprocessError):
        java_version = "not found"
    commit, changed = git_commit()
    return {"nproc": os.cpu_count(), "usable_cpus": len(os.sched_getaffinity(0)), "cpu_model": model,
            "memory_mb": round(mem_kb / 1024) if mem_kb else None, "python": platform.python_version(),
            "java": java_version, "platform": platform.platform(), "git_commit": commit, "git_uncommitted": changed,
            "clock_ticks_per_s": os.sysconf("SC_CLK_TCK")}
