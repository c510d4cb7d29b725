"""The bench's pure parts: percentiles, CPU accounting from a fake /proc, peak memory, targets, tables."""

from pathlib import Path

import pytest

from scripts.bench import (
    ProcFS,
    cpu_between,
    cpu_ms_per_message,
    descendants,
    latency_summary,
    measured_figures,
    parse_machine_cpu,
    parse_stat,
    percentile,
    python_service_peaks_mb,
    report_tables,
    status_kb,
    target_rows,
)


def stat_line(pid: int, comm: str, ppid: int, utime: int, stime: int, cutime: int = 0, cstime: int = 0) -> str:
    """A /proc/<pid>/stat line with the fields the bench reads set, the rest zero."""
    fields = ["S", ppid, pid, pid, 0, -1, 4194304, 0, 0, 0, 0, utime, stime, cutime, cstime, 20, 0, 4, 0, 12345]
    return f"{pid} ({comm}) " + " ".join(str(f) for f in fields) + "\n"


def fake_proc(root: Path, processes: dict[int, tuple[str, int, int, int]], hwm_kb: dict[int, int] | None = None,
              machine: str = "cpu  100 0 50 800 50 0 0 0 0 0\n") -> ProcFS:
    """A /proc tree in tmp_path: pid -> (comm, ppid, utime, stime)."""
    for pid, (comm, ppid, utime, stime) in processes.items():
        (root / str(pid)).mkdir()
        (root / str(pid) / "stat").write_text(stat_line(pid, comm, ppid, utime, stime))
        kb = (hwm_kb or {}).get(pid)
        (root / str(pid) / "status").write_text(
            f"Name:\t{comm}\nVmPeak:\t  999999 kB\n" + (f"VmHWM:\t  {kb} kB\n" if kb else "") + "Threads:\t4\n")
    (root / "stat").write_text(machine)
    (root / "self").mkdir()  # not a pid: ignored
    return ProcFS(root)


# --- percentiles ---------------------------------------------------------------------------------


def test_percentile_interpolates_between_the_closest_ranks():
    values = [4.0, 1.0, 3.0, 2.0]  # unsorted on purpose
    assert percentile(values, 0) == 1.0
    assert percentile(values, 50) == 2.5
    assert percentile(values, 100) == 4.0
    assert percentile(list(range(1, 101)), 99) == pytest.approx(99.01)


def test_percentile_of_one_value_is_that_value_and_of_none_is_none():
    assert percentile([7.0], 99) == 7.0
    assert percentile([], 50) is None


def test_latency_summary_is_in_milliseconds_and_empty_safe():
    summary = latency_summary([0.010, 0.020, 0.030])
    assert summary == {"count": 3, "p50_ms": 20.0, "p95_ms": 29.0, "p99_ms": 29.8, "mean_ms": 20.0, "max_ms": 30.0}
    assert latency_summary([]) == {"count": 0, "p50_ms": None, "p95_ms": None, "p99_ms": None, "mean_ms": None,
                                   "max_ms": None}


# --- /proc ---------------------------------------------------------------------------------------


def test_parse_stat_copes_with_spaces_and_parentheses_in_the_command_name():
    stat = parse_stat(stat_line(4242, "gunicorn: worker (facade) [x]", 4200, 150, 30, 7, 3))
    assert (stat.pid, stat.ppid, stat.ticks) == (4242, 4200, 150 + 30 + 7 + 3)


def test_descendants_walks_children_and_grandchildren_but_not_siblings(tmp_path):
    procfs = fake_proc(tmp_path, {1: ("init", 0, 0, 0), 100: ("python", 1, 10, 5), 101: ("python", 100, 200, 40),
                                  102: ("helper", 101, 1, 1), 200: ("java", 1, 500, 100)})
    assert sorted(descendants(100, procfs.stats())) == [100, 101, 102]
    assert descendants(999, procfs.stats()) == []


def test_cpu_ticks_sum_the_recorded_pid_and_its_workers(tmp_path):
    procfs = fake_proc(tmp_path, {100: ("python", 1, 10, 5), 101: ("python", 100, 200, 40),
                                  200: ("java", 1, 500, 100)})
    assert procfs.cpu_ticks({"facade-1": 100, "member-1": 200}) == {"facade-1": 255, "member-1": 600}


