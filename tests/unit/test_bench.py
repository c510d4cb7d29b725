"""The bench's pure parts: percentiles, CPU accounting, peak memory, targets, tables (process accounting itself:
test_bench_processes.py)."""

import argparse
import dataclasses
import json
import socket
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from labctl.bench.command import add_arguments, options_problem, plan_from_args, save
from labctl.bench.floor import floor_sum, who_pays
from labctl.bench.floor_worker import run_callers
from labctl.bench.load import SlowClients, slow_request_head
from labctl.bench.report import report_tables
from labctl.bench.results import (
    BenchResults,
    Comparison,
    CpuUse,
    FacadePaging,
    Floor,
    FloorPart,
    GetCost,
    Gets,
    IdleCpu,
    Latency,
    PostLevel,
    QueueLatency,
    SlowClientLevel,
    Startup,
    merge_levels,
    percentile,
)
from labctl.bench.systems import OtherCheckout, Side
from labctl.bench.targets import measured_figures, python_service_peaks_mb, target_rows
from labctl.launcher import Process, State, Topology
from labctl.processes import CpuSnapshot, ProcessMemory, ms_per_op
from tests.helpers import eventually

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


def test_latency_is_in_milliseconds_and_empty_safe():
    assert Latency.of([0.010, 0.020, 0.030]) == Latency(count=3, p50_ms=20.0, p95_ms=29.0, p99_ms=29.8, mean_ms=20.0,
                                                        max_ms=30.0)
    assert Latency.of([]) == Latency(count=0, p50_ms=None, p95_ms=None, p99_ms=None, mean_ms=None, max_ms=None)


# --- /proc ---------------------------------------------------------------------------------------


def test_ms_per_op_converts_ticks_to_milliseconds_per_operation():
    assert ms_per_op(200, 1000, clock_ticks=100) == 2.0  # 200 ticks = 2000 ms over 1000 operations
    assert ms_per_op(5, 0, clock_ticks=100) is None


def test_cpu_use_separates_system_bench_and_the_rest_of_the_machine():
    before = CpuSnapshot(at=0.0, trees={"facade-1": 0, "member-1": 0}, bench_s=1.0, machine=(0, 0))
    after = CpuSnapshot(at=10.0, trees={"facade-1": 500, "member-1": 300}, bench_s=3.0, machine=(1200, 2000))
    cpu = CpuUse.between(before, after, 1000, {"facade-1": "facade", "member-1": "member"}, clock_ticks=100)
    assert cpu.ms_per_msg == {"facade-1": 5.0, "member-1": 3.0}
    assert cpu.ms_per_msg_by_kind == {"facade": 5.0, "member": 3.0}
    assert cpu.total_ms_per_msg == 8.0
    assert cpu.bench_ms_per_msg == 2.0
    assert (cpu.system_cores, cpu.bench_cores, cpu.machine_busy_cores) == (0.8, 0.2, 1.2)
    assert cpu.others_cores == 0.2


def test_cpu_use_of_a_level_that_acknowledged_nothing_has_no_per_message_figures():
    before = CpuSnapshot(at=0.0, trees={"a": 1}, bench_s=0.0, machine=(0, 0))
    after = CpuSnapshot(at=1.0, trees={"a": 5}, bench_s=0.1, machine=(10, 20))
    cpu = CpuUse.between(before, after, 0, {"a": "facade"}, clock_ticks=100)
    assert (cpu.ms_per_msg, cpu.total_ms_per_msg, cpu.bench_ms_per_msg) == ({"a": None}, None, None)


def test_a_python_service_peak_counts_the_masters_shared_pages_once_and_members_are_left_out():
    memory = {"facade-1": ProcessMemory(pid=100, peak_kb=40_960, children_peak_kb={"101": 51_200}, kind="facade",
                                        private_kb={"100": 10_240, "101": 20_480}),  # 30 MB shared
              "member-1": ProcessMemory(pid=200, peak_kb=300_000, children_peak_kb={}, kind="member")}
    assert python_service_peaks_mb(memory) == {"facade-1": 60.0}  # the worker's 50 + the master's own 10


