"""Counting the members' operations from Hazelcast's diagnostics log: parsing, the difference between
two dumps, the log files, the table and the options."""

import argparse
import dataclasses
import json
from datetime import UTC, datetime

import pytest

from labctl.bench.command import add_arguments, member_ops_problem, plan_from_args, save
from labctl.bench.member_ops import (
    DiagnosticsLogs,
    ProfilerDump,
    clear_diagnostics,
    diagnostics_options,
    member_ops_between,
    operation_kind,
    parse_operation_counts,
)
from labctl.bench.report import member_ops_table, report_tables, short_names
from labctl.bench.results import BenchResults, MemberOpCount, MemberOps

PUT = "com.hazelcast.map.impl.operation.PutIfAbsentOperation"
PUT_TASK = "com.hazelcast.client.impl.protocol.task.map.MapPutIfAbsentMessageTask"
BACKUP = "com.hazelcast.spi.impl.operationservice.impl.operations.Backup"
HEARTBEAT = "com.hazelcast.internal.cluster.impl.operations.HeartbeatOp"

# as a member writes it: the empty first dump, another plugin's block, two dumps, one still being written
LOG = """\
01-12-2026 21:40:58 1796161258825 SlowOperations[]
01-12-2026 21:40:58 1796161258825 OperationsProfiler[]
01-12-2026 21:41:13 1796161273820 InvocationProfiler[
                          com.hazelcast.map.impl.operation.PutIfAbsentOperation[
                                  count=99
                                  latency-distribution[
                                          4..7us=99]]]
01-12-2026 21:41:18 1796161278846 OperationsProfiler[
                          com.hazelcast.map.impl.operation.PutIfAbsentOperation[
                                  count=2,318
                                  totalTime(us)=991,493
                                  avg(us)=442
                                  max(us)=20,732
                                  latency-distribution[
                                          8..15us=6
                                          16..31us=2,312]]
                          com.hazelcast.spi.impl.operationservice.impl.operations.Backup[
                                  count=24,491
                                  totalTime(us)=1,000
                                  avg(us)=1
                                  max(us)=10
                                  latency-distribution[
                                          1..3us=24,491]]]
01-12-2026 21:41:19 1796161279846 OperationsProfiler[
                          com.hazelcast.map.impl.operation.PutIfAbsentOperation[
                                  count=2,400
                                  totalTime(us)=1,000,000
                                  latency-distribution[
                                          16..31us=2,400]]
                          com.hazelcast.spi.impl.operationservice.impl.operations.Backup[
                                  count=25,000
                                  latency-distribution[
                                          1..3us=25,000]]
                          com.hazelcast.client.impl.protocol.task.map.MapPutIfAbsentMessageTask[
                                  count=82
                                  latency-distribution[
                                          64..127us=82]]]
01-12-2026 21:41:20 1796161280846 OperationsProfiler[
                          com.hazelcast.map.impl.operation.PutIfAbsentOperation[
                                  count=2,500
"""


def test_each_complete_profiler_block_gives_the_cumulative_count_of_every_class():
    assert parse_operation_counts(LOG) == {
        1796161258825: {},
        1796161278846: {PUT: 2318, BACKUP: 24491},
        1796161279846: {PUT: 2400, BACKUP: 25000, PUT_TASK: 82},
    }


def test_a_tail_cut_mid_block_starts_at_the_next_header():
    tail = LOG[LOG.index("avg(us)=442"):]
    assert list(parse_operation_counts(tail)) == [1796161279846]


def test_counts_are_read_whatever_the_thousands_separator():
    text = LOG.replace("count=25,000", "count=25.000").replace("count=2,400", "count=2\u00a0400")
    assert parse_operation_counts(text)[1796161279846] == {PUT: 2400, BACKUP: 25000, PUT_TASK: 82}


def test_operations_are_client_tasks_backups_or_operations():
    assert operation_kind(PUT_TASK) == "client task"
    assert operation_kind(BACKUP) == "backup"
    assert operation_kind(PUT) == operation_kind(HEARTBEAT) == "operation"
    assert operation_kind("com.hazelcast.map.impl.operation.PutBackupOperation") == "operation"


def dump(at_s: float, **counts: int) -> ProfilerDump:
    names = {"put": PUT, "task": PUT_TASK, "backup": BACKUP, "heartbeat": HEARTBEAT}
    return ProfilerDump(int(at_s * 1000), {names[k]: n for k, n in counts.items()})


