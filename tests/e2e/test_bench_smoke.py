"""`labctl bench` end to end with tiny settings: it starts its own system, measures, saves, stops it.

Nothing here asserts on speed: the machine is shared and noisy.
"""

import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from scripts.launcher import ROOT

pytestmark = pytest.mark.e2e

PORT_OFFSET = 3_500  # ports stay below the ephemeral range (32768+)


def listening(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(0.2)
        return s.connect_ex(("127.0.0.1", port)) == 0


def processes_of_run(run_id: str) -> list[int]:
    """Pids whose environment carries this run's LAB_RUN_ID."""
    marker = f"LAB_RUN_ID={run_id}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if marker in (entry / "environ").read_bytes().split(b"\0"):
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


@pytest.fixture(scope="module")
def bench_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench")
    command = [sys.executable, "-m", "scripts.cli", "bench", "--duration", "1", "--levels", "1,4",
               "--sizes", "200", "--e2e-samples", "10", "--fill-clients", "8", "--fill-budget", "60",
               "--port-offset", str(PORT_OFFSET), "--out", str(out), "--bench-run-dir", str(out / "run")]
    completed = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=400)
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-3000:]
    (json_path,) = out.glob("bench-*.json")
    return json.loads(json_path.read_text()), completed.stdout, out


def test_the_bench_saves_every_figure_of_the_issue(bench_run):
    results, _, out = bench_run
    assert {"command", "machine", "load_before", "load_after", "startup", "idle_cpu", "queue_latency", "get_cost",
            "post", "memory", "targets", "system"} <= set(results)
    assert results["completed"] is True
    assert {"nproc", "cpu_model", "memory_mb", "python", "java"} <= set(results["machine"])
    assert [level["clients"] for level in results["post"]] == [1, 4]
    for level in results["post"]:
        assert {"throughput", "latency", "failures", "cpu", "queue_drained_after_s"} <= set(level)
        assert level["queue_drained_after_s"] is not None  # a few light seconds of POSTs drain at once
        assert {"ms_per_msg", "total_ms_per_msg", "bench_ms_per_msg"} <= set(level["cpu"])
        assert {"facade-1", "logging-1", "messages-1", "member-1"} <= set(level["cpu"]["ms_per_msg"])
    assert results["startup"]["seconds"] > 0
    assert results["get_cost"][0]["size"] == 200 and "full" in results["get_cost"][0]
    assert {"p50_ms", "p99_ms"} <= set(results["queue_latency"]["latency"])
    assert {"facade-1", "member-1"} <= set(results["memory"])
    assert len(results["targets"]) == 9
    assert list(out.glob("bench-*.png"))


def test_the_bench_prints_tables_with_targets(bench_run):
    _, stdout, _ = bench_run
    for title in ("POST /facade", "CPU milliseconds per acknowledged POST", "End-to-end queue latency",
                  "GET cost as data grows", "Peak RSS", "Targets"):
        assert title in stdout
    assert "MET" in stdout


def test_the_bench_stops_the_system_it_started(bench_run):
    results, _, out = bench_run
    assert results["system"]["stopped"] is True
    assert not (out / "run" / "state.json").exists()
    assert processes_of_run(results["system"]["run_id"]) == []
    assert [port for port in results["system"]["ports"] if listening(port)] == []