def test_without_private_figures_a_service_peak_is_every_peak_summed():
    memory = {"facade-1": ProcessMemory(pid=100, peak_kb=40_960, children_peak_kb={"101": 51_200}, kind="facade")}
    assert python_service_peaks_mb(memory) == {"facade-1": 90.0}


# --- targets and tables --------------------------------------------------------------------------


def latency(p99: float) -> Latency:
    return Latency(count=100, p50_ms=p99 / 3, p95_ms=p99 / 1.5, p99_ms=p99, mean_ms=p99 / 3, max_ms=p99 * 2)


def cpu_use(total: float) -> CpuUse:
    return CpuUse(window_s=10.0, ms_per_msg={"facade-1": total / 2, "member-1": total / 2},
                  ms_per_msg_by_kind={"facade": total / 2, "member": total / 2}, total_ms_per_msg=total,
                  bench_ms_per_msg=0.4, system_cores=1.5, bench_cores=0.3, machine_busy_cores=1.9, others_cores=0.1)


def level(clients: int, throughput: float, p99: float, failures: dict, total_cpu: float,
          drained: float | None = 0.2) -> PostLevel:
    return PostLevel(clients=clients, seconds=10.0, acknowledged=int(throughput * 10), failures=failures,
                     throughput=throughput, latency=latency(p99), stored_before=100_000,
                     queue_drained_after_s=drained, cpu=cpu_use(total_cpu))


def gets(p50: float, statuses: dict | None = None) -> Gets:
    statuses = statuses or {"200": 5}
    return Gets(url="http://x", latency=Latency(count=statuses["200"], p50_ms=p50, p95_ms=p50 * 2, p99_ms=p50 * 2,
                                                mean_ms=p50, max_ms=p50 * 3),
                latencies_ms=[], statuses=statuses, failed=sum(n for s, n in statuses.items() if s != "200"),
                bytes=12_000, messages_returned=None)


def empty_results() -> BenchResults:
    return BenchResults(command=["labctl", "bench"], started_at="2026-12-01T10:00:00+00:00", mode="own system",
                        plan={}, machine={"nproc": 2}, load_before=[0.5, 0.4, 0.3])


@pytest.fixture
def results() -> BenchResults:
    results = empty_results()
    results.startup = Startup(seconds=12.5, healthy_after_s={"member-1": 6.0, "facade-1": 12.5})
    results.idle_cpu = IdleCpu(window_s=3.0, ms_per_s={"facade-1": 5.0, "member-1": 20.0})
    results.post = [level(1, 90.0, 30.0, {}, 6.0), level(32, 850.0, 120.0, {"HTTP 503": 2}, 2.0)]
    results.queue_latency = QueueLatency(samples=100, warmup=3, latency=Latency(100, 12.0, 30.0, 40.0, 14.0, 50.0),
                                         lower_bound=Latency(100, 8.0, 20.0, 30.0, 9.0, 40.0),
                                         poll_rtt=Latency(500, 4.0, 6.0, 8.0, 4.0, 9.0), latencies_ms=[], missing=0,
                                         failures={}, seen_at={"messages-1": 100})
    results.get_cost = [GetCost(size=1000, skipped="5000 already stored"),
                        GetCost(size=10_000, stored=10_003, full=gets(180.0), logging_paged=gets(9.0)),
                        GetCost(size=100_000, stored=100_010, full=gets(3000.0, {"200": 1, "503": 5, "ReadTimeout": 1}),
                                logging_paged=gets(11.0), facade_paged=gets(25.0))]
    results.facade_paging = FacadePaging(True, "GET /facade?limit=100 answers one page")
    results.memory = {"facade-1": ProcessMemory(pid=100, peak_kb=40_960, children_peak_kb={"101": 81_920},
                                                kind="facade"),
                      "member-1": ProcessMemory(pid=200, peak_kb=300_000, children_peak_kb={}, kind="member")}
    results.bench_peak_rss_kb = 40_000
    return results