def test_the_level_costs_what_every_member_ran_between_its_two_dumps_per_acknowledged_post():
    before = {"member-1": dump(100.0, put=50, task=50, backup=10, heartbeat=7),
              "member-2": dump(100.4, put=40, backup=90)}
    after = {"member-1": dump(111.0, put=150, task=150, backup=210, heartbeat=8),
             "member-2": dump(111.5, put=140, task=100, backup=290)}
    ops = member_ops_between(before, after, clients=32, acknowledged=200, load_s=10.0, period_s=1,
                             queue_drained=True)
    assert [(op.operation, op.count, op.per_post) for op in ops.operations] == [
        (BACKUP, 400, 2.0), (PUT_TASK, 200, 1.0), (PUT, 200, 1.0), (HEARTBEAT, 1, 0.005)]
    assert ops.by_member == {"member-1": 401, "member-2": 400}
    assert ops.per_post == 4.005
    assert ops.per_post_by_kind == {"backup": 2.0, "operation": 1.005, "client task": 1.0}
    assert ops.window_s == 11.5 and ops.error == ""


def test_a_member_without_a_dump_or_whose_counts_went_down_is_left_out_and_said_so():
    before = {"member-1": dump(100.0, put=50), "member-2": dump(100.0, put=40), "member-3": None}
    after = {"member-1": dump(111.0, put=150), "member-2": dump(111.0, put=3), "member-3": dump(111.0, put=9)}
    ops = member_ops_between(before, after, clients=32, acknowledged=100, load_s=10.0, period_s=1,
                             queue_drained=True)
    assert ops.by_member == {"member-1": 100}
    assert "member-3: no profiler dump before the level" in ops.error
    assert "member-2: counts went down" in ops.error


def test_the_latest_dump_of_each_member_is_read_from_its_own_log(tmp_path):
    (tmp_path / "diagnostics-127.0.0.1_8701-1796161258757-000.log").write_text(LOG)
    (tmp_path / "diagnostics-127.0.0.1_8702-1796161258451-000.log").write_text(LOG.split("01-12-2026 21:41:19")[0])
    logs = DiagnosticsLogs(tmp_path, {"member-1": 8701, "member-2": 8702, "member-3": 8703})
    assert logs.latest("member-1") == ProfilerDump(1796161279846, {PUT: 2400, BACKUP: 25000, PUT_TASK: 82})
    assert logs.latest("member-2").at_ms == 1796161278846
    assert logs.latest("member-3") is None


def test_waiting_for_dumps_gives_up_after_the_timeout_on_a_member_that_wrote_none_since(tmp_path):
    (tmp_path / "diagnostics-127.0.0.1_8701-1-000.log").write_text(LOG)
    now = [1796161279.0]

    def sleep(seconds):
        now[0] += seconds

    logs = DiagnosticsLogs(tmp_path, {"member-1": 8701, "member-2": 8702}, clock=lambda: now[0], sleep=sleep)
    found = logs.wait_for_dumps(1796161279.5, timeout=2.0)
    assert found["member-1"].at_ms == 1796161279846 and found["member-2"] is None
    assert now[0] >= 1796161281.0
    assert logs.wait_for_dumps(1796161280.0, timeout=0.5)["member-1"] is None  # written before `since`


def test_clearing_the_diagnostics_directory_removes_only_earlier_logs(tmp_path):
    directory = tmp_path / "diagnostics"
    clear_diagnostics(directory)
    (directory / "diagnostics-127.0.0.1_8701-1-000.log").write_text(LOG)
    (directory / "notes.txt").write_text("kept")
    clear_diagnostics(directory)
    assert [p.name for p in directory.iterdir()] == ["notes.txt"]


def test_the_member_options_turn_the_operation_profiler_on_into_the_directory(tmp_path):
    options = diagnostics_options(tmp_path, 2)
    assert "-Dhazelcast.diagnostics.enabled=true" in options
    assert f"-Dhazelcast.diagnostics.directory={tmp_path}" in options
    assert "-Dhazelcast.diagnostics.operation-profiler.period.seconds=2" in options
    assert "-Dhazelcast.diagnostics.metrics.period.seconds=0" in options


# --- the table and the options -----------------------------------------------------------------------


