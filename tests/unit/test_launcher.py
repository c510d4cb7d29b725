"""The launcher's plan and state file, without starting anything."""

import json
from pathlib import Path

import pytest

from scripts import launcher
from scripts.launcher import State, Topology, plan


@pytest.fixture(autouse=True)
def no_jar_download(monkeypatch):
    monkeypatch.setattr(launcher, "ensure_member_jar", lambda: Path("/cache/hazelcast.jar"))
    monkeypatch.setattr(launcher, "ensure_jmx_exporter_jar", lambda: Path("/cache/jmx_prometheus_javaagent.jar"))


def test_extra_member_java_options_come_after_the_jvm_options_and_before_the_main_class(tmp_path):
    topology = Topology(members=2, member_java_options=("-Dhazelcast.diagnostics.enabled=true", "-Xss1m"))
    argv = plan(topology, tmp_path, "run")["member-2"].argv
    assert argv[-3:] == ["-cp", "/cache/hazelcast.jar", "com.hazelcast.core.server.HazelcastMemberStarter"]
    assert argv[-5:-3] == ["-Dhazelcast.diagnostics.enabled=true", "-Xss1m"]
    assert argv.index("-Xmx1g") < argv.index("-Xss1m")  # a later -D or -X wins over hazelcast/jvm.options


def test_members_start_with_the_jvm_options_alone_by_default(tmp_path):
    argv = plan(Topology(members=1), tmp_path, "run")["member-1"].argv
    assert argv[argv.index("-cp") - 1].startswith("-Dlab.member.list=")


def test_the_state_file_round_trips_the_member_java_options(tmp_path):
    topology = Topology(members=1, logging=0, messages=0, facades=0, member_java_options=("-Da=1", "-Db=2"))
    state = State("run", topology, plan(topology, tmp_path, "run"))
    again = State.from_json(json.loads(json.dumps(state.to_json())))
    assert again.topology == topology and again.topology.member_java_options == ("-Da=1", "-Db=2")
    assert again.processes["member-1"].argv == state.processes["member-1"].argv


def test_a_state_file_written_before_member_java_options_existed_still_loads():
    older = {"run_id": "run", "processes": {},
             "topology": {"cluster_name": "lab", "members": 3, "logging": 3, "messages": 2, "facades": 1,
                          "port_offset": 0, "server": "granian", "discovery": "config-server"}}
    assert State.from_json(older).topology == Topology()
