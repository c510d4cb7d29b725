"""docker-compose.consul.yml over docker-compose.yml, run for real with podman: Consul mode in containers
(a Consul agent instead of the config server, two facades), as `make run DISCOVERY=consul` runs it locally."""

from __future__ import annotations

import pytest
import requests
import yaml

from lab_common.consul_support import KV_PREFIX, KV_SETTINGS
from labctl.deps import ROOT
from labctl.experiment import run_experiment
from tests.compose.bring_up import brought_up

pytestmark = pytest.mark.compose

FILES = ["docker-compose.yml", "docker-compose.consul.yml"]


@pytest.fixture(scope="module")
def deployment(tmp_path_factory):
    with brought_up(FILES, tmp_path_factory.mktemp("podman")) as deployed:
        yield deployed


def test_consul_mode_runs_two_facades_and_no_config_server(deployment):
    assert deployment.names("facade") == ["facade-1", "facade-2"]
    assert deployment.names("config-server") == []
    passing = requests.get("http://127.0.0.1:8500/v1/health/service/logging-service?passing", timeout=5).json()
    assert sorted(e["Service"]["Address"] for e in passing) == ["logging-1", "logging-2", "logging-3"]


@pytest.mark.parametrize("facade", ["facade-1", "facade-2"])
def test_the_experiment_runs_through_either_facade(deployment, facade):
    lines = []
    assert run_experiment(deployment, count=10, out=lines.append, facade_name=facade) == 0, "\n".join(lines)


def test_the_seeded_keys_are_the_ones_the_services_read():
    """The compose file seeds Consul KV itself (`consul kv put`); the keys must be KV_SETTINGS's."""
    seed = yaml.safe_load((ROOT / "docker-compose.consul.yml").read_text())["services"]["consul-seed"]
    script = " ".join(seed["command"])
    seeded = {part.split()[0] for part in script.split("kv put -http-addr=consul:8500 ")[1:]}
    assert seeded == {KV_PREFIX + key for key in KV_SETTINGS}
