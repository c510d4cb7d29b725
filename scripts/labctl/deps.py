"""Fetches what the system needs outside PyPI, cached per machine: the Hazelcast member jar, the Prometheus
JMX exporter agent and the Kafka broker's classpath (Maven Central), the Consul agent and kustomize (built
from their Go modules), and Debian's prometheus, chromium, curl, tmux, iproute2, nftables and iptables packages.
Usage: python -m labctl.deps [hazelcast|jmx-exporter|kafka|consul|kustomize|prometheus|chromium|curl|tmux|net ...]"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]  # scripts/labctl/deps.py -> the repository
HAZELCAST_DIR = ROOT / "hazelcast"
KAFKA_DIR = ROOT / "kafka"
CONSUL_VERSION = "1.22.0"
# deploy/k8s is rendered by this kustomize in the tests (kubectl's built-in one differs by kubectl version);
# v5.8.1 is the newest whose go.mod this machine's Go (1.26) builds: v5.8.3 asks for Go 1.27
KUSTOMIZE_VERSION = "5.8.1"


def cache_dir() -> Path:
    """Per machine, outside the work tree, so fresh clones reuse it (override: LAB_CACHE_DIR)."""
    default = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "facade-lab"
    return Path(os.environ.get("LAB_CACHE_DIR", default))


def hazelcast_version() -> str:
    return (HAZELCAST_DIR / "VERSION").read_text().strip()


def member_jar() -> Path:
    return cache_dir() / "hazelcast" / f"hazelcast-{hazelcast_version()}.jar"


def ensure_member_jar() -> Path:
    return _maven_jar("com.hazelcast", "hazelcast", hazelcast_version(), member_jar())


def jmx_exporter_version() -> str:
    return (HAZELCAST_DIR / "JMX_EXPORTER_VERSION").read_text().strip()


def jmx_exporter_jar() -> Path:
    return cache_dir() / "jmx-exporter" / f"jmx_prometheus_javaagent-{jmx_exporter_version()}.jar"


def ensure_jmx_exporter_jar() -> Path:
    """The Prometheus JMX exporter Java agent every member runs (hazelcast/jmx-exporter.yaml configures it)."""
    return _maven_jar("io.prometheus.jmx", "jmx_prometheus_javaagent", jmx_exporter_version(), jmx_exporter_jar())


def kafka_version() -> str:
    return (KAFKA_DIR / "VERSION").read_text().strip()


def kafka_libs() -> Path:
    """The folder holding the broker's runtime classpath (kafka_2.13 and every jar it needs)."""
    return cache_dir() / "kafka" / kafka_version()


def ensure_kafka_libs() -> Path:
    """kafka_2.13 at the pinned version with its runtime dependencies, copied from Maven Central by Maven's
    dependency plugin (kafka/pom.xml) into a folder that appears only once it is complete."""
    libs = kafka_libs()
    if libs.exists():
        return libs
    partial = libs.with_name(libs.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    sys.stderr.write(f"fetching the Kafka {kafka_version()} broker and its dependencies from Maven Central...\n")
    subprocess.run(["mvn", "-q", "-B", "-f", str(KAFKA_DIR / "pom.xml"), f"-Dkafka.version={kafka_version()}",
                    "org.apache.maven.plugins:maven-dependency-plugin:3.6.1:copy-dependencies",
                    f"-DoutputDirectory={partial}"], check=True)
    partial.rename(libs)
    return libs


def _maven_jar(group: str, artifact: str, version: str, jar: Path) -> Path:
    """`jar`, copied from Maven Central by Maven's dependency plugin unless it is there already."""
    if jar.exists():
        return jar
    jar.parent.mkdir(parents=True, exist_ok=True)
    sys.stderr.write(f"fetching {group}:{artifact}:{version} from Maven Central...\n")
    subprocess.run(
        ["mvn", "-q", "-B", "org.apache.maven.plugins:maven-dependency-plugin:3.6.1:copy",
         f"-Dartifact={group}:{artifact}:{version}", f"-DoutputDirectory={jar.parent}"],
        check=True,
    )
    return jar


def ensure_debian_package(command: str, package: str) -> str:
    """The path of `command`, installing Debian's `package` first if it is missing (needs root, as CI is)."""
    found = shutil.which(command)
    if found:
        return found
    sys.stderr.write(f"installing Debian's {package} package (once per machine)...\n")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
    subprocess.run(["apt-get", "install", "-y", "-qq", "--no-install-recommends", package], check=True, env=env)
    found = shutil.which(command)
    if not found:
        raise FileNotFoundError(f"{package} installed but no {command} on PATH")
    return found


def ensure_prometheus() -> str:
    return ensure_debian_package("prometheus", "prometheus")


def ensure_chromium() -> str:
    """For the status page's browser test: Debian's chromium, driven headless (no browser download)."""
    return ensure_debian_package("chromium", "chromium")


def ensure_curl() -> str:
    """For the tests that make the lab report's own curl calls (tests/e2e/test_task1_shapes.py)."""
    return ensure_debian_package("curl", "curl")


def ensure_tmux() -> str:
    """For the test that runs a lab interactively (it types Enter and q into a tmux pane): Debian's tmux."""
    return ensure_debian_package("tmux", "tmux")


def ensure_net_tools() -> str:
    """What `--hosts` needs (scripts/labctl/launcher/hosts.py): ip and tc (iproute2), nft (nftables) for cuts and loss,
    iptables-legacy (iptables) for the NFQUEUE rule of a slow link."""
    for command, package in (("ip", "iproute2"), ("nft", "nftables"), ("iptables-legacy", "iptables")):
        found = ensure_debian_package(command, package)
    return found


def consul_binary() -> Path:
    return cache_dir() / f"consul-{CONSUL_VERSION}" / "consul"


def ensure_consul() -> Path:
    binary = consul_binary()
    if not binary.exists():
        subprocess.run([str(ROOT / "scripts" / "build-consul.sh"), CONSUL_VERSION, str(cache_dir())], check=True)
    return binary


def kustomize_binary() -> Path:
    return cache_dir() / f"kustomize-{KUSTOMIZE_VERSION}" / "kustomize"


def ensure_kustomize() -> Path:
    """The pinned kustomize, built once per machine with `go install` from the Go module proxy (cold:
    about 45 s on 2 cores and 300 MB of Go module and build cache)."""
    binary = kustomize_binary()
    if binary.exists():
        return binary
    sys.stderr.write(f"building kustomize v{KUSTOMIZE_VERSION} from the Go module proxy (once per machine)...\n")
    partial = binary.parent / "partial"
    partial.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "GOBIN": str(partial), "GOTOOLCHAIN": "local", "CGO_ENABLED": "0", "GOFLAGS": "-mod=mod"}
    subprocess.run(["go", "install", "-trimpath", "-ldflags=-s -w",
                    f"sigs.k8s.io/kustomize/kustomize/v5@v{KUSTOMIZE_VERSION}"], check=True, env=env)
    (partial / "kustomize").rename(binary)
    partial.rmdir()
    return binary


def main(argv: list[str] | None = None) -> int:
    wanted = (argv if argv is not None else sys.argv[1:]) or ["hazelcast"]
    for name in wanted:
        fetch = {"hazelcast": ensure_member_jar, "jmx-exporter": ensure_jmx_exporter_jar, "kafka": ensure_kafka_libs,
                 "consul": ensure_consul,
                 "kustomize": ensure_kustomize, "prometheus": ensure_prometheus, "chromium": ensure_chromium,
                 "curl": ensure_curl, "tmux": ensure_tmux, "net": ensure_net_tools}
        path = fetch[name]()
        print(f"{name}: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
