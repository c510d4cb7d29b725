"""docker-compose.yml, run for real: podman builds the project image from the Dockerfile (stand-ins for the
two Docker Hub images it cannot pull here), podman-compose brings the whole file up, and the experiment and
two drills run against the published ports and through the Docker SDK, on podman's Docker-compatible API.
Everything it starts is taken down again."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import uuid
import warnings

import pytest

from scripts import containers, drills
from scripts.deps import ROOT
from scripts.docker_control import PROJECT_LABEL, DockerCompose
from scripts.experiment import run_experiment

pytestmark = pytest.mark.compose

PUBLISHED = [5701, 5702, 5703, 8080, 8081, 8082, 8083, 8084, 8085, 8888, 9701, 9702, 9703]  # docker-compose.yml
BRING_UP_TIMEOUT = 240.0


def compose(project: str, *args: str, timeout: float = 300.0) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "podman_compose", "-p", project, "-f", str(ROOT / "docker-compose.yml"), *args]
    return subprocess.run(command, env=containers.podman_env(), capture_output=True, text=True, timeout=timeout)


def listening(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(0.5)
        return probe.connect_ex(("127.0.0.1", port)) == 0


@pytest.fixture(scope="module")
def deployment(tmp_path_factory):
    busy = [port for port in PUBLISHED if listening(port)]
    assert not busy, f"docker-compose.yml publishes ports already in use here: {busy} (a `make run` still up?)"
    images = containers.ensure_images()
    warnings.warn(f"STAND-IN IMAGES: Docker Hub is unreachable here, so {containers.PYTHON_IMAGE} and "
                  f"{containers.hazelcast_image()} are built locally (deploy/podman/), not pulled; ran {images}",
                  stacklevel=1)
    project = f"labtest{uuid.uuid4().hex[:6]}"
    import docker

    with containers.docker_api(tmp_path_factory.mktemp("podman") / "podman.sock") as url:
        client = docker.DockerClient(base_url=url, timeout=60)
        try:
            up = compose(project, "up", "-d", "--no-build")
            assert up.returncode == 0, up.stdout + up.stderr
            deployed = DockerCompose(project, client=client)
            deployed.wait_healthy(timeout=BRING_UP_TIMEOUT)
            deployed.wait_cluster_safe(3, timeout=120)
            yield deployed
        finally:
            down = compose(project, "down", "-v", "-t", "10")
            left = client.containers.list(all=True, filters={"label": f"{PROJECT_LABEL}={project}"})
            with contextlib.suppress(Exception):
                client.close()
            assert down.returncode == 0, down.stdout + down.stderr
            assert left == [], f"containers left behind: {[c.name for c in left]}"


def test_every_service_of_the_compose_file_comes_up_healthy(deployment):
    rows = deployment.status()
    assert sorted(r["name"] for r in rows) == ["config-server", "facade-1", "logging-1", "logging-2", "logging-3",
                                                "member-1", "member-2", "member-3", "messages-1", "messages-2"]
    assert [r["name"] for r in rows if not (r["running"] and r["healthy"])] == []


def test_the_experiment_runs_through_the_published_facade_port(deployment):
    lines = []
    assert run_experiment(deployment, count=10, out=lines.append) == 0, "\n".join(lines)


@pytest.mark.parametrize("drill", ["map_lab", "queue_lab"])
def test_drills_through_the_docker_sdk_keep_the_promise(deployment, drill):
    report = getattr(drills, drill)(deployment, print)
    text = report.to_text()
    assert report.posted > 0 and report.lost == [] and report.duplicated == [], text
    assert report.problems == [] and report.verdict == "PASS", text


def test_the_service_image_is_slim_unprivileged_and_checks_its_health(deployment):
    run = containers.podman("run", "--rm", "--entrypoint", "python", containers.PROJECT_IMAGE, "-c",
                            "import os, importlib.util as u; print(os.getuid(), "
                            "[m for m in ('matplotlib', 'pytest', 'docker', 'psutil') if u.find_spec(m)])",
                            capture=True, check=False)
    assert run.returncode == 0, run.stderr
    uid, extras = run.stdout.strip().split(" ", 1)
    assert int(uid) != 0 and extras == "[]", run.stdout
    check = containers.podman("image", "inspect", "--format", "{{json .Config.Healthcheck}}",
                              containers.PROJECT_IMAGE, capture=True)
    assert "/health" in check.stdout
