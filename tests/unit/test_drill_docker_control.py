"""The Docker Compose adapter's mapping from the launcher's names to containers, over a hand-written fake
of the Docker SDK client (no engine needed)."""

from __future__ import annotations

import pytest
import yaml

from labctl.control import ControlError
from labctl.docker_control import DockerCompose, DockerControlError, kind_of, lab_name
from labctl.launcher import ROOT, Topology


class FakeContainer:
    def __init__(self, name: str, service: str, number: int = 1, *, project: str = "lab", status: str = "running",
                 ports: dict | None = None, ip: str = "172.18.0.2"):
        self.name = name
        self.labels = {"com.docker.compose.project": project, "com.docker.compose.service": service,
                       "com.docker.compose.container-number": str(number)}
        self.status = status
        self.ports = ports or {}
        self.attrs = {"State": {"Pid": 4242}, "NetworkSettings": {"Networks": {"lab_default": {"IPAddress": ip}}}}
        self.calls: list[tuple] = []

    def kill(self, signal=None):
        self.calls.append(("kill", signal))
        self.status = "exited"

    def start(self):
        self.calls.append(("start",))
        self.status = "running"

    def stop(self, timeout=None):
        self.calls.append(("stop", timeout))
        self.status = "exited"

    def reload(self):
        pass


class FakeContainers:
    def __init__(self, containers: list[FakeContainer]):
        self._containers = containers

    def list(self, all=False, filters=None):
        project = filters["label"].split("=", 1)[1]
        return [c for c in self._containers if c.labels["com.docker.compose.project"] == project]


class FakeDockerClient:
    def __init__(self, containers: list[FakeContainer]):
        self.containers = FakeContainers(containers)


@pytest.fixture
def containers():
    return [
        FakeContainer("lab-hazelcast-1", "hazelcast", 1, ip="172.18.0.11"),
        FakeContainer("lab-hazelcast-2", "hazelcast", 2, ip="172.18.0.12"),
        FakeContainer("lab-logging-service-2-1", "logging-service-2", ports={"8081/tcp": [{"HostPort": "8083"}]}),
        FakeContainer("lab-logging-service-1-1", "logging-service-1", ports={"8081/tcp": [{"HostPort": "8081"}]}),
        FakeContainer("lab-facade-service-1", "facade-service", ports={"8080/tcp": [{"HostPort": "8080"}]}),
        FakeContainer("lab-config-server-1", "config-server", ports={"8888/tcp": None}, ip="172.18.0.5"),
        FakeContainer("lab-consul-1", "consul"),
        FakeContainer("other-hazelcast-1", "hazelcast", 1, project="other"),
    ]


@pytest.fixture
def compose(containers):
    return DockerCompose("lab", client=FakeDockerClient(containers), cluster_name="dev")


def test_compose_labels_give_the_launchers_names():
    assert lab_name({"com.docker.compose.service": "hazelcast", "com.docker.compose.container-number": "3"}) \
        == "member-3"
    assert lab_name({"com.docker.compose.service": "logging-service-2"}) == "logging-2"
    assert lab_name({"com.docker.compose.service": "config-server"}) == "config-server"
    assert lab_name({"com.docker.compose.service": "consul"}) is None
    assert kind_of("logging-2") == "logging" and kind_of("config-server") == "config-server"


def test_names_cover_only_this_projects_known_services_by_kind(compose):
    assert compose.names() == ["config-server", "facade-1", "logging-1", "logging-2", "member-1", "member-2"]
    assert compose.names("member") == ["member-1", "member-2"]
    assert compose.names("logging") == ["logging-1", "logging-2"]


def test_url_is_the_published_port_else_the_containers_own_address(compose):
    assert compose.url("logging-2") == "http://127.0.0.1:8083"
    assert compose.url("config-server") == "http://172.18.0.5:8888"


def test_members_are_addressed_inside_the_compose_network(compose):
    assert compose.hazelcast_cluster() == ("dev", {"member-1": "172.18.0.11:5701", "member-2": "172.18.0.12:5701"})


def test_kill_sends_sigkill_to_that_container_only(compose, containers):
    compose.kill("member-2")
    assert containers[1].calls == [("kill", "SIGKILL")]
    assert containers[0].calls == [] and containers[7].calls == []


def test_start_and_terminate_reach_the_named_container(compose, containers):
    compose.terminate("logging-1", timeout=7.5)
    compose.start_process("logging-1", wait=False)
    assert containers[3].calls == [("stop", 7), ("start",)]


def test_a_stopped_container_is_reported_not_running(compose):
    compose.kill("member-1")
    assert compose.health("member-1") == (False, "not running")


def test_an_unknown_name_says_what_is_known(compose):
    with pytest.raises(DockerControlError, match="known: config-server, facade-1"):
        compose.kill("messages-1")


def containers_of_the_compose_file() -> list[FakeContainer]:
    """The containers `docker compose up` makes of this repo's docker-compose.yml, as the SDK lists them."""
    compose_file = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    made = []
    for service, spec in compose_file["services"].items():
        container = FakeContainer(f"{compose_file['name']}-{service}-1", service, project=compose_file["name"])
        container.labels.update(spec.get("labels", {}))
        for binding in spec.get("ports", []):
            host, host_port, container_port = binding.split(":")
            container.ports[f"{container_port}/tcp"] = [{"HostIp": host, "HostPort": host_port}]
        made.append(container)
    return made


def test_the_projects_compose_file_runs_the_launchers_default_system_under_the_launchers_names_and_ports():
    default = Topology()
    expected = {"config-server": default.config_port,
                **{f"member-{i}": default.member_port(i) for i in range(1, default.members + 1)},
                **{f"logging-{i}": default.logging_port(i) for i in range(1, default.logging + 1)},
                **{f"messages-{i}": default.messages_port(i) for i in range(1, default.messages + 1)},
                **{f"facade-{i}": default.facade_port(i) for i in range(1, default.facades + 1)}}
    containers = containers_of_the_compose_file()
    compose = DockerCompose(containers[0].labels["com.docker.compose.project"],
                            client=FakeDockerClient(containers))
    assert compose.names() == sorted(expected)
    for name, port in expected.items():
        if kind_of(name) != "member":  # a member's first published port is its metrics exporter's
            assert compose.url(name) == f"http://127.0.0.1:{port}", name
    for container in containers:
        name = container.labels["lab.process"]
        assert container.labels["lab.kind"] == kind_of(name), name
        assert f"127.0.0.1:{expected[name]}" in {f"{b[0]['HostIp']}:{b[0]['HostPort']}"
                                                 for b in container.ports.values()}, name


def test_its_errors_are_control_errors_the_drills_and_labctl_report(compose):
    with pytest.raises(ControlError):
        compose.url("member-7")
