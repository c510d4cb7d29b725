"""One source of truth: the launcher (scripts/labctl/launcher/topology.py), docker-compose.yml and deploy/k8s agree
on the copies' names and ports, the environment each service reads (its settings class names the variables),
and the Hazelcast settings of hazelcast/member.yaml, hazelcast/member-compose.yaml and deploy/k8s.

A deliberate difference is named here with its reason.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml

from config_server.settings import ConfigServerSettings
from facade_service.settings import FacadeSettings
from lab_common.consul_support import KV_PREFIX, kv_defaults
from lab_common.contracts import member_metrics_address
from lab_common.settings import configurable_fields
from labctl.deps import HAZELCAST_DIR, ROOT, hazelcast_version
from labctl.launcher import Topology, plan, topology
from logging_service.settings import LoggingSettings
from messages_service.settings import MessagesSettings
from tests.deploy.conftest import K8S, container, find

pytestmark = pytest.mark.deploy

SETTINGS = {"config-server": ConfigServerSettings, "logging": LoggingSettings, "messages": MessagesSettings,
            "facade": FacadeSettings}
HAZELCAST_CLIENTS = ("logging", "messages", "facade")
KINDS = ("member", *SETTINGS)
RUN_BY_MODE = [(mode, kind) for mode in ("config-server", "consul") for kind in SETTINGS
               if not (mode == "consul" and kind == "config-server")]  # Consul answers the addresses there

# Properties of hazelcast/member.yaml that only make sense on one machine, and why.
LOOPBACK_ONLY = {
    # the launcher runs the bare jar (JDK logging); the image brings its own log4j2 set-up
    "hazelcast.logging.type",
    # on one machine members listen on 127.0.0.1 only; in a pod or a container they must accept their peers
    "hazelcast.socket.bind.any",
}
# Properties only deploy/k8s sets: a deleted pod (rolling update, drain) hands its partitions over first.
K8S_ONLY = {"hazelcast.shutdownhook.policy": "GRACEFUL", "hazelcast.graceful.shutdown.max.wait": 60}
FAILURE_DETECTION = ("hazelcast.wait.seconds.before.join", "hazelcast.heartbeat.interval.seconds",
                     "hazelcast.max.no.heartbeat.seconds")
MEMBER_PORT = 5701


def reads(kind: str) -> set[str]:
    """The environment variables a service's settings class declares."""
    return {f.metadata["env"] for f in configurable_fields(SETTINGS[kind])}


def kind_of(name: str) -> str:
    base, _, number = name.rpartition("-")
    return base if number.isdigit() else name


def load_yaml(path: Path) -> dict:
    return yaml.safe_load(path.read_text())


# --- the three sources ---------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def launcher(tmp_path_factory) -> dict[str, dict]:
    """The launcher's processes per mode, as `labctl start` plans them (config-server; consul, as
    `make run DISCOVERY=consul` with its two facades)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(topology, "ensure_member_jar", lambda: Path("/cache/hazelcast.jar"))
        patch.setattr(topology, "ensure_jmx_exporter_jar", lambda: Path("/cache/jmx_prometheus_javaagent.jar"))
        patch.setattr(topology, "ensure_consul", lambda: Path("/cache/consul"))
        run_dir = tmp_path_factory.mktemp("run")
        return {"config-server": plan(Topology(), run_dir, "run"),
                "consul": plan(Topology(discovery="consul", facades=2), run_dir, "run")}


@pytest.fixture(scope="module")
def compose() -> dict[str, dict]:
    """docker-compose.yml's services that start without a profile (the config-server mode)."""
    services = load_yaml(ROOT / "docker-compose.yml")["services"]
    return {name: service for name, service in services.items() if not service.get("profiles")}


def compose_env(service: dict) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {name: str(value) for name, value in env.items()}


def compose_ports(service: dict) -> list[tuple[int, int]]:
    """(published, container) port pairs."""
    pairs = []
    for port in service.get("ports", []):
        if isinstance(port, dict):
            pairs.append((int(port["published"]), int(port["target"])))
        else:
            *_, published, target = str(port).split(":")
            pairs.append((int(published), int(target)))
    return pairs