def test_measured_figures_pick_the_32_client_level_and_the_sizes_the_issue_names(results):
    assert measured_figures(results) == {
        "post_throughput_32": 850.0, "post_p99_32": 120.0, "post_failures_32": 2, "cpu_per_post_32": 2.0,
        "slow_clients_share": None, "queue_p50": 12.0, "paged_p50_100k": 25.0, "full_get_p50_10k": 180.0,
        "startup": 12.5, "python_rss": 120.0,
    }


def test_target_rows_say_met_or_not_for_each_target(results):
    met = {what: verdict for what, _, _, verdict in target_rows(results)}
    assert met == {
        "POST acknowledged at 32 clients": "no verdict (without --against)",
        "POST p99 at 32 clients": "yes",
        "POST failures at 32 clients": "NO",
        "total CPU per acknowledged POST (32 clients)": "no verdict (without --floor)",
        "POST throughput at 32 clients with the slow clients, % of without": "not measured",
        "queue latency p50, 201 -> visible in a messages copy": "yes",
        "paged GET first page (100) p50, 100k stored": "NO",
        "full GET /facade p50, 10k stored": "yes",
        "launch -> all healthy": "yes",
        "peak RSS of each Python service (worst)": "NO",
    }


def test_relative_targets_are_judged_against_the_floor_and_the_a_side_of_the_same_run(results):
    results.floor = full_floor(10)
    results.floor_sum = floor_sum(results.floor)  # 2.3 ms: CPU per POST may be up to 3.45
    results.comparison = comparison()  # A: 110 msg/s at 32, so B needs 330
    rows = {what: (target, verdict) for what, _, target, verdict in target_rows(results)}
    assert rows["total CPU per acknowledged POST (32 clients)"] == ("<= 1.5 x the floor sum (3.45 ms)", "yes")
    assert rows["POST acknowledged at 32 clients"] == (">= 3 x A's (330 msg/s)", "yes")
    results.post[1] = level(32, 300.0, 120.0, {}, 4.0)
    rows = {what: verdict for what, _, _, verdict in target_rows(results)}
    assert rows["POST acknowledged at 32 clients"] == rows["total CPU per acknowledged POST (32 clients)"] == "NO"
    post_table = next(s for s in report_tables(results) if s.startswith("POST /facade")).splitlines()
    row32 = next(line for line in post_table if line.startswith("32 "))
    assert row32.endswith(">= 3 x A's (330 msg/s), p99 <= 150 ms, failed <= 0  NO")


def test_a_figure_that_was_not_measured_is_said_so_not_failed():
    results = empty_results()
    results.post = [level(8, 500.0, 20.0, {}, 3.0)]
    assert {verdict for _, _, _, verdict in target_rows(results)} == {"not measured"}


def test_the_paged_target_falls_back_to_logging_when_the_facade_has_no_paging(results):
    results.get_cost[2] = GetCost(size=100_000, stored=100_010, full=gets(3000.0), logging_paged=gets(11.0))
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
    results.post = [level(1, 90.0, 30.0, {}, 6.0, drained=0.4),
                    level(32, 850.0, 120.0, {}, 2.0, drained=None)]  # not within the bench's 30 s
    post_table = next(s for s in report_tables(results) if s.startswith("POST /facade")).splitlines()
    assert "QUEUE DRAINED s" in post_table[1]
    assert " 0.4 " in next(line for line in post_table if line.startswith("1 "))
    assert " > 30 " in next(line for line in post_table if line.startswith("32 "))


def test_results_are_saved_as_json_with_every_figure(results, tmp_path):
    results.post = []  # no chart: matplotlib is not what this test is about
    (path,) = save(results, tmp_path, datetime(2026, 12, 1, 10, 0, tzinfo=UTC))
    saved = json.loads(path.read_text())
    assert saved["get_cost"][1]["full"]["latency"]["p50_ms"] == 180.0
    assert saved["memory"]["facade-1"]["children_peak_kb"] == {"101": 81_920}
    assert len(saved["targets"]) == 10


# --- the floor -----------------------------------------------------------------------------------


