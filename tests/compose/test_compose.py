"""docker-compose.yml, run for real: podman builds the project image from the Dockerfile (stand-ins for the
two Docker Hub images it cannot pull here), podman-compose brings the whole file up, and the experiment and
two drills run against the published ports and through the Docker SDK, on podman's Docker-compatible API.
Everything it starts is taken down again."""

from __future__ import annotations

import pytest

from labctl import containers, drills
from labctl.experiment import run_experiment
from tests.compose.bring_up import brought_up

pytestmark = pytest.mark.compose



@pytest.fixture(scope="module")
def deployment(tmp_path_factory):
    with brought_up(["docker-compose.yml"], tmp_path_factory.mktemp("podman")) as deployed:
        yield deployed


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