def k8s_env(objects: list[dict], workload: dict) -> dict[str, str]:
    """A container's environment as the pod sees it: ConfigMap keys read, $(VAR) expanded; a field from
    the downward API shows as <fieldPath>."""
    values: dict[str, str] = {}
    for entry in container(workload).get("env", []):
        source = entry.get("valueFrom", {})
        if "configMapKeyRef" in source:
            ref = source["configMapKeyRef"]
            value = next(o for o in objects if o["kind"] == "ConfigMap" and o["metadata"]["name"] == ref["name"])[
                "data"][ref["key"]]
        elif "fieldRef" in source:
            value = f"<{source['fieldRef']['fieldPath']}>"
        else:
            value = re.sub(r"\$\((\w+)\)", lambda m: values.get(m.group(1), m.group(0)), entry["value"])
        values[entry["name"]] = value
    return values


def k8s_workload(objects: list[dict], kind: str) -> dict:
    """Each kind is one workload named for it (the members' StatefulSet is `member`)."""
    (found,) = [o for o in objects if o["kind"] in ("StatefulSet", "Deployment") and o["metadata"]["name"] == kind]
    return found


def k8s_pod_names(workload: dict) -> list[str]:
    start = workload["spec"].get("ordinals", {}).get("start", 0)
    return [f"{workload['metadata']['name']}-{start + i}" for i in range(workload["spec"]["replicas"])]


def k8s_member_config(objects: list[dict]) -> dict:
    return yaml.safe_load(find(objects, "ConfigMap", "member-config")["data"]["member.yaml"])["hazelcast"]


# --- names and ports ------------------------------------------------------------------------------------

@pytest.mark.parametrize("mode", ["config-server", "consul"])
def test_each_kind_has_as_many_copies_in_the_launcher_and_in_kubernetes(launcher, rendered, mode):
    planned = [kind_of(name) for name, process in launcher[mode].items() if process.kind in KINDS]
    for kind in KINDS:
        if (mode, kind) not in RUN_BY_MODE and kind != "member":
            continue
        assert k8s_workload(rendered[mode], kind)["spec"]["replicas"] == planned.count(kind), kind


def test_compose_runs_the_launchers_processes_under_the_launchers_names(launcher, compose):
    assert set(compose) == set(launcher["config-server"])
    for name, service in compose.items():
        assert service["labels"]["lab.process"] == name
        assert service["labels"]["lab.kind"] == launcher["config-server"][name].kind


@pytest.mark.parametrize("kind", ["member", "logging", "messages"])
def test_kubernetes_names_each_member_and_copy_as_the_launcher_does(launcher, rendered, kind):
    pods = k8s_pod_names(k8s_workload(rendered["config-server"], kind))
    assert pods == [name for name, p in launcher["config-server"].items() if p.kind == kind]


def test_every_compose_copy_listens_on_the_launchers_port(launcher, compose):
    for name, service in compose.items():
        port = launcher["config-server"][name].port
        if kind_of(name) == "member":
            assert (port, MEMBER_PORT) in compose_ports(service), name
        else:
            assert compose_env(service)["LAB_PORT"] == str(port), name
            assert (port, port) in compose_ports(service), name


@pytest.mark.parametrize("kind", KINDS)
def test_kubernetes_copies_listen_on_the_port_of_the_launchers_first_copy(launcher, rendered, kind):
    """One pod template per kind, so one port: logging-2 listens on 8081 where the launcher's, sharing one
    machine, listens on 8083."""
    objects = rendered["config-server"]
    first = launcher["config-server"][f"{kind}-1" if kind != "config-server" else kind].port
    workload = k8s_workload(objects, kind)
    (served,) = [p["containerPort"] for p in container(workload)["ports"] if p["name"] in ("http", "hazelcast")]
    assert served == first
    if kind != "member":
        assert k8s_env(objects, workload)["LAB_PORT"] == str(first)
    service = find(objects, "Service", kind)
    assert first in [p["port"] for p in service["spec"]["ports"]]


