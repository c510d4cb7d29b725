"""The drills' controller for a Docker Compose deployment: the launcher's verbs over the project's containers,
through the Docker SDK (`docker` package).

It cannot run on the lab machines (no Docker engine), so it stays thin: it only maps the launcher's names
(member-2, logging-3, config-server) to containers by their Compose labels and turns each verb into one SDK
call; the drills themselves are the same as against the launcher's processes.
"""

from __future__ import annotations

import time
from collections.abc import Mapping

import requests

from labctl.control import ControlError, StatusRow
from labctl.probe import MemberHealth, health_at, member_health

PROJECT_LABEL = "com.docker.compose.project"
SERVICE_LABEL = "com.docker.compose.service"
PROCESS_LABEL = "lab.process"
NUMBER_LABEL = "com.docker.compose.container-number"
MEMBER_PORT = 5701

# Compose service -> the launcher's kind. Copies are told apart by Compose's container number (a scaled
# service) or by a -N suffix of the service name (logging-service-2).
SERVICE_KINDS = {
    "hazelcast": "member",
    "config-server": "config-server",
    "logging-service": "logging",
    "messages-service": "messages",
    "facade-service": "facade",
}


class DockerControlError(ControlError):
    """A container the drills need is missing, exposes no port or does not get healthy in time."""


def lab_name(labels: Mapping[str, str], kinds: Mapping[str, str] = SERVICE_KINDS) -> str | None:
    """The launcher's name of a container from its Compose labels (None for a service drills don't know).
    The project's own docker-compose.yml names each container in a `lab.process` label (member-2, logging-3)."""
    if labels.get(PROCESS_LABEL):
        return labels[PROCESS_LABEL]
    service = labels.get(SERVICE_LABEL, "")
    number = labels.get(NUMBER_LABEL, "1")
    base, _, suffix = service.rpartition("-")
    if suffix.isdigit() and base in kinds:
        service, number = base, suffix
    kind = kinds.get(service)
    if kind is None:
        return None
    return kind if kind == "config-server" else f"{kind}-{number}"


def kind_of(name: str) -> str:
    base, _, suffix = name.rpartition("-")
    return base if suffix.isdigit() else name


class DockerCompose:
    """The containers of one Compose project, driven like the launcher's System."""

    def __init__(self, project: str, *, cluster_name: str = "lab", client=None, host: str = "127.0.0.1",
                 kinds: Mapping[str, str] = SERVICE_KINDS):
        self.project = project
        self.cluster_name = cluster_name
        self.host = host
        self._kinds = kinds
        self._client = client

    @property
    def client(self):
        if self._client is None:
            import docker  # only here: the package is useless without an engine to talk to

            self._client = docker.from_env()
        return self._client

    def _containers(self) -> dict:
        listed = self.client.containers.list(all=True, filters={"label": f"{PROJECT_LABEL}={self.project}"})
        named = {lab_name(c.labels, self._kinds): c for c in listed}
        named.pop(None, None)
        return dict(sorted(named.items()))

    def _container(self, name: str):
        containers = self._containers()
        if name not in containers:
            raise DockerControlError(f"no container for {name!r} in Compose project {self.project!r}; "
                                f"known: {', '.join(containers) or 'none'}")
        return containers[name]

    def names(self, kind: str | None = None) -> list[str]:
        return [n for n in self._containers() if kind is None or kind_of(n) == kind]

    def _address(self, container) -> str:
        networks = container.attrs.get("NetworkSettings", {}).get("Networks", {})
        return next((n["IPAddress"] for n in networks.values() if n.get("IPAddress")), self.host)

    def url(self, name: str) -> str:
        """The first port published on this host, else the container's own address and first exposed port."""
        container = self._container(name)
        ports = container.ports or {}
        published = [bindings[0]["HostPort"] for _, bindings in sorted(ports.items()) if bindings]
        if published:
            return f"http://{self.host}:{published[0]}"
        if ports:
            return f"http://{self._address(container)}:{sorted(ports)[0].split('/')[0]}"
        raise DockerControlError(f"{name} exposes no port")

    def hazelcast_cluster(self) -> tuple[str, dict[str, str]]:
        containers = self._containers()
        return self.cluster_name, {n: f"{self._address(c)}:{MEMBER_PORT}" for n, c in containers.items()
                                   if kind_of(n) == "member"}

    def kafka_brokers(self) -> dict[str, str]:
        """docker-compose.yml runs no broker (docs/kafka.md): the Kafka drills refuse a Compose deployment."""
        return {}

    def kill(self, name: str) -> float:
        self._container(name).kill(signal="SIGKILL")
        return time.time()

    def freeze(self, name: str) -> float:
        self._container(name).pause()
        return time.time()

    def thaw(self, name: str) -> float:
        self._container(name).unpause()
        return time.time()

    def terminate(self, name: str, timeout: float = 20.0) -> None:
        self._container(name).stop(timeout=int(timeout))

    def start_process(self, name: str, *, wait: bool = True, timeout: float = 60.0) -> None:
        self._container(name).start()
        if wait:
            self.wait_healthy([name], timeout=timeout)

    def restart(self, name: str, *, wait: bool = True, timeout: float = 60.0) -> None:
        self.terminate(name)
        self.start_process(name, wait=wait, timeout=timeout)

    def _health_url(self, name: str) -> str:
        if kind_of(name) == "member":
            return f"http://{self.hazelcast_cluster()[1][name]}/hazelcast/health"
        return self.url(name) + "/health"

    def _member_health(self, name: str) -> MemberHealth | None:
        try:
            return member_health(self._health_url(name), 1.0)
        except requests.RequestException:
            return None

    def health(self, name: str, timeout: float = 1.0) -> tuple[bool, str]:
        container = self._container(name)
        container.reload()
        if container.status != "running":
            return False, "not running"
        try:
            if kind_of(name) == "member":
                member = member_health(self._health_url(name), timeout)
                if member.status != 200:
                    return False, f"HTTP {member.status}"
                return member.active, f"cluster of {member.cluster_size}"
            health = health_at(self._health_url(name), timeout)
        except requests.RequestException as err:
            return False, f"no answer ({type(err).__name__})"
        return (True, "ok") if health.healthy else (False, f"HTTP {health.status}")

    def status(self) -> list[StatusRow]:
        rows = []
        for name, container in self._containers().items():
            ok, detail = self.health(name)
            running = container.status == "running"
            rows.append({"name": name, "kind": kind_of(name), "url": container.name,
                         "pid": container.attrs.get("State", {}).get("Pid") if running else None,
                         "running": running, "healthy": ok, "detail": detail, "log": f"docker logs {container.name}"})
        return rows

    def wait_healthy(self, names: list[str] | None = None, *, timeout: float = 120.0, progress=None) -> None:
        pending = list(names or self.names())
        deadline = time.monotonic() + timeout
        while pending:
            pending = [n for n in pending if not self.health(n)[0]]
            if pending and time.monotonic() > deadline:
                raise DockerControlError(f"not healthy in time: {', '.join(pending)}")
            if pending:
                time.sleep(0.5)

    def wait_cluster_safe(self, size: int, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while True:
            members = [n for n in self.names("member") if self.health(n)[0]]
            seen = [self._member_health(n) for n in members]
            if seen and all(m is not None and m.safe_with(size) for m in seen):
                return
            if time.monotonic() > deadline:
                raise DockerControlError(f"cluster not safe with {size} members after {timeout:.0f}s")
            time.sleep(0.5)
