"""The Prometheus server a `labctl run --prometheus` starts: its scrape config, from the topology.

deploy/prometheus/prometheus.yml is this config for the default topology (a unit test keeps it so);
a system on a port offset gets its own copy in its run dir. The server's command line is
topology.prometheus_argv: this module reads the topology, never the other way round."""

from __future__ import annotations

from pathlib import Path

from lab_common.contracts import member_metrics_address
from labctl.launcher.topology import Topology

DEPLOYED_CONFIG = Path(__file__).resolve().parents[3] / "deploy" / "prometheus" / "prometheus.yml"
SCRAPE_INTERVAL = "5s"


def targets(topology: Topology) -> dict[str, list[tuple[str, str]]]:
    """job -> (copy name, host:port) of everything that serves /metrics."""
    jobs = {
        "facade": [(f"facade-{i}", f"127.0.0.1:{topology.facade_port(i)}") for i in range(1, topology.facades + 1)],
        "logging": [(f"logging-{i}", f"127.0.0.1:{topology.logging_port(i)}") for i in range(1, topology.logging + 1)],
        "messages": [(f"messages-{i}", f"127.0.0.1:{topology.messages_port(i)}")
                     for i in range(1, topology.messages + 1)],
        "members": [(f"member-{i}", member_metrics_address(address))
                    for i, address in enumerate(topology.member_addresses(), start=1)],
    }
    if topology.discovery != "consul":
        jobs["config-server"] = [("config-server", f"127.0.0.1:{topology.config_port}")]
    return jobs


def scrape_config(topology: Topology) -> str:
    """prometheus.yml: one job per kind of process, each target labelled with its copy's name."""
    lines = ["# Prometheus scrape config of the lab's system (labctl run --prometheus); written by",
             "# scripts/labctl/launcher/prometheus.py for the default ports: edit that, not this.",
             "global:", f"  scrape_interval: {SCRAPE_INTERVAL}", f"  evaluation_interval: {SCRAPE_INTERVAL}",
             "scrape_configs:"]
    for job, found in targets(topology).items():
        lines += [f"  - job_name: {job}", "    static_configs:"]
        for copy, address in found:
            lines += [f"      - targets: ['{address}']", f"        labels: {{copy: {copy}}}"]
    return "\n".join(lines) + "\n"


def write_config(topology: Topology, run_dir: Path) -> None:
    (run_dir / "prometheus.yml").write_text(scrape_config(topology))