def test_the_three_registries_list_the_same_copies_in_the_same_order(launcher, compose, rendered):
    processes = launcher["config-server"]
    by_port = {p.port: name for name, p in processes.items()}
    registry = Topology().registry()
    expected = {service: [by_port[urlsplit(url).port] for url in urls] for service, urls in registry.items()}

    compose_registry = json.loads((ROOT / "config_server" / "registry.compose.json").read_text())
    for service, urls in compose_registry.items():
        hosts = [urlsplit(url) for url in urls]
        assert [h.hostname for h in hosts] == expected[service], service
        assert all(compose_env(compose[h.hostname])["LAB_PORT"] == str(h.port) for h in hosts), service
    assert compose_registry.keys() == expected.keys()

    objects = rendered["config-server"]
    k8s_registry = json.loads(find(objects, "ConfigMap", "registry")["data"]["registry.json"])
    assert k8s_registry.keys() == expected.keys()
    for service, urls in k8s_registry.items():
        named = []
        for url in map(urlsplit, urls):
            host, _, headless = url.hostname.partition(".")
            workload = k8s_workload(objects, kind_of(host))
            assert url.port == container(workload)["ports"][0]["containerPort"], url.geturl()
            if headless:  # one copy, by the DNS name its StatefulSet's headless Service gives it
                assert headless == workload["spec"]["serviceName"] and host in k8s_pod_names(workload)
                named.append(host)
            else:  # a load-balanced Service: every copy behind it
                named += [f"{host}-{i}" for i in range(1, workload["spec"]["replicas"] + 1)]
        assert named == expected[service], service


# --- the environment each service reads -------------------------------------------------------------------

@pytest.mark.parametrize(("mode", "kind"), RUN_BY_MODE)
def test_kubernetes_sets_what_the_launcher_sets_that_the_service_reads_and_nothing_it_does_not(
        launcher, rendered, mode, kind):
    """Plus LAB_HOST: a pod listens on its own address; the launcher's copies keep the 127.0.0.1 default."""
    objects = rendered[mode]
    k8s = k8s_env(objects, k8s_workload(objects, kind))
    planned = launcher[mode][f"{kind}-1" if kind != "config-server" else kind].env
    assert k8s.keys() <= reads(kind)
    assert k8s.keys() == (planned.keys() & reads(kind)) | {"LAB_HOST"}
    for name in k8s.keys() & planned.keys() & {"LAB_SERVER", "LAB_DISCOVERY", "HZ_CLUSTER_NAME", "LAB_PORT"}:
        assert k8s[name] == planned[name], name


def test_compose_sets_only_variables_that_a_lab_service_reads(compose):
    known = set().union(*(reads(kind) for kind in SETTINGS))
    for name, service in compose.items():
        if kind_of(name) != "member":
            assert compose_env(service).keys() <= known, name


@pytest.mark.parametrize("kind", HAZELCAST_CLIENTS)
def test_every_hazelcast_client_joins_the_same_cluster_through_every_member(launcher, compose, rendered, kind):
    """The cluster name each source's copies use (set, or the settings' default) and the members they list,
    named as the launcher names them. The order differs: the launcher and compose put copy i's own member
    first; one pod template cannot."""
    default = SETTINGS[kind]().hz_cluster_name
    members = sorted(n for n, p in launcher["config-server"].items() if p.kind == "member")
    by_port = {p.port: n for n, p in launcher["config-server"].items() if p.kind == "member"}

    planned = launcher["config-server"][f"{kind}-1"].env
    assert planned.get("HZ_CLUSTER_NAME", default) == "lab"
    assert sorted(by_port[int(a.rpartition(":")[2])] for a in planned["HZ_MEMBERS"].split(",")) == members

    for name, service in compose.items():
        if kind_of(name) == kind:
            env = compose_env(service)
            assert env.get("HZ_CLUSTER_NAME", default) == "lab", name
            hosts = [a.rpartition(":") for a in env["HZ_MEMBERS"].split(",")]
            assert sorted(h for h, _, _ in hosts) == members and {int(p) for _, _, p in hosts} == {MEMBER_PORT}

    objects = rendered["config-server"]
    env = k8s_env(objects, k8s_workload(objects, kind))
    assert env["HZ_CLUSTER_NAME"] == "lab"
    statefulset = k8s_workload(objects, "member")
    listed = [a.rpartition(":") for a in env["HZ_MEMBERS"].split(",")]
    assert {p for _, _, p in listed} == {str(MEMBER_PORT)}
    assert sorted(h.partition(".")[0] for h, _, _ in listed) == k8s_pod_names(statefulset) == members
    assert {h.partition(".")[2] for h, _, _ in listed} == {statefulset["spec"]["serviceName"]}