def test_cpu_per_message_converts_ticks_to_milliseconds_per_acknowledged_message():
    per_message = cpu_ms_per_message({"facade-1": 100, "member-1": 50}, {"facade-1": 300, "member-1": 150},
                                     acknowledged=1000, clock_ticks=100)
    assert per_message == {"facade-1": 2.0, "member-1": 1.0}  # 200 ticks = 2000 ms over 1000 messages
    assert cpu_ms_per_message({"a": 1}, {"a": 5}, acknowledged=0, clock_ticks=100) == {"a": None}


def test_cpu_between_separates_system_bench_and_the_rest_of_the_machine():
    before = {"at": 0.0, "trees": {"facade-1": 0, "member-1": 0}, "bench_s": 1.0, "machine": (0, 0)}
    after = {"at": 10.0, "trees": {"facade-1": 500, "member-1": 300}, "bench_s": 3.0, "machine": (1200, 2000)}
    cpu = cpu_between(before, after, 1000, {"facade-1": "facade", "member-1": "member"}, clock_ticks=100)
    assert cpu["ms_per_msg"] == {"facade-1": 5.0, "member-1": 3.0}
    assert cpu["ms_per_msg_by_kind"] == {"facade": 5.0, "member": 3.0}
    assert cpu["total_ms_per_msg"] == 8.0
    assert cpu["bench_ms_per_msg"] == 2.0
    assert (cpu["system_cores"], cpu["bench_cores"], cpu["machine_busy_cores"]) == (0.8, 0.2, 1.2)
    assert cpu["others_cores"] == 0.2


def test_machine_cpu_counts_idle_and_iowait_as_not_busy():
    assert parse_machine_cpu("cpu  100 10 50 800 40 5 5 0 0 0\ncpu0 1 2 3 4 5 6 7 8 9 10\n") == (170, 1010)


def test_peak_memory_reads_vmhwm_of_the_process_and_its_children(tmp_path):
    procfs = fake_proc(tmp_path, {100: ("python", 1, 0, 0), 101: ("python", 100, 0, 0), 200: ("java", 1, 0, 0)},
                       hwm_kb={100: 40_960, 101: 51_200, 200: 300_000})
    peaks = procfs.peak_memory({"facade-1": 100, "member-1": 200})
    assert peaks == {"facade-1": {"pid": 100, "peak_kb": 40_960, "children_peak_kb": {"101": 51_200}},
                     "member-1": {"pid": 200, "peak_kb": 300_000, "children_peak_kb": {}}}
    assert status_kb("Name:\tx\nVmRSS:\t  12 kB\n", "VmHWM") is None


def test_a_python_service_peak_is_master_plus_worker_and_members_are_left_out():
    memory = {"facade-1": {"kind": "facade", "pid": 100, "peak_kb": 40_960, "children_peak_kb": {"101": 51_200}},
              "member-1": {"kind": "member", "pid": 200, "peak_kb": 300_000, "children_peak_kb": {}}}
    assert python_service_peaks_mb(memory) == {"facade-1": 90.0}


# --- targets and tables --------------------------------------------------------------------------


def level(clients: int, throughput: float, p99: float, failures: dict, total_cpu: float) -> dict:
    latency = {"count": 100, "p50_ms": p99 / 3, "p95_ms": p99 / 1.5, "p99_ms": p99, "mean_ms": p99 / 3,
               "max_ms": p99 * 2}
    cpu = {"window_s": 10.0, "ms_per_msg": {"facade-1": total_cpu / 2, "member-1": total_cpu / 2},
           "ms_per_msg_by_kind": {"facade": total_cpu / 2, "member": total_cpu / 2}, "total_ms_per_msg": total_cpu,
           "bench_ms_per_msg": 0.4, "system_cores": 1.5, "bench_cores": 0.3, "machine_busy_cores": 1.9,
           "others_cores": 0.1}
    return {"clients": clients, "seconds": 10.0, "acknowledged": int(throughput * 10), "failures": failures,
            "throughput": throughput, "latency": latency, "stored_before": 100_000, "cpu": cpu}


def gets(p50: float, statuses: dict | None = None) -> dict:
    statuses = statuses or {"200": 5}
    return {"latency": {"count": statuses["200"], "p50_ms": p50, "p95_ms": p50 * 2, "p99_ms": p50 * 2,
                        "mean_ms": p50, "max_ms": p50 * 3},
            "statuses": statuses, "failed": sum(n for s, n in statuses.items() if s != "200"), "bytes": 12_000}


