"""Fetches what the system needs outside PyPI, cached per machine: the Hazelcast member jar and the
Prometheus JMX exporter agent (Maven Central) and the Consul agent (built from its Go module).
Usage: python -m scripts.deps [hazelcast|jmx-exporter|consul]"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HAZELCAST_DIR = ROOT / "hazelcast"
CONSUL_VERSION = "1.22.0"


def cache_dir() -> Path:
    """Per machine, outside the work tree, so fresh clones reuse it (override: LAB_CACHE_DIR)."""
    default = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "facade-lab"
    return Path(os.environ.get("LAB_CACHE_DIR", default))


def hazelcast_version() -> str:
    return (HAZELCAST_DIR / "VERSION").read_text().strip()


def member_jar() -> Path:
    return cache_dir() / "hazelcast" / f"hazelcast-{hazelcast_version()}.jar"


def ensure_member_jar() -> Path:
    jar = member_jar()
    if jar.exists():
        return jar
    jar.parent.mkdir(parents=True, exist_ok=True)
    sys.stderr.write(f"fetching com.hazelcast:hazelcast:{hazelcast_version()} from Maven Central...\n")
    subprocess.run(
        ["mvn", "-q", "-B", "org.apache.maven.plugins:maven-dependency-plugin:3.6.1:copy",
         f"-Dartifact=com.hazelcast:hazelcast:{hazelcast_version()}", f"-DoutputDirectory={jar.parent}"],
        check=True,
    )
    return jar


def jmx_exporter_version() -> str:
    return (HAZELCAST_DIR / "JMX_EXPORTER_VERSION").read_text().strip()


def jmx_exporter_jar() -> Path:
    return cache_dir() / "jmx-exporter" / f"jmx_prometheus_javaagent-{jmx_exporter_version()}.jar"


def ensure_jmx_exporter_jar() -> Path:
    """The Prometheus JMX exporter Java agent every member runs (hazelcast/jmx-exporter.yaml configures it)."""
    jar = jmx_exporter_jar()
    if jar.exists():
        return jar
    jar.parent.mkdir(parents=True, exist_ok=True)
    artifact = f"io.prometheus.jmx:jmx_prometheus_javaagent:{jmx_exporter_version()}"
    sys.stderr.write(f"fetching {artifact} from Maven Central...\n")
    subprocess.run(
        ["mvn", "-q", "-B", "org.apache.maven.plugins:maven-dependency-plugin:3.6.1:copy",
         f"-Dartifact={artifact}", f"-DoutputDirectory={jar.parent}"],
        check=True,
    )
    return jar


def consul_binary() -> Path:
    return cache_dir() / f"consul-{CONSUL_VERSION}" / "consul"


def ensure_consul() -> Path:
    binary = consul_binary()
    if not binary.exists():
        subprocess.run([str(ROOT / "scripts" / "build-consul.sh"), CONSUL_VERSION, str(cache_dir())], check=True)
    return binary


def main(argv: list[str] | None = None) -> int:
    wanted = (argv if argv is not None else sys.argv[1:]) or ["hazelcast"]
    for name in wanted:
        fetch = {"hazelcast": ensure_member_jar, "jmx-exporter": ensure_jmx_exporter_jar, "consul": ensure_consul}
        path = fetch[name]()
        print(f"{name}: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