def test_consul_kv_in_kubernetes_holds_what_labctl_consul_seed_writes_for_these_members(rendered):
    objects = rendered["consul"]
    consul = k8s_workload(objects, "consul")
    env = k8s_env(objects, consul)
    script = (K8S / "consul" / "seed-kv.sh").read_text()
    seeded = {}
    for key, value in re.findall(r"consul kv put (\S+) (\S+)", script):
        seeded[key.removeprefix(KV_PREFIX)] = re.sub(r'^"?\$(\w+)"?$', lambda m: env[m.group(1)], value)
    cluster = find(rendered["config-server"], "ConfigMap", "lab-cluster")["data"]
    settings = MessagesSettings.load("labctl", default_port=1, environ={}, argv=[],
                                     hz_cluster_name=cluster["cluster-name"],
                                     hz_members=tuple(cluster["members"].split(",")))
    assert seeded == kv_defaults(settings)


# --- Hazelcast: the member config and the image ----------------------------------------------------------

@pytest.fixture(scope="module")
def member_configs(rendered, launcher) -> dict[str, dict]:
    """Each source's member config with the cluster name each passes to ${lab.cluster.name}."""
    configs = {"launcher": load_yaml(HAZELCAST_DIR / "member.yaml")["hazelcast"],
               "compose": load_yaml(HAZELCAST_DIR / "member-compose.yaml")["hazelcast"],
               "k8s": k8s_member_config(rendered["config-server"])}
    argv = launcher["config-server"]["member-1"].argv
    objects = rendered["config-server"]
    java_options = k8s_env(objects, k8s_workload(objects, "member"))["JAVA_OPTS"].split()
    passed = {"launcher": argv, "compose": [], "k8s": java_options}
    for source, config in configs.items():
        config["cluster-name"] = with_system_properties(config["cluster-name"], passed[source])
    return configs


def with_system_properties(text: str, java_options: list[str]) -> str:
    """`text` with each ${lab.*} replaced as Hazelcast does, from the -D options the member is started with."""
    options = dict(o.removeprefix("-D").split("=", 1) for o in java_options if o.startswith("-Dlab."))
    return re.sub(r"\$\{([\w.]+)\}", lambda m: options[m.group(1)], text)


def test_every_member_config_names_the_cluster_the_clients_join(member_configs):
    assert {source: c["cluster-name"] for source, c in member_configs.items()} == dict.fromkeys(member_configs, "lab")


@pytest.mark.parametrize("structure", ["map", "queue"])
def test_every_member_config_keeps_two_synchronous_backups(member_configs, structure):
    for source, config in member_configs.items():
        backups = {k: v for k, v in config[structure]["default"].items() if k != "split-brain-protection-ref"}
        assert backups == {"backup-count": 2, "async-backup-count": 0}, source


def test_only_the_launchers_members_know_quorum_mode(member_configs):
    """Quorum mode (labctl --consistency quorum) is the launcher's: Compose and Kubernetes run available mode,
    as docs/fault-tolerance.md says."""
    assert "split-brain-protection" in member_configs["launcher"]
    for source in ("compose", "k8s"):
        assert "split-brain-protection" not in member_configs[source], source