@pytest.fixture
def results() -> dict:
    return {
        "startup": {"seconds": 12.5, "healthy_after_s": {"member-1": 6.0, "facade-1": 12.5}},
        "idle_cpu": {"ms_per_s": {"facade-1": 5.0, "member-1": 20.0}},
        "post": [level(1, 90.0, 30.0, {}, 6.0), level(32, 850.0, 120.0, {"HTTP 503": 2}, 2.0)],
        "queue_latency": {"samples": 100, "missing": 0, "latency": {"count": 100, "p50_ms": 12.0, "p99_ms": 40.0,
                                                                    "max_ms": 50.0},
                          "lower_bound": {"p50_ms": 8.0}, "poll_rtt": {"p50_ms": 4.0}},
        "get_cost": [{"size": 1000, "skipped": "5000 already stored"},
                     {"size": 10_000, "stored": 10_003, "full": gets(180.0), "logging_paged": gets(9.0)},
                     {"size": 100_000, "stored": 100_010, "full": gets(3000.0, {"200": 1, "503": 5, "ReadTimeout": 1}),
                      "logging_paged": gets(11.0),
                      "facade_paged": gets(25.0)}],
        "facade_paging": {"supported": True, "note": "GET /facade?limit=100 answers one page"},
        "memory": {"facade-1": {"kind": "facade", "pid": 100, "peak_kb": 40_960, "children_peak_kb": {"101": 81_920}},
                   "member-1": {"kind": "member", "pid": 200, "peak_kb": 300_000, "children_peak_kb": {}}},
        "bench_peak_rss_kb": 40_000,
    }


def test_measured_figures_pick_the_32_client_level_and_the_sizes_the_issue_names(results):
    assert measured_figures(results) == {
        "post_throughput_32": 850.0, "post_p99_32": 120.0, "post_failures_32": 2, "cpu_per_post_32": 2.0,
        "queue_p50": 12.0, "paged_p50_100k": 25.0, "full_get_p50_10k": 180.0, "startup": 12.5, "python_rss": 120.0,
    }


def test_target_rows_say_met_or_not_for_each_target(results):
    met = {what: verdict for what, _, _, verdict in target_rows(results)}
    assert met == {
        "POST acknowledged at 32 clients": "yes",
        "POST p99 at 32 clients": "NO",
        "POST failures at 32 clients": "NO",
        "total CPU per acknowledged POST (32 clients)": "yes",
        "queue latency p50, 201 -> visible in a messages copy": "yes",
        "paged GET first page (100) p50, 100k stored": "NO",
        "full GET /facade p50, 10k stored": "yes",
        "launch -> all healthy": "yes",
        "peak RSS of each Python service (worst)": "NO",
    }


def test_a_figure_that_was_not_measured_is_said_so_not_failed():
    rows = target_rows({"post": [level(8, 500.0, 20.0, {}, 3.0)]})
    assert {verdict for _, _, _, verdict in rows} == {"not measured"}


def test_the_paged_target_falls_back_to_logging_when_the_facade_has_no_paging(results):
    del results["get_cost"][2]["facade_paged"]
    assert measured_figures(results)["paged_p50_100k"] == 11.0


def test_report_tables_carry_target_and_met_columns(results):
    report = "\n\n".join(report_tables(results))
    for title in ("Start-up", "POST /facade", "CPU milliseconds per acknowledged POST", "End-to-end queue latency",
                  "GET cost as data grows", "Peak RSS", "Targets"):
        assert title in report
    post_table = next(s for s in report_tables(results) if s.startswith("POST /facade")).splitlines()
    assert post_table[1].split()[-2:] == ["TARGET", "MET"]
    row32 = next(line for line in post_table if line.startswith("32 "))
    assert row32.rstrip().endswith("NO") and "850.0" in row32
    assert "(skipped: 5000 already stored)" in report
    assert "failures: 32 clients: {'HTTP 503': 2}" in report
    assert "failed: GET /facade at 100010: 5 x HTTP 503, 1 x ReadTimeout" in report


def test_the_post_table_says_how_long_the_queue_took_to_drain(results):
    results["post"][0]["queue_drained_after_s"] = 0.4
    results["post"][1]["queue_drained_after_s"] = None  # not within the bench's 30 s
    post_table = next(s for s in report_tables(results) if s.startswith("POST /facade")).splitlines()
    assert "QUEUE DRAINED s" in post_table[1]
    assert " 0.4 " in next(line for line in post_table if line.startswith("1 "))
    assert " > 30 " in next(line for line in post_table if line.startswith("32 "))
