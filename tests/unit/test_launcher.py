"""The launcher's plan and state file, without starting anything."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from scripts.launcher import State, Topology, plan, topology


@pytest.fixture(autouse=True)
def no_jar_download(monkeypatch):
    monkeypatch.setattr(topology, "ensure_member_jar", lambda: Path("/cache/hazelcast.jar"))
    monkeypatch.setattr(topology, "ensure_jmx_exporter_jar", lambda: Path("/cache/jmx_prometheus_javaagent.jar"))


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


def test_in_grpc_mode_each_logging_copy_also_serves_grpc_and_the_registry_names_those_ports(tmp_path):
    topology = Topology(port_offset=100, transport="grpc")
    processes = plan(topology, tmp_path, "run")
    assert [processes[f"logging-{i}"].env["LAB_GRPC_PORT"] for i in (1, 2, 3)] == ["50151", "50153", "50155"]
    assert processes["facade-1"].env["LAB_LOGGING_TRANSPORT"] == "grpc"
    assert topology.registry()["logging-service-grpc"] == ["127.0.0.1:50151", "127.0.0.1:50153", "127.0.0.1:50155"]
    assert topology.registry()["logging-service"][0] == "http://127.0.0.1:8181"  # reads stay on HTTP


def test_in_http_mode_no_copy_serves_grpc(tmp_path):
    topology = Topology()
    processes = plan(topology, tmp_path, "run")
    assert not any("LAB_GRPC_PORT" in p.env for p in processes.values())
    assert "LAB_LOGGING_TRANSPORT" not in processes["facade-1"].env  # the facade's default: http
    assert "logging-service-grpc" not in topology.registry() and topology.grpc_ports() == {}


def test_labctl_passes_the_transport_to_the_topology():
    from scripts.cli import _topology, build_parser

    assert _topology(build_parser().parse_args(["start", "--transport", "grpc"])).transport == "grpc"
    assert _topology(build_parser().parse_args(["run"])).transport == "http"


def test_the_services_it_starts_import_no_tool_only_package():
    blocked = ["matplotlib", "docker", "psutil"]  # pyproject's `tools` extra: not in the service image
    code = f"""
import importlib, importlib.abc, pkgutil, sys
class Blocked(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {blocked!r}:
            raise ImportError("tool-only package imported: " + name)
sys.meta_path.insert(0, Blocked())
for package in ("lab_common", "config_server", "logging_service", "messages_service", "facade_service"):
    module = importlib.import_module(package)
    for info in pkgutil.walk_packages(module.__path__, package + "."):
        if not info.name.endswith("__main__"):
            importlib.import_module(info.name)
"""
    done = subprocess.run([sys.executable, "-c", code], cwd=Path(__file__).parents[2], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]


def test_the_deployed_prometheus_config_is_the_one_the_launcher_writes_for_the_default_ports():
    from scripts.launcher.prometheus import DEPLOYED_CONFIG, scrape_config

    assert DEPLOYED_CONFIG.read_text() == scrape_config(Topology(prometheus=True)), \
        "regenerate deploy/prometheus/prometheus.yml with scripts.launcher.prometheus.scrape_config"


def test_prometheus_scrapes_every_service_copy_and_member_on_the_systems_ports(monkeypatch, tmp_path):
    from scripts.launcher import prometheus

    monkeypatch.setattr(prometheus, "ensure_prometheus", lambda: "/usr/bin/prometheus")
    shifted = Topology(port_offset=3000, prometheus=True)
    jobs = {job: [address for _, address in found] for job, found in prometheus.targets(shifted).items()}
    assert jobs["members"] == ["127.0.0.1:12701", "127.0.0.1:12702", "127.0.0.1:12703"]
    assert jobs["logging"] == ["127.0.0.1:11081", "127.0.0.1:11083", "127.0.0.1:11085"]
    assert jobs["facade"] == ["127.0.0.1:11080"] and jobs["config-server"] == ["127.0.0.1:11888"]
    server = plan(shifted, tmp_path, "run")["prometheus"]
    assert server.port == 12090 and "--web.listen-address=127.0.0.1:12090" in server.argv
    assert f"--config.file={tmp_path / 'prometheus.yml'}" in server.argv
    assert "prometheus" not in plan(Topology(), tmp_path, "run")
