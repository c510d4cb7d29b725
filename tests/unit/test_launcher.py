"""The launcher's plan and state file, without starting anything."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from labctl.launcher import State, Topology, kafka, plan, topology


@pytest.fixture(autouse=True)
def no_jar_download(monkeypatch):
    monkeypatch.setattr(topology, "ensure_member_jar", lambda: Path("/cache/hazelcast.jar"))
    monkeypatch.setattr(topology, "ensure_jmx_exporter_jar", lambda: Path("/cache/jmx_prometheus_javaagent.jar"))
    monkeypatch.setattr(kafka, "ensure_kafka_libs", lambda: Path("/cache/kafka"))


def test_extra_member_java_options_come_after_the_jvm_options_and_before_the_main_class(tmp_path):
    topology = Topology(members=2, member_java_options=("-Dhazelcast.diagnostics.enabled=true", "-Xss1m"))
    argv = plan(topology, tmp_path, "run")["member-2"].argv
    assert argv[-3:] == ["-cp", "/cache/hazelcast.jar", "com.hazelcast.core.server.HazelcastMemberStarter"]
    assert argv[-5:-3] == ["-Dhazelcast.diagnostics.enabled=true", "-Xss1m"]
    assert argv.index("-Xmx1g") < argv.index("-Xss1m")  # a later -D or -X wins over hazelcast/jvm.options


def test_members_start_with_the_jvm_options_alone_by_default(tmp_path):
    argv = plan(Topology(members=1), tmp_path, "run")["member-1"].argv
    assert argv[argv.index("-cp") - 1] == Topology(members=1).member_properties(1)[-1]  # nothing after them


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
    from labctl.cli import _topology, build_parser

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
    from labctl.launcher.prometheus import DEPLOYED_CONFIG, scrape_config

    assert DEPLOYED_CONFIG.read_text() == scrape_config(Topology(prometheus=True)), \
        "regenerate deploy/prometheus/prometheus.yml with labctl.launcher.prometheus.scrape_config"


def test_prometheus_scrapes_every_service_copy_and_member_on_the_systems_ports(monkeypatch, tmp_path):
    from labctl.launcher import prometheus

    monkeypatch.setattr(topology, "ensure_prometheus", lambda: "/usr/bin/prometheus")
    shifted = Topology(port_offset=3000, prometheus=True)
    jobs = {job: [address for _, address in found] for job, found in prometheus.targets(shifted).items()}
    assert jobs["members"] == ["127.0.0.1:12701", "127.0.0.1:12702", "127.0.0.1:12703"]
    assert jobs["logging"] == ["127.0.0.1:11081", "127.0.0.1:11083", "127.0.0.1:11085"]
    assert jobs["facade"] == ["127.0.0.1:11080"] and jobs["config-server"] == ["127.0.0.1:11888"]
    server = plan(shifted, tmp_path, "run")["prometheus"]
    assert server.port == 12090 and "--web.listen-address=127.0.0.1:12090" in server.argv
    assert f"--config.file={tmp_path / 'prometheus.yml'}" in server.argv
    assert "prometheus" not in plan(Topology(), tmp_path, "run")


def test_in_kafka_mode_one_broker_on_9092_is_formatted_then_started_and_the_channel_services_are_told(tmp_path):
    processes = plan(Topology(queue="kafka"), tmp_path, "0123456789abcdef0123456789abcdef")
    broker = processes["kafka-1"]
    assert (broker.kind, broker.port, broker.health_url) == ("broker", 9092, "127.0.0.1:9092")
    [format_storage] = broker.before
    assert format_storage[format_storage.index("-cp") + 1:][:3] == ["/cache/kafka/*", "kafka.tools.StorageTool",
                                                                     "format"]
    assert "--ignore-formatted" in format_storage and kafka.cluster_id("0123456789abcdef0123456789abcdef") in \
        format_storage
    assert broker.argv[-2:] == ["kafka.Kafka", str(tmp_path / "kafka-1" / "server.properties")]
    for name in ("facade-1", "messages-1", "messages-2"):
        assert processes[name].env["LAB_QUEUE"] == "kafka"
        assert processes[name].env["LAB_KAFKA_BOOTSTRAP"] == "127.0.0.1:9092"
    assert not any("LAB_QUEUE" in processes[f"logging-{i}"].env for i in (1, 2, 3))  # logging has no part in it


def test_in_hazelcast_mode_there_is_no_broker_and_the_services_start_as_before(tmp_path):
    processes = plan(Topology(), tmp_path, "run")
    assert not any(p.kind == "broker" for p in processes.values())
    assert not any("LAB_QUEUE" in p.env or "LAB_KAFKA_BOOTSTRAP" in p.env for p in processes.values())
    assert Topology(brokers=3).kafka_brokers == 0


def test_three_brokers_listen_on_their_own_ports_moved_by_the_offset_and_vote_in_one_quorum(tmp_path):
    topology = Topology(queue="kafka", brokers=3, port_offset=120)
    processes = plan(topology, tmp_path, "run")
    assert [processes[f"kafka-{i}"].port for i in (1, 2, 3)] == [9212, 9214, 9216]
    assert topology.kafka_controller_ports() == {"kafka-1 controller": 9213, "kafka-2 controller": 9215,
                                                 "kafka-3 controller": 9217}
    assert processes["facade-1"].env["LAB_KAFKA_BOOTSTRAP"] == "127.0.0.1:9212,127.0.0.1:9214,127.0.0.1:9216"
    kafka.write_configs(topology, tmp_path)
    config = dict(line.split("=", 1) for line in kafka.config_path(tmp_path, 2).read_text().splitlines()
                  if line and not line.startswith("#"))
    assert config["node.id"] == "2" and config["process.roles"] == "broker,controller"
    assert config["controller.quorum.voters"] == "1@127.0.0.1:9213,2@127.0.0.1:9215,3@127.0.0.1:9217"
    assert config["listeners"] == "PLAINTEXT://127.0.0.1:9214,CONTROLLER://127.0.0.1:9215"
    assert (config["default.replication.factor"], config["min.insync.replicas"]) == ("3", "2")
    assert config["offsets.topic.replication.factor"] == "3" and config["auto.create.topics.enable"] == "false"


def test_a_single_broker_replicates_nothing_and_acknowledges_alone(tmp_path):
    topology = Topology(queue="kafka")
    kafka.write_configs(topology, tmp_path)
    text = kafka.config_path(tmp_path, 1).read_text()
    assert "min.insync.replicas=1\n" in text and "offsets.topic.replication.factor=1\n" in text


def test_a_new_run_starts_its_brokers_with_empty_storage(tmp_path):
    topology = Topology(queue="kafka")
    kafka.write_configs(topology, tmp_path)
    (kafka.data_dir(tmp_path, 1) / "data").mkdir()
    kafka.write_configs(topology, tmp_path)
    assert not (kafka.data_dir(tmp_path, 1) / "data").exists()


def test_labctl_passes_the_queue_and_the_broker_count_to_the_topology():
    from labctl.cli import _topology, build_parser

    chosen = _topology(build_parser().parse_args(["start", "--queue", "kafka", "--brokers", "3"]))
    assert (chosen.queue, chosen.kafka_brokers) == ("kafka", 3)
    assert _topology(build_parser().parse_args(["run"])).queue == "hazelcast"


def test_a_state_file_round_trips_a_brokers_commands(tmp_path):
    topology = Topology(members=0, logging=0, messages=0, facades=0, queue="kafka")
    state = State("run", topology, plan(topology, tmp_path, "0" * 32))
    again = State.from_json(json.loads(json.dumps(state.to_json())))
    assert again.topology == topology and again.processes["kafka-1"].before == state.processes["kafka-1"].before


def test_a_kraft_cluster_id_never_starts_with_a_dash_which_the_storage_tool_would_take_for_an_option():
    import base64

    ids = [kafka.cluster_id(f"{first:02x}" + "ab" * 15) for first in range(256)]
    assert all(len(base64.urlsafe_b64decode(i + "==")) == 16 and not i.startswith("-") for i in ids)
    assert len(set(ids)) == 256 - 4  # the 4 first bytes that would give '-' share an id with their flip
    assert kafka.cluster_id("f8" + "ab" * 15) != kafka.cluster_id("f9" + "ab" * 15)