def member_ops(acknowledged: int = 1000) -> MemberOps:
    counts = [(BACKUP, "backup", 8700), (PUT, "operation", 1000), (PUT_TASK, "client task", 1000),
              ("com.hazelcast.collection.impl.queue.operations.OfferOperation", "operation", 1000),
              ("com.hazelcast.multimap.impl.operations.PutOperation", "operation", 12),
              ("com.hazelcast.map.impl.operation.PutOperation", "operation", 8), (HEARTBEAT, "operation", 3)]
    return MemberOps(clients=32, acknowledged=acknowledged, load_s=10.0, window_s=11.4, period_s=1,
                     queue_drained=True, by_member={"member-1": 11723},
                     operations=[MemberOpCount(op, kind, n, round(n / acknowledged, 4) if acknowledged else None)
                                 for op, kind, n in counts])


def results_with(ops: MemberOps) -> BenchResults:
    results = BenchResults(command=["labctl", "bench"], started_at="2026-12-01T10:00:00+00:00", mode="own system",
                           plan={}, machine={"nproc": 2}, load_before=[0.5, 0.4, 0.3])
    results.member_ops = ops
    return results


def test_the_table_shows_each_class_per_post_and_folds_the_rare_ones_into_one_row():
    table = member_ops_table(results_with(member_ops()))
    lines = table.splitlines()
    assert lines[1].split() == ["OPERATION", "KIND", "PER", "POST", "COUNT"]
    rows = [line.split() for line in lines[3:10]]
    assert rows[0] == ["Backup", "backup", "8.70", "8,700"]
    assert ["MapPutIfAbsentMessageTask", "client", "task", "1.00", "1,000"] in rows
    assert ["operations.PutOperation", "operation", "0.01", "12"] in rows  # 0.012 per POST; two PutOperations
    assert rows[5][-2:] == ["0.01", "11"] and " ".join(rows[5]).startswith("other (2 classes under 0.01 per POST)")
    assert rows[6] == ["all", "member", "operations", "11.72", "11,723"]
    assert "per POST by kind: backups 8.70, operations 2.02, client tasks 1.00" in table


def test_short_names_keep_a_package_part_only_where_two_classes_share_a_name():
    assert short_names([PUT, "a.b.PutIfAbsentOperation", BACKUP]) == {
        PUT: "operation.PutIfAbsentOperation", "a.b.PutIfAbsentOperation": "b.PutIfAbsentOperation",
        BACKUP: "Backup"}


def test_a_level_that_acknowledged_nothing_says_so_instead_of_a_table():
    ops = dataclasses.replace(member_ops(0), operations=[], error="member-1: no profiler dump after the level")
    assert member_ops_table(results_with(ops)).endswith("not measured: member-1: no profiler dump after the level")


def test_the_member_operations_are_saved_with_the_results(tmp_path):
    (path,) = save(results_with(member_ops()), tmp_path, datetime(2026, 12, 1, 10, 0, tzinfo=UTC))
    saved = json.loads(path.read_text())["member_ops"]
    assert saved["per_post"] == 11.723 and saved["operations"][0] == {
        "operation": BACKUP, "kind": "backup", "count": 8700, "per_post": 8.7}
    assert any(s.startswith("Member operations per acknowledged POST at 32") for s in report_tables(
        results_with(member_ops())))


def bench_args(*argv: str):
    parser = argparse.ArgumentParser()
    parser.add_argument("--run-dir")
    add_arguments(parser)
    return parser.parse_args(list(argv))


def test_member_ops_is_off_by_default_and_refused_with_a_system_the_bench_did_not_start():
    assert plan_from_args(bench_args()).member_ops is False and member_ops_problem(bench_args()) == ""
    assert plan_from_args(bench_args("--member-ops")).member_ops is True
    assert member_ops_problem(bench_args("--member-ops")) == ""
    assert "drop --attach" in member_ops_problem(bench_args("--member-ops", "--attach"))
    assert "--against" in member_ops_problem(bench_args("--member-ops", "--against", "../old-main"))


@pytest.mark.parametrize("levels, expected", [((1, 8, 32, 64), 32), ((1, 8), 8), ((64, 16), 64)])
def test_the_member_operations_are_counted_at_32_clients_or_the_largest_level(levels, expected):
    assert dataclasses.replace(plan_from_args(bench_args()), levels=levels).reference_clients == expected
