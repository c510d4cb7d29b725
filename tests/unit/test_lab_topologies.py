"""The lab's earlier systems as the launcher plans them: Task 1 (one logging copy on an in-memory store, a
messages stub, no queue, no members) and Task 3 (members, logging copies and the config server only)."""

from pathlib import Path

import pytest

from labctl.cli import _topology, build_parser, main
from labctl.launcher import System, Topology, kafka, plan, topology
from labctl.launcher.system import LauncherError

TASK_1 = Topology(members=0, logging=1, messages=1, logging_store="memory", messages_stub=True, queue="none")
TASK_3 = Topology(members=3, logging=3, messages=0, queue="none")


@pytest.fixture(autouse=True)
def no_jar_download(monkeypatch):
    monkeypatch.setattr(topology, "ensure_member_jar", lambda: Path("/cache/hazelcast.jar"))
    monkeypatch.setattr(topology, "ensure_jmx_exporter_jar", lambda: Path("/cache/jmx_prometheus_javaagent.jar"))
    monkeypatch.setattr(kafka, "ensure_kafka_libs", lambda: Path("/cache/kafka"))


def test_task_1_plans_a_facade_one_memory_logging_copy_and_a_stub_with_no_member_and_no_cluster_client(tmp_path):
    processes = plan(TASK_1, tmp_path, "run")
    assert sorted(processes) == ["config-server", "facade-1", "logging-1", "messages-1"]
    assert processes["logging-1"].env["LAB_LOGGING_STORE"] == "memory"
    assert processes["messages-1"].env["LAB_MESSAGES_STUB"] == "true"
    facade = processes["facade-1"].env
    assert (facade["LAB_QUEUE"], facade["LAB_HAZELCAST"]) == ("none", "false")
    assert not any("HZ_MEMBERS" in p.env for p in processes.values())
    assert TASK_1.problems() == []


def test_task_1_over_grpc_serves_grpc_from_the_memory_copy(tmp_path):
    processes = plan(Topology(**{**TASK_1.__dict__, "transport": "grpc"}), tmp_path, "run")
    assert processes["logging-1"].env["LAB_GRPC_PORT"] == "50051"
    assert processes["facade-1"].env["LAB_LOGGING_TRANSPORT"] == "grpc"


def test_task_3_plans_members_logging_and_the_config_server_and_a_facade_that_only_logs(tmp_path):
    processes = plan(TASK_3, tmp_path, "run")
    assert sorted(processes) == ["config-server", "facade-1", "logging-1", "logging-2", "logging-3",
                                 "member-1", "member-2", "member-3"]
    assert processes["facade-1"].env["LAB_QUEUE"] == "none"
    assert "LAB_HAZELCAST" not in processes["facade-1"].env  # its client shows the cluster on the status page
    assert not any("LAB_LOGGING_STORE" in p.env for p in processes.values())
    assert TASK_3.problems() == []


def test_the_default_system_gets_none_of_the_lab_settings(tmp_path):
    lab_settings = {"LAB_LOGGING_STORE", "LAB_MESSAGES_STUB", "LAB_HAZELCAST", "LAB_QUEUE"}
    assert not any(lab_settings & set(p.env) for p in plan(Topology(), tmp_path, "run").values())


@pytest.mark.parametrize(("chosen", "why"), [
    (Topology(members=0, logging_store="hazelcast", queue="none", messages=0), "--logging-store hazelcast"),
    (Topology(members=0, logging_store="memory", queue="none", messages=2), "messages copies"),
    (Topology(members=0, logging_store="memory", messages=0), "--queue hazelcast"),
    (Topology(members=0, logging_store="memory", queue="none", messages=0, discovery="consul"), "--discovery consul"),
    (Topology(queue="none"), "--queue none with 2 messages copies"),
    (Topology(messages_stub=True), "--messages-stub with --queue hazelcast"),
    (Topology(members=-1), "--members -1"),
])
def test_a_topology_that_cannot_run_says_why(chosen, why):
    assert any(why in problem for problem in chosen.problems())


def test_the_launcher_refuses_such_a_topology_before_it_starts_anything(tmp_path):
    with pytest.raises(LauncherError, match="need Hazelcast members"):
        System(tmp_path).start(Topology(members=0))
    assert not (tmp_path / "state.json").exists()


def test_labctl_passes_the_lab_options_to_the_topology():
    args = build_parser().parse_args(["start", "--members", "0", "--logging", "1", "--messages", "1",
                                      "--logging-store", "memory", "--messages-stub", "--queue", "none"])
    assert _topology(args) == Topology(members=0, logging=1, messages=1, logging_store="memory",
                                       messages_stub=True, queue="none")


@pytest.mark.parametrize("argv", [
    ["start", "--members", "0"],
    ["run", "--members", "0", "--logging-store", "hazelcast", "--queue", "none", "--messages", "0"],
    ["start", "--messages-stub"],
])
def test_labctl_refuses_with_exit_2_and_the_reason_and_starts_nothing(argv, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["--run-dir", str(tmp_path), *argv])
    assert exit_.value.code == 2
    assert "labctl" in capsys.readouterr().err
    assert not (tmp_path / "state.json").exists()
