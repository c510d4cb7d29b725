"""Bringing a compose deployment up with podman for a test, and down again whatever happens."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import uuid
import warnings
from collections.abc import Iterator
from pathlib import Path

from labctl import containers
from labctl.deps import ROOT
from labctl.docker_control import PROJECT_LABEL, DockerCompose

# what docker-compose.yml (and docker-compose.consul.yml) publish on 127.0.0.1
PUBLISHED = [5701, 5702, 5703, 8080, 8081, 8082, 8083, 8084, 8085, 8088, 8500, 8888, 9701, 9702, 9703]
BRING_UP_TIMEOUT = 240.0


def compose(project: str, files: list[str], *args: str, timeout: float = 300.0) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "podman_compose", "-p", project]
    for name in files:
        command += ["-f", str(ROOT / name)]
    return subprocess.run([*command, *args], env=containers.podman_env(), capture_output=True, text=True,
                          timeout=timeout)


def listening(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(0.5)
        return probe.connect_ex(("127.0.0.1", port)) == 0


@contextlib.contextmanager
def brought_up(files: list[str], scratch: Path) -> Iterator[DockerCompose]:
    """The compose files up (images built first), healthy and the cluster safe; taken down afterwards,
    failing if a container is left."""
    busy = [port for port in PUBLISHED if listening(port)]
    assert not busy, f"the compose files publish ports already in use here: {busy} (a `make run` still up?)"
    images = containers.ensure_images()
    warnings.warn(f"STAND-IN IMAGES: Docker Hub is unreachable here, so {containers.PYTHON_IMAGE}, "
                  f"{containers.hazelcast_image()} and {containers.consul_image()} are built locally "
                  f"(deploy/podman/), not pulled; images: {images}", stacklevel=1)
    project = f"labtest{uuid.uuid4().hex[:6]}"
    import docker

    with containers.docker_api(scratch / "podman.sock") as url:
        client = docker.DockerClient(base_url=url, timeout=60)
        try:
            up = compose(project, files, "up", "-d", "--no-build")
            assert up.returncode == 0, up.stdout + up.stderr
            deployed = DockerCompose(project, client=client)
            deployed.wait_healthy(timeout=BRING_UP_TIMEOUT)
            deployed.wait_cluster_safe(3, timeout=120)
            yield deployed
        finally:
            down = compose(project, files, "down", "-v", "-t", "10")
            left = client.containers.list(all=True, filters={"label": f"{PROJECT_LABEL}={project}"})
            with contextlib.suppress(Exception):
                client.close()
            assert down.returncode == 0, down.stdout + down.stderr
            assert left == [], f"containers left behind: {[c.name for c in left]}"
