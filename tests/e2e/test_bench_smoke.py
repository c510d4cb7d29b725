"""`labctl bench` end to end with tiny settings: it starts its own system, measures, saves, stops it.

Nothing here asserts on speed: the machine is shared and noisy.
"""

import itertools
import json
import re
import socket
import subprocess
import sys

import psutil
import pytest

from labctl.bench.targets import TARGETS
from labctl.launcher import ROOT
from tests.helpers import port_offset

pytestmark = pytest.mark.e2e

PORT_OFFSET = port_offset(3_500)  # ports stay below the ephemeral range (32768+)


def listening(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(0.2)
        return s.connect_ex(("127.0.0.1", port)) == 0


def processes_of_run(run_id: str) -> list[int]:
    """Pids whose environment carries this run's LAB_RUN_ID."""
    found = []
    for process in psutil.process_iter():
        try:
            if process.environ().get("LAB_RUN_ID") == run_id:
                found.append(process.pid)
        except psutil.Error:
            continue
    return found


@pytest.fixture(scope="module")
def bench_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench")
    command = [sys.executable, "-m", "labctl.cli", "bench", "--duration", "1", "--levels", "1,4",
               "--sizes", "200", "--e2e-samples", "10", "--fill-clients", "8", "--fill-budget", "60",
               "--floor", "--floor-seconds", "1", "--floor-batches", "1,10", "--slow-clients", "4",
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
        assert level["acknowledged"] > 0 and level["throughput"] > 0
        assert level["latency"]["p99_ms"] > 0 and len(level["latencies_ms"]) == level["acknowledged"]
        assert level["queue_drained_after_s"] is not None  # a few light seconds of POSTs drain at once
        by_group = level["cpu"]["ms_per_msg_by_kind"]
        assert set(by_group) == {"facade", "member", "logging", "messages", "config-server"}
        assert all(by_group[kind] > 0 for kind in ("facade", "member", "logging", "messages"))
        assert level["cpu"]["total_ms_per_msg"] >= sum(by_group.values()) * 0.99
        assert {"facade-1", "logging-1", "messages-1", "member-1"} <= set(level["cpu"]["ms_per_msg"])
    assert results["startup"]["seconds"] > 0
    assert results["get_cost"][0]["size"] == 200 and "full" in results["get_cost"][0]
    assert {"p50_ms", "p99_ms"} <= set(results["queue_latency"]["latency"])
    assert {"facade-1", "member-1"} <= set(results["memory"])
    assert len(results["targets"]) == 10
    assert list(out.glob("bench-*.png"))


def test_the_floor_measures_every_part_of_a_post_and_sums_them(bench_run):
    results, _, _ = bench_run
    parts = {(part["part"], part["batch"]): part for part in results["floor"]["parts"]}
    assert set(parts) == {("flask_request", None), ("call_client", None), ("put_if_absent", None),
                          ("offer", None), ("consumer_tx", 1), ("consumer_tx", 10)}
    for part in parts.values():
        assert part["error"] == "" and part["ops"] > 0 and part["cpu_ms_per_op"] > 0
    assert parts[("flask_request", None)]["ms_per_op"]["server"] > 0
    assert parts[("call_client", None)]["ms_per_op"]["caller"] > 0
    for key in (("put_if_absent", None), ("offer", None), ("consumer_tx", 10)):
        assert {"client", "member-1", "member-2", "member-3"} == set(parts[key]["ms_per_op"])
    # the consumer's share is taken at the batch size the largest level's consumers reported
    assert results["floor_sum"]["ms"] > 0 and results["floor_sum"]["batch"] == results["post"][-1]["consumer_batch"]
    pieces = {service["service"]: service for service in results["pieces"]}
    assert set(pieces) == {"facade", "logging"}
    for service in pieces.values():
        assert service["process_ms"] >= service["handler_ms"] > sum(p["ms_per_request"] for p in service["pieces"]) > 0


def test_the_slow_clients_level_runs_and_is_compared_with_the_plain_one(bench_run):
    results, _, _ = bench_run
    slow = results["slow_clients"]
    assert slow["slow_clients"] == slow["opened"] == 4
    # judged against the same level run again just before it, without slow clients
    assert slow["level"]["clients"] == 4 and slow["plain_throughput"] > 0
    assert slow["percent_of_plain"] == round(slow["level"]["throughput"] * 100 / slow["plain_throughput"], 1)


def printed_table(stdout: str, title: str) -> list[dict[str, str]]:
    """The rows of the table printed under the line starting with `title`, each as header -> cell, cut at
    the column widths its line of dashes gives; the rows end at the first empty line."""
    lines = stdout.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(title))
    dashes = next(i for i in range(start + 1, len(lines)) if lines[i].startswith("-"))
    columns = [m.start() for m in re.finditer(r"-+", lines[dashes])] + [None]

    def cells(line: str) -> list[str]:
        return [line[a:b].strip() for a, b in itertools.pairwise(columns)]

    headers = cells(lines[dashes - 1])
    rows = itertools.takewhile(str.strip, lines[dashes + 1:])
    return [dict(zip(headers, cells(line), strict=True)) for line in rows]


def test_the_post_table_prints_each_levels_saved_figures(bench_run):
    results, stdout, _ = bench_run
    rows = {row["CLIENTS"]: row for row in printed_table(stdout, "POST /facade") if row["CLIENTS"].isdigit()}
    assert list(rows) == [str(level["clients"]) for level in results["post"]] == ["1", "4"]
    for level in results["post"]:
        row = rows[str(level["clients"])]
        assert row["ACKED"] == str(level["acknowledged"]) and row["FAILED"] == str(sum(level["failures"].values()))
        assert row["SECONDS"] == f"{level['seconds']:.1f}"
        # the saved seconds are rounded to 0.1 s; the rate was worked out from the unrounded time
        assert row["MSG/S"] == f"{level['throughput']:.1f}"
        assert level["throughput"] == pytest.approx(level["acknowledged"] / level["seconds"], rel=0.06)
        latency = level["latency"]
        assert (row["P50 ms"], row["P99 ms"]) == (f"{latency['p50_ms']:.1f}", f"{latency['p99_ms']:.1f}")
        assert row["TOTAL ms"] == f"{level['cpu']['total_ms_per_msg']:.2f}"
        assert row["MET"] == "-"  # only the 32-client level is judged


def test_the_targets_table_prints_each_figure_measured_and_its_verdict(bench_run):
    results, stdout, _ = bench_run
    rows = {row["WHAT"]: row for row in printed_table(stdout, "Targets (")}
    assert set(rows) == {target.what for target in TARGETS}
    measured = {"queue_p50": results["queue_latency"]["latency"]["p50_ms"],
                "startup": results["startup"]["seconds"],
                "slow_clients_share": results["slow_clients"]["percent_of_plain"]}
    for target in TARGETS:
        row = rows[target.what]
        if target.key in measured:
            figure = measured[target.key]
            assert row["MEASURED"] == f"{figure:.2f}", target.key
            assert row["MET"] == ("yes" if (figure >= target.limit if target.at_least else figure <= target.limit)
                                  else "NO"), target.key
        elif target.key == "python_rss":  # the worst service's peak: judged as printed
            assert row["MET"] == ("yes" if float(row["MEASURED"]) <= target.limit else "NO")
        else:  # no 32-client level and no 10k or 100k stored in a smoke run
            assert (row["MEASURED"], row["MET"]) == ("-", "not measured"), target.key


def test_the_bench_stops_the_system_it_started(bench_run):
    results, _, out = bench_run
    assert results["system"]["stopped"] is True
    assert not (out / "run" / "state.json").exists()
    assert processes_of_run(results["system"]["run_id"]) == []
    assert [port for port in results["system"]["ports"] if listening(port)] == []