def floor_of(*parts: FloorPart) -> Floor:
    return Floor(callers=32, seconds_per_part=3.0, wall_s=30.0, parts=list(parts))


def full_floor(*consumer_batches: int) -> Floor:
    return floor_of(FloorPart("flask_request", 3000, 3.0, {"server": 0.5}),
                    FloorPart("call_client", 1500, 3.0, {"caller": 0.6}),
                    FloorPart("put_if_absent", 9000, 3.0, {"client": 0.1, "member-1": 0.1, "member-2": 0.05,
                                                            "member-3": 0.05}),
                    FloorPart("offer", 20000, 3.0, {"client": 0.07, "member-1": 0.03}),
                    *(FloorPart("consumer_tx", 2000, 2.0, {"client": 1.0 / b, "member-1": 2.0 / b}, batch=b)
                      for b in consumer_batches))


def test_a_floor_part_sums_what_each_payer_spent_per_operation():
    part = FloorPart("put_if_absent", 9000, 3.0, {"client": 0.1, "member-1": 0.1, "member-2": 0.05})
    assert part.cpu_ms_per_op == 0.25
    assert FloorPart("offer", 0, 3.0, {"client": None}, error="refused").cpu_ms_per_op is None


def test_the_floor_sum_counts_two_flask_requests_and_the_consumer_at_the_batch_the_posts_saw():
    floor = full_floor(1, 10, 50)  # the fake's consumer share is exactly 3.0 / batch
    total = floor_sum(floor, batch_seen=40.0)  # between 10 and 50: interpolated in 1/batch
    assert total.batch == 40.0
    assert total.ms == pytest.approx(2 * 0.5 + 0.6 + 0.3 + 0.1 + 3.0 / 40)
    assert [n for _, n, _ in total.terms] == [2, 1, 1, 1, 1]
    assert floor_sum(floor, batch_seen=10.0).ms == pytest.approx(2.0 + 3.0 / 10)  # measured there
    assert floor_sum(floor, batch_seen=80.0).ms == pytest.approx(2.0 + 3.0 / 50)  # past the largest: nearest


def test_without_the_batch_the_posts_saw_the_floor_sum_takes_ten():
    total = floor_sum(full_floor(1, 10, 50))
    assert total.batch == 10 and "unknown" in total.batch_note


def test_the_floor_sum_is_not_given_when_a_part_is_missing():
    floor = full_floor(10)
    floor.parts[1] = FloorPart("call_client", 0, 0.0, {}, error="the echo server did not start")
    assert floor_sum(floor).ms is None


def test_who_pays_names_each_payer_and_the_members_together():
    part = FloorPart("put_if_absent", 9000, 3.0, {"client": 0.1, "member-1": 0.1, "member-2": 0.05})
    assert who_pays(part) == "client 0.100 + members 0.150 (0.100 + 0.050)"


def test_the_floor_table_prints_every_part_and_the_sum(results):
    results.floor = full_floor(1, 10)
    results.floor_sum = floor_sum(results.floor)
    table = next(s for s in report_tables(results) if s.startswith("Floor"))
    assert "batch 10" in table and "floor SUM for one POST = 2 x 0.500" in table
    post_table = next(s for s in report_tables(results) if s.startswith("POST /facade")).splitlines()
    row32 = next(line for line in post_table if line.startswith("32 "))
    assert f" {2.0 / results.floor_sum.ms:.2f} " in row32  # the total as a multiple of the floor sum


def test_floor_callers_count_operations_and_the_cpu_of_their_process():
    calls = []

    def op(caller: int, i: int) -> int:
        calls.append(caller)
        return 0 if i >= 9 else 1  # ten calls each, the last one finding nothing left

    result = run_callers(4, 60.0, op, part="test")
    assert result.ops == 4 * 9
    assert len(calls) == 40  # each caller stopped at its first 0 (nothing left), not at the deadline
    assert set(result.cpu_ms) == {"client"} and result.cpu_ms["client"] >= 0


# --- slow clients --------------------------------------------------------------------------------


