"""Every member starts with the Prometheus JMX exporter agent: on loopback, on 9700 + N + the port offset."""

import re
from pathlib import Path

import pytest

from labctl.deps import HAZELCAST_DIR
from labctl.launcher import Topology, plan, topology
from labctl.launcher.topology import member_metrics_agent

AGENT = "/cache/jmx_prometheus_javaagent-1.0.1.jar"
CONFIG = HAZELCAST_DIR / "jmx-exporter.yaml"


@pytest.fixture(autouse=True)
def no_jar_download(monkeypatch):
    monkeypatch.setattr(topology, "ensure_member_jar", lambda: Path("/cache/hazelcast.jar"))
    monkeypatch.setattr(topology, "ensure_jmx_exporter_jar", lambda: Path(AGENT))


def test_member_n_serves_its_metrics_on_9700_plus_n_shifted_like_every_other_port():
    assert [Topology().member_metrics_port(i) for i in (1, 2, 3)] == [9701, 9702, 9703]
    assert Topology(port_offset=17_000).member_metrics_port(2) == 26_702
    shifted = Topology(port_offset=10_000)
    assert [shifted.member_metrics_port(i) for i in (1, 2, 3)] == [19_701, 19_702, 19_703]


def test_the_agent_flag_binds_loopback_only_and_names_the_lab_config():
    assert member_metrics_agent(AGENT, 19_703) == f"-javaagent:{AGENT}=127.0.0.1:19703:{CONFIG}"


def test_every_member_starts_with_its_own_agent_before_the_main_class(tmp_path):
    processes = plan(Topology(members=3, port_offset=500), tmp_path, "run")
    for i in (1, 2, 3):
        argv = processes[f"member-{i}"].argv
        agents = [a for a in argv if a.startswith("-javaagent:")]
        assert agents == [f"-javaagent:{AGENT}=127.0.0.1:{10_200 + i}:{CONFIG}"]
        assert argv.index(agents[0]) < argv.index("-cp")


def test_services_get_no_agent(tmp_path):
    processes = plan(Topology(members=1), tmp_path, "run")
    assert not any(a.startswith("-javaagent:") for p in processes.values() if p.kind != "member" for a in p.argv)


def test_no_members_no_agent_download(tmp_path, monkeypatch):
    def fail():
        raise AssertionError("fetched an agent for no member")

    monkeypatch.setattr(topology, "ensure_jmx_exporter_jar", fail)
    plan(Topology(members=0), tmp_path, "run")


def _rules() -> list[tuple[re.Pattern, str]]:
    """(pattern, name) of every rule, read from the YAML text (the project has no YAML parser)."""
    found = re.findall(r"- pattern: '([^']+)'\n\s+name: (\S+)", CONFIG.read_text())
    return [(re.compile(pattern), name) for pattern, name in found]


@pytest.mark.parametrize(("bean", "expected"), [
    ('prefix=map, tag0="name=messages"><>ownedEntryCount', "hazelcast_map_owned_entries"),
    ('prefix=map, tag0="name=messages"><>backupEntryCount', "hazelcast_map_backup_entries"),
    ('prefix=queue, tag0="name=msgs"><>ownedItemCount', "hazelcast_queue_owned_items"),
    ('prefix=queue, tag0="name=msgs"><>numberOfOffers', "hazelcast_queue_offers_total"),
    ("prefix=partitions><>localPartitionCount", "hazelcast_partitions_owned"),
    ("prefix=operation><>completedCount", "hazelcast_operations_completed_total"),
    ('prefix=map, tag0="name=messages"><>evictionCount', None),  # not on the whitelist
    ("prefix=operation><>asyncOperations", None),
])
def test_the_exporter_config_keeps_what_the_status_page_needs_and_drops_the_rest(bean, expected):
    text = f"com.hazelcast<type=Metrics, instance=cool_name, {bean}"
    matching = [(pattern, name) for pattern, name in _rules() if pattern.fullmatch(text)]
    if expected is None:
        assert matching == []
    else:
        assert matching, f"no rule keeps {bean}"
        pattern, name = matching[0]  # the exporter uses the first rule that matches
        assert pattern.sub(re.sub(r"\$(\d)", r"\\\1", name), text).lower() == expected  # lowercaseOutputName
