"""The Grafana dashboard and the scrape config name only metrics that something really exports."""

import json
import re
from pathlib import Path

from prometheus_client import REGISTRY

import lab_common.metrics  # noqa: F401  (registers the services' metrics)

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = ROOT / "deploy" / "grafana" / "facade-lab.json"
EXPORTER_CONFIG = ROOT / "hazelcast" / "jmx-exporter.yaml"


def service_sample_names() -> set[str]:
    """Every series name the services' metrics can have, whether or not a sample exists yet."""
    suffixes = {"counter": ("_total",), "histogram": ("_bucket", "_count", "_sum"), "gauge": ("",)}
    return {family.name + suffix for family in REGISTRY.collect() if family.name.startswith("lab_")
            for suffix in suffixes.get(family.type, ("",))}


def member_name_patterns() -> list[re.Pattern]:
    """The exporter rules' output names, with each $N standing for whatever the rule captured."""
    names = re.findall(r"^\s+name: (\S+)$", EXPORTER_CONFIG.read_text(), flags=re.MULTILINE)
    return [re.compile(re.sub(r"\\\$\d", "[a-z_]+", re.escape(name))) for name in names]


def dashboard_metric_names() -> set[str]:
    dashboard = json.loads(DASHBOARD.read_text())
    exprs = [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]
    assert exprs, "the dashboard has no queries"
    return {name for expr in exprs for name in re.findall(r"\b((?:lab|hazelcast)_[a-z_]+)\b", expr)}


def test_every_service_metric_the_dashboard_asks_for_is_exported():
    asked = {name for name in dashboard_metric_names() if name.startswith("lab_")}
    assert asked and asked <= service_sample_names(), asked - service_sample_names()


def test_every_member_metric_the_dashboard_asks_for_is_kept_by_the_exporter_config():
    asked = {name for name in dashboard_metric_names() if name.startswith("hazelcast_")}
    patterns = member_name_patterns()
    assert asked
    assert [name for name in asked if not any(p.fullmatch(name) for p in patterns)] == []


def test_the_dashboard_panels_the_issue_names_are_there():
    titles = " | ".join(panel["title"] for panel in json.loads(DASHBOARD.read_text())["panels"])
    for wanted in ("POSTs acknowledged per second", "POST latency", "Queue depth", "per member", "redelivered"):
        assert wanted in titles