def test_a_slow_request_head_never_ends_its_headers():
    head = slow_request_head("127.0.0.1", 8080, "/facade")
    assert head.startswith(b"POST /facade HTTP/1.1\r\n") and b"\r\n\r\n" not in head
    assert len(head) > 200  # a byte a second: minutes before even the head is through


def test_slow_clients_drip_a_byte_at_a_time_and_replace_a_connection_the_server_closed():
    with socket.create_server(("127.0.0.1", 0)) as server:
        url = f"http://127.0.0.1:{server.getsockname()[1]}/facade"
        slow = SlowClients(url, 3, interval=0.05).open()
        accepted = []
        try:
            accepted.extend(server.accept()[0] for _ in range(3))
            time.sleep(0.3)
            received = [conn.recv(1000) for conn in accepted]
            assert all(0 < len(data) < 20 for data in received) and received[0].startswith(b"PO")
            assert slow.opened == 3 and slow.still_open() == 3
            accepted[0].close()
            server.settimeout(5)
            accepted.append(server.accept()[0])  # another takes its place
            eventually(lambda: slow.reopened == 1 and slow.still_open() == 3, timeout=5)
        finally:
            slow.close()
            for conn in accepted:
                conn.close()


def test_the_slow_client_level_is_judged_against_the_same_level_without_them(results):
    results.slow_clients = SlowClientLevel(slow_clients=64, opened=64, still_open_at_end=64,
                                           level=level(32, 170.0, 300.0, {}, 7.0), plain_throughput=200.0)
    assert results.slow_clients.percent_of_plain == 85.0
    table = next(s for s in report_tables(results) if s.startswith("POST /facade while 64 slow clients"))
    assert any(" 85.0 " in line for line in table.splitlines())


# --- A/B -----------------------------------------------------------------------------------------


def run_of(throughput: float, latencies_ms: list[float], facade_ms: float, member_ms: float, round_number: int,
           seconds: float = 10.0) -> PostLevel:
    acknowledged = int(throughput * seconds)
    cpu = CpuUse(window_s=seconds, ms_per_msg={"facade-1": facade_ms, "member-1": member_ms},
                 ms_per_msg_by_kind={"facade": facade_ms, "member": member_ms},
                 total_ms_per_msg=facade_ms + member_ms, bench_ms_per_msg=0.4, system_cores=1.0, bench_cores=0.1,
                 machine_busy_cores=1.2, others_cores=0.1)
    return PostLevel(clients=32, seconds=seconds, acknowledged=acknowledged, failures={"HTTP 503": 1},
                     throughput=throughput, latency=Latency.of([ms / 1000 for ms in latencies_ms]),
                     stored_before=1000 * round_number, queue_drained_after_s=0.1 * round_number, cpu=cpu,
                     latencies_ms=latencies_ms, round=round_number)


def test_rounds_of_a_level_merge_into_one_weighted_by_what_each_acknowledged():
    merged = merge_levels([run_of(100.0, [10.0, 20.0], 2.0, 3.0, 1), run_of(300.0, [30.0, 40.0], 1.0, 1.0, 2)])
    assert (merged.acknowledged, merged.seconds, merged.throughput) == (4000, 20.0, 200.0)
    assert merged.failures == {"HTTP 503": 2} and merged.latency.count == 4 and merged.latency.max_ms == 40.0
    assert merged.cpu.ms_per_msg_by_kind["facade"] == pytest.approx((2.0 * 1000 + 1.0 * 3000) / 4000)
    assert merged.cpu.total_ms_per_msg == pytest.approx((5.0 * 1000 + 2.0 * 3000) / 4000)
    assert (merged.stored_before, merged.queue_drained_after_s, merged.round) == (1000, 0.2, 0)


def comparison() -> Comparison:
    return Comparison(against="/work/old-main", a_commit="5c8bac3" + "0" * 33, a_uncommitted=[], rounds=2,
                      a_stored_before=5000,
                      a_levels=[run_of(100.0, [50.0], 4.0, 4.0, 1), run_of(120.0, [60.0], 4.0, 4.0, 2)],
                      b_levels=[run_of(330.0, [20.0], 1.0, 2.0, 1), run_of(330.0, [30.0], 1.0, 2.0, 2)])