def test_every_member_config_detects_failures_as_fast(member_configs):
    for source, config in member_configs.items():
        found = {p: config["properties"].get(p) for p in FAILURE_DETECTION}
        assert found == {p: member_configs["launcher"]["properties"][p] for p in FAILURE_DETECTION}, source


def test_kubernetes_members_have_every_property_of_the_launchers_but_the_loopback_ones(member_configs):
    launcher_properties = member_configs["launcher"]["properties"]
    assert LOOPBACK_ONLY <= launcher_properties.keys()
    shared = {p: v for p, v in launcher_properties.items() if p not in LOOPBACK_ONLY}
    assert member_configs["k8s"]["properties"] == shared | K8S_ONLY


def test_compose_members_have_every_property_of_the_launchers_but_the_loopback_ones(member_configs):
    """Compose may keep JDK logging: its stand-in member image runs the bare jar, as the launcher does."""
    launcher_properties, compose_properties = (member_configs[s]["properties"] for s in ("launcher", "compose"))
    shared = {p: v for p, v in launcher_properties.items() if p not in LOOPBACK_ONLY}
    assert {p: v for p, v in compose_properties.items() if p not in LOOPBACK_ONLY} == shared
    assert "hazelcast.socket.bind.any" not in compose_properties


def test_every_member_config_answers_the_health_checks_and_publishes_its_metrics(member_configs):
    for source, config in member_configs.items():
        assert config["network"]["rest-api"]["endpoint-groups"]["HEALTH_CHECK"]["enabled"] is True, source
        assert config["metrics"] == member_configs["launcher"]["metrics"], source


def test_every_deployment_starts_its_members_with_the_launchers_hazelcast_jvm_flags(launcher, compose, rendered):
    """The -Dhazelcast.* system properties of hazelcast/jvm.options (flags the member config cannot carry,
    e.g. the I/O threads' queued writes that keep a hung member from starving the others)."""
    flags = {o for o in launcher["config-server"]["member-1"].argv if o.startswith("-Dhazelcast.")
             and not o.startswith("-Dhazelcast.config=")}
    assert "-Dhazelcast.io.selectionKeyWakeupEnabled=false" in flags
    compose_options = set(compose_env(compose["member-1"])["JAVA_OPTS"].split())
    objects = rendered["config-server"]
    k8s_options = set(k8s_env(objects, k8s_workload(objects, "member"))["JAVA_OPTS"].split())
    assert flags - compose_options == set()
    assert flags - k8s_options == set()


def test_every_deployment_runs_the_pinned_hazelcast_version(compose, rendered):
    image = f"hazelcast/hazelcast:{hazelcast_version()}"
    assert {s["image"] for n, s in compose.items() if kind_of(n) == "member"} == {image}
    assert container(k8s_workload(rendered["config-server"], "member"))["image"] == image


def test_kubernetes_runs_the_image_compose_builds_for_the_services(compose, rendered):
    built = {s["image"] for n, s in compose.items() if kind_of(n) != "member"}
    assert len(built) == 1
    (name,) = built
    for mode, kind in RUN_BY_MODE:
        assert container(k8s_workload(rendered[mode], kind))["image"] == f"{name.partition(':')[0]}:latest"


def test_kubernetes_members_serve_their_statistics_where_the_facade_status_page_looks(rendered):
    objects = rendered["config-server"]
    env = k8s_env(objects, k8s_workload(objects, "member"))
    assert member_metrics_address(f"member-1.member:{MEMBER_PORT}").endswith(f":{env['PROMETHEUS_PORT']}")
    exporter = K8S / "base" / "jmx-exporter.yaml"
    assert exporter.read_bytes() == (HAZELCAST_DIR / "jmx-exporter.yaml").read_bytes()
    assert env["PROMETHEUS_CONFIG"].rpartition("/")[2] == exporter.name


def test_compose_members_serve_their_statistics_where_the_facade_status_page_looks(compose):
    for name, service in compose.items():
        if kind_of(name) == "member":
            assert member_metrics_address(f"{name}:{MEMBER_PORT}").endswith(
                f":{compose_env(service)['PROMETHEUS_PORT']}"), name