def test_the_comparison_table_puts_a_and_b_side_by_side_with_their_ratios(results):
    results.comparison = comparison()
    assert results.comparison.merged("A")[32].throughput == 110.0
    table = next(s for s in report_tables(results) if s.startswith("A/B"))
    rows = {line.split()[1]: line for line in table.splitlines() if line.startswith("32 ")}
    assert "100, 120" in rows["A"] and "330, 330" in rows["B"]
    assert rows["B/A"].split()[2] == "3.00"  # 330 / 110 msg/s
    assert rows["B/A"].split()[-1] == "0.38"  # 3 / 8 ms of CPU per POST


def test_the_bench_reads_the_state_file_an_older_launcher_writes(tmp_path):
    topology = Topology(cluster_name="bench-a-1", port_offset=3100)
    processes = {"member-1": Process("member-1", "member", 8801, ["java"], {}, "http://x", "log", pid=11),
                 "logging-1": Process("logging-1", "logging", 11181, ["python"], {}, "http://x", "log", pid=12),
                 "messages-1": Process("messages-1", "messages", 11182, ["python"], {}, "http://x", "log", pid=13),
                 "facade-1": Process("facade-1", "facade", 11180, ["python"], {}, "http://x", "log", pid=14)}
    (tmp_path / "state.json").write_text(json.dumps(State("run", topology, processes).to_json()))
    side = Side.read("A", tmp_path)
    assert (side.cluster_name, side.port_offset, side.facade) == ("bench-a-1", 3100, "http://127.0.0.1:11180")
    assert side.member_addresses == ["127.0.0.1:8801"] and side.messages_urls == ["http://127.0.0.1:11182"]
    assert side.roots == {"member-1": 11, "logging-1": 12, "messages-1": 13, "facade-1": 14}


def test_a_path_that_is_not_a_checkout_is_refused_before_anything_starts(tmp_path):
    other = OtherCheckout(tmp_path, tmp_path / "run", port_offset=3100, cluster_name="x")
    assert "not a checkout" in other.check()
    assert OtherCheckout(Path(__file__).parents[2], tmp_path, port_offset=3100, cluster_name="x").check() == ""


def test_thread_cpu_times_a_method_only_while_measuring_and_puts_it_back():
    from labctl.bench.pieces import Piece, ServicePieces, ThreadCpu

    class Port:
        def call(self, n):
            return sum(i * i for i in range(n))

    original = Port.call
    cpu = ThreadCpu()
    with cpu.timing(Port, "call", "the call"):
        assert Port().call(10) == 285
        assert cpu.spent == {}
        cpu.measuring = True
        Port().call(200_000)
    assert Port.call is original
    assert cpu.spent["the call"] > 0
    result = ServicePieces("s", 10, process_ms=2.0, handler_ms=1.5, pieces=[Piece("a", 0.5), Piece("b", 0.25)])
    assert result.rest_ms == 0.75


def test_the_consumer_batch_is_what_was_taken_over_the_transactions_between_two_readings():
    from labctl.bench.systems import consumer_batch
    from labctl.probe import ConsumerCounts

    before, after = ConsumerCounts(100, 120, 10), ConsumerCounts(400, 420, 25)
    assert consumer_batch(before, after) == 20.0
    assert consumer_batch(before, before) is None  # no transaction in between
    assert consumer_batch(ConsumerCounts(1, None, None), ConsumerCounts(2, None, None)) is None  # older copies
    assert consumer_batch(None, after) is None


def test_a_transport_comparison_names_both_sides_and_judges_no_throughput_against_a(results):
    """With --transports A is this checkout over the other transport: the table says so, and the target of
    3 x A's throughput (new code against old) gives no verdict."""
    results.comparison = dataclasses.replace(comparison(), against="/work/wt --transport http --server granian",
                                             transports=["http", "grpc"])
    table = next(s for s in report_tables(results) if s.startswith("A/B"))
    assert "A = /work/wt --transport http --server granian" in table
    assert "B = this checkout, --transport grpc" in table
    rows = dict((what, met) for what, _, _, met in target_rows(results))
    assert rows["POST acknowledged at 32 clients"] == "no verdict (without --against)"
    results.comparison = comparison()
    assert "B = this checkout (" in next(s for s in report_tables(results) if s.startswith("A/B"))
    assert dict((w, m) for w, _, _, m in target_rows(results))["POST acknowledged at 32 clients"] == "yes"


def bench_args(*argv: str):
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return parser.parse_args(list(argv))


def test_transports_are_two_different_ones_and_start_both_systems_of_this_checkout():
    assert plan_from_args(bench_args("--transports", "http,grpc")).transports == ("http", "grpc")
    assert plan_from_args(bench_args()).transports == ()
    for wrong in ("http", "http,http", "http,smoke", "http,grpc,http"):
        with pytest.raises(SystemExit):
            bench_args("--transports", wrong)
    assert "drop --against" in options_problem(bench_args("--transports", "http,grpc", "--against", "../main"))
    assert "drop --attach" in options_problem(bench_args("--transports", "http,grpc", "--attach"))
    assert "--transports" in options_problem(bench_args("--transports", "grpc,http", "--member-ops"))
    assert options_problem(bench_args("--transports", "grpc,http")) == ""


def test_the_other_side_of_a_transport_comparison_is_started_with_its_transport(tmp_path):
    other = OtherCheckout(Path(__file__).parents[2], tmp_path, port_offset=3100, cluster_name="x",
                          start_options=("--transport", "http"))
    assert other.label.endswith(" --transport http") and other.check() == ""


def test_a_queue_comparison_names_both_channels_sets_their_latencies_side_by_side_and_judges_no_throughput(
        results):
    """--queues hazelcast,kafka: A and B differ in the channel, so the tables say which is which, each side's
    queue latency is shown with the ratio, and the 3 x A's throughput target (code against code) is not judged."""
    a_latency = dataclasses.replace(results.queue_latency, latency=Latency(100, 6.0, 15.0, 20.0, 7.0, 25.0))
    results.comparison = dataclasses.replace(comparison(), against="/work/main --queue hazelcast --server granian",
                                             queues=["hazelcast", "kafka"], a_queue_latency=a_latency)
    tables = report_tables(results)
    assert "B = this checkout, --queue kafka" in next(s for s in tables if s.startswith("A/B"))
    latency = next(s for s in tables if s.startswith("Queue latency, A/B"))
    rows = {line.split()[0]: line.split() for line in latency.splitlines()[2:]}
    assert rows["A"][1] == "hazelcast" and rows["B"][1] == "kafka"
    assert rows["A"][5] == "6.0" and rows["B"][5] == "12.0" and rows["B/A"][1] == "2.00"  # p50: 12 / 6 ms
    assert dict((w, m) for w, _, _, m in target_rows(results))["POST acknowledged at 32 clients"] == \
        "no verdict (without --against)"
    results.comparison = comparison()
    assert not any(s.startswith("Queue latency, A/B") for s in report_tables(results))


def test_queues_are_two_different_ones_and_start_both_systems_of_this_checkout():
    assert plan_from_args(bench_args("--queues", "hazelcast,kafka")).queues == ("hazelcast", "kafka")
    assert plan_from_args(bench_args()).queues == ()
    for wrong in ("kafka", "kafka,kafka", "kafka,rabbit"):
        with pytest.raises(SystemExit):
            bench_args("--queues", wrong)
    assert "drop --attach" in options_problem(bench_args("--queues", "hazelcast,kafka", "--attach"))
    assert "--queues" in options_problem(bench_args("--queues", "hazelcast,kafka", "--member-ops"))
    assert "give one of them" in options_problem(bench_args("--queues", "hazelcast,kafka", "--transports",
                                                            "http,grpc"))
    assert options_problem(bench_args("--queues", "kafka,hazelcast")) == ""
