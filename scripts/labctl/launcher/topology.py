"""What the launcher starts: the topology (how many copies of what, on which ports), every process's command
and environment, and the state file that names them."""

from __future__ import annotations

import dataclasses
import sys
from dataclasses import dataclass, field
from pathlib import Path

from lab_common.contracts import (
    CONSISTENCIES,
    LOGGING_GRPC_SERVICE,
    LOGGING_STORES,
    MEMBER_METRICS_PORT_SHIFT,
    NO_QUEUE,
    QUEUES,
    QUORUM,
)
from labctl.deps import HAZELCAST_DIR, ensure_consul, ensure_jmx_exporter_jar, ensure_member_jar, ensure_prometheus
from labctl.launcher import kafka
from labctl.launcher.hosts import HostNetwork

QUEUE_CHOICES = (*QUEUES, NO_QUEUE)


@dataclass(frozen=True)
class Topology:
    """How many copies of what, on which ports; `port_offset` shifts every port (tests use it)."""

    cluster_name: str = "lab"
    members: int = 3
    logging: int = 3
    messages: int = 2
    facades: int = 1
    port_offset: int = 0
    server: str = "granian"
    discovery: str = "config-server"  # or "consul": its own dev agent, no config server
    member_java_options: tuple[str, ...] = ()  # after hazelcast/jvm.options (a later -D wins): diagnostics, say
    prometheus: bool = False  # also a Prometheus server scraping everything (scripts/labctl/launcher/prometheus.py)
    transport: str = "http"  # or "grpc": logging copies also serve gRPC, and the facade logs over it
    queue: str = "hazelcast"  # or "kafka": the facade produces to Kafka brokers, the messages copies consume them;
    # or "none": the facade only logs (the lab's Tasks 1 and 3)
    brokers: int = 1  # Kafka brokers in queue=kafka mode (1, or 3 for the drills); none in hazelcast mode
    hosts: int = 0  # 0: everything on 127.0.0.1; N: N hosts, each a network namespace (launcher/hosts.py)
    logging_store: str = "hazelcast"  # or "memory": each logging copy keeps its own messages (the lab's Task 1)
    messages_stub: bool = False  # the messages copies run as the lab's Task 1 stub ("not implemented yet")
    consistency: str = "available"  # or "quorum": members refuse writes with fewer than 2 of them in touch

    def problems(self) -> list[str]:
        """Why this topology cannot run (each with the option that fixes it); empty when it can."""
        found = []
        if self.queue not in QUEUE_CHOICES:
            found.append(f"queue {self.queue!r}: must be one of {', '.join(QUEUE_CHOICES)}")
        if self.consistency not in CONSISTENCIES:
            found.append(f"consistency {self.consistency!r}: must be one of {', '.join(CONSISTENCIES)}")
        if self.quorum and self.members < QUORUM:
            found.append(f"--consistency quorum with --members {self.members}: quorum mode needs at least {QUORUM} "
                         "members (writes are refused below that)")
        if self.logging_store not in LOGGING_STORES:
            found.append(f"logging store {self.logging_store!r}: must be one of {', '.join(LOGGING_STORES)}")
        for name in ("members", "logging", "messages", "facades"):
            if getattr(self, name) < 0:
                found.append(f"--{name} {getattr(self, name)}: must be 0 or more")
        if not self.members:
            needs = [why for needed, why in (
                (self.logging and self.logging_store == "hazelcast", "--logging-store hazelcast (the logging map)"),
                (self.messages and not self.messages_stub, "messages copies (the received map; or --messages-stub)"),
                (self.queue == "hazelcast" and self.facades, "--queue hazelcast (the cluster's queue)"),
                (self.discovery == "consul", "--discovery consul (the cluster settings in its KV)"),
            ) if needed]
            if needs:
                found.append("--members 0, but these need Hazelcast members: " + "; ".join(needs))
        if self.messages and not self.messages_stub and self.queue == NO_QUEUE:
            found.append(f"--queue none with {self.messages} messages copies: they would have nothing to consume "
                         "(use --messages 0, or --messages-stub)")
        if self.messages_stub and self.queue != NO_QUEUE:
            found.append(f"--messages-stub with --queue {self.queue}: the stub consumes nothing, so what the "
                         "facade queued would never be received (use --queue none)")
        return found

    @classmethod
    def from_json(cls, data: dict) -> Topology:
        """As State.to_json wrote it (JSON has no tuples); a field an older launcher did not write takes its default."""
        return cls(**{**data, "member_java_options": tuple(data.get("member_java_options", ()))})

    @property
    def network(self) -> HostNetwork | None:
        return HostNetwork(self.port_offset, self.hosts) if self.hosts else None

    def host_of(self, kind: str, i: int) -> str | None:
        """The host copy i of a kind runs on (copy i with member i); None for the edge host, the machine itself,
        where the facade and the config server run (and everything without --hosts)."""
        if not self.hosts or kind not in ("member", "logging", "messages"):
            return None
        return f"host{(i - 1) % self.hosts + 1}"

    def address(self, kind: str, i: int = 1) -> str:
        """Where copy i of a kind listens: its host's address; the edge's for the config server (the hosts ask
        it); 127.0.0.1 for the facade, and for everything without --hosts."""
        host, net = self.host_of(kind, i), self.network
        if host is not None:
            return net.address(host)
        return net.edge_address if net is not None and kind == "config-server" else "127.0.0.1"

    @property
    def consul_port(self) -> int:
        return 8500 + self.port_offset

    def member_port(self, i: int) -> int:
        return 5700 + i + self.port_offset

    def member_metrics_port(self, i: int) -> int:
        """Where member i's JMX exporter serves /metrics: 9701, 9702, 9703 (+ the offset)."""
        return self.member_port(i) + MEMBER_METRICS_PORT_SHIFT

    def logging_port(self, i: int) -> int:
        return 8079 + 2 * i + self.port_offset  # 8081, 8083, 8085, ...

    def logging_grpc_port(self, i: int) -> int:
        return 50049 + 2 * i + self.port_offset  # 50051, 50053, 50055, ...

    def grpc_ports(self) -> dict[str, int]:
        """The gRPC port of each logging copy, by its name; none unless the transport is grpc."""
        if self.transport != "grpc":
            return {}
        return {f"logging-{i}": self.logging_grpc_port(i) for i in range(1, self.logging + 1)}

    def messages_port(self, i: int) -> int:
        return 8080 + 2 * i + self.port_offset  # 8082, 8084, ...

    def facade_port(self, i: int) -> int:
        return (8080, 8088)[i - 1] + self.port_offset if i <= 2 else 8088 + 2 * (i - 2) + self.port_offset

    def kafka_port(self, i: int) -> int:
        return 9090 + 2 * i + self.port_offset  # 9092, 9094, 9096: clients

    def kafka_controller_port(self, i: int) -> int:
        return 9091 + 2 * i + self.port_offset  # 9093, 9095, 9097: the KRaft controller quorum

    @property
    def kafka_brokers(self) -> int:
        """The brokers this topology starts: none unless the queue is Kafka."""
        return self.brokers if self.queue == "kafka" else 0

    def kafka_bootstrap(self) -> str:
        return ",".join(f"127.0.0.1:{self.kafka_port(i)}" for i in range(1, self.kafka_brokers + 1))

    def kafka_controller_ports(self) -> dict[str, int]:
        return {f"kafka-{i} controller": self.kafka_controller_port(i) for i in range(1, self.kafka_brokers + 1)}

    @property
    def config_port(self) -> int:
        return 8888 + self.port_offset

    @property
    def prometheus_port(self) -> int:
        return 9090 + self.port_offset

    def member_properties(self, i: int) -> list[str]:
        """The ${lab.*} values hazelcast/member.yaml reads, as -D flags for member i."""
        return [f"-Dlab.cluster.name={self.cluster_name}", f"-Dlab.consistency={self.consistency}",
                f"-Dlab.member.host={self.address('member', i)}", f"-Dlab.member.port={self.member_port(i)}",
                f"-Dlab.member.list={','.join(self.member_addresses())}",
                f"-Dlab.icmp={'true' if self.hosts else 'false'}"]

    @property
    def quorum(self) -> bool:
        """Whether members refuse writes with fewer than QUORUM of them in touch (consistency "quorum")."""
        return self.consistency == "quorum"

    def member_addresses(self) -> list[str]:
        return [f"{self.address('member', i)}:{self.member_port(i)}" for i in range(1, self.members + 1)]

    def registry(self) -> dict[str, list[str]]:
        def urls(kind: str, count: int, port) -> list[str]:
            return [f"http://{self.address(kind, i)}:{port(i)}" for i in range(1, count + 1)]

        registry = {
            "facade-service": urls("facade", self.facades, self.facade_port),
            "logging-service": urls("logging", self.logging, self.logging_port),
            "messages-service": urls("messages", self.messages, self.messages_port),
        }
        if self.transport == "grpc":  # gRPC targets are host:port
            registry[LOGGING_GRPC_SERVICE] = [f"127.0.0.1:{port}" for port in self.grpc_ports().values()]
        return registry


@dataclass
class Process:
    name: str
    kind: str  # member | broker | config-server | logging | messages | facade | consul | prometheus
    port: int
    argv: list[str]
    env: dict[str, str]
    health_url: str  # a broker's is its bootstrap address, host:port: it answers Kafka, not HTTP
    log_path: str
    pid: int | None = None
    before: list[list[str]] = field(default_factory=list)  # commands run to completion before each start
    host: str = "127.0.0.1"  # the address it listens on
    netns: str | None = None  # the network namespace it runs in (--hosts), None for the machine's own

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def command(self, argv: list[str]) -> list[str]:
        """argv as started: in its namespace when it has one (`ip netns exec` execs it in place: the pid is
        the process's own, so signals by pid and group reach it as without hosts)."""
        return ["ip", "netns", "exec", self.netns, *argv] if self.netns else argv


@dataclass
class State:
    run_id: str
    topology: Topology
    processes: dict[str, Process] = field(default_factory=dict)

    def to_json(self) -> dict:
        return {"run_id": self.run_id, "topology": dataclasses.asdict(self.topology),
                "processes": {n: dataclasses.asdict(p) for n, p in self.processes.items()}}

    @classmethod
    def from_json(cls, data: dict) -> State:
        return cls(run_id=data["run_id"], topology=Topology.from_json(data["topology"]),
                   processes={n: Process(**p) for n, p in data["processes"].items()})


def member_metrics_agent(agent_jar: str, port: int, host: str = "127.0.0.1") -> str:
    """The JVM flag that starts the Prometheus JMX exporter in a member, on its own address only."""
    return f"-javaagent:{agent_jar}={host}:{port}:{HAZELCAST_DIR / 'jmx-exporter.yaml'}"


def _jvm_options() -> list[str]:
    lines = (HAZELCAST_DIR / "jvm.options").read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]


def journal_path(run_dir: Path, name: str) -> Path:
    """Where a messages copy keeps its journal: under the run dir, kept across its restarts, cleared when a
    new system starts there."""
    return run_dir / "journal" / f"{name}.jsonl"


def plan(topology: Topology, run_dir: Path, run_id: str) -> dict[str, Process]:
    """Every process of the system with the command and environment it is started with."""
    logs = run_dir / "logs"
    members = topology.member_addresses()
    consul_mode = topology.discovery == "consul"
    common_env = {"PYTHONUNBUFFERED": "1", "LAB_SERVER": topology.server, "LAB_DISCOVERY": topology.discovery}
    if topology.quorum:
        common_env["HZ_CONSISTENCY"] = topology.consistency
    if consul_mode:  # cluster settings come from Consul KV, addresses from Consul's passing instances
        common_env["LAB_CONSUL"] = f"127.0.0.1:{topology.consul_port}"
    else:
        common_env.update({"HZ_CLUSTER_NAME": topology.cluster_name,
                           "LAB_CONFIG_SERVER": f"http://{topology.address('config-server')}:{topology.config_port}"})
    processes: dict[str, Process] = {}

    net = topology.network

    def add(name: str, kind: str, port: int, argv: list[str], env: dict[str, str], health_url: str,
            before: list[list[str]] | None = None, i: int = 1):
        env = {**env, "LAB_RUN_ID": run_id, "LAB_PROCESS": name}
        host = topology.host_of(kind, i)
        processes[name] = Process(name, kind, port, argv, env, health_url, str(logs / f"{name}.log"),
                                  before=before or [], host=topology.address(kind, i),
                                  netns=net.namespace(host) if host else None)

    jar = str(ensure_member_jar()) if topology.members else ""
    agent = str(ensure_jmx_exporter_jar()) if topology.members else ""
    for i in range(1, topology.members + 1):
        port, host = topology.member_port(i), topology.address("member", i)
        argv = ["java", *_jvm_options(), member_metrics_agent(agent, topology.member_metrics_port(i), host),
                f"-Dhazelcast.config={HAZELCAST_DIR / 'member.yaml'}", *topology.member_properties(i),
                *topology.member_java_options,
                "-cp", jar, "com.hazelcast.core.server.HazelcastMemberStarter"]
        add(f"member-{i}", "member", port, argv, {}, f"http://{host}:{port}/hazelcast/health", i=i)

    for i in range(1, topology.kafka_brokers + 1):
        format_storage, broker = kafka.commands(run_dir, i, run_id)
        port = topology.kafka_port(i)
        add(f"kafka-{i}", "broker", port, broker, {}, f"127.0.0.1:{port}", before=[format_storage])
    # only in Kafka mode: Hazelcast mode's services start as before (and as docker-compose.yml and deploy/k8s)
    queue = {"LAB_QUEUE": "kafka", "LAB_KAFKA_BOOTSTRAP": topology.kafka_bootstrap()} if topology.kafka_brokers else {}

    def service(name: str, kind: str, module: str, port: int, extra_env: dict[str, str] | None = None):
        i = int(name.rsplit("-", 1)[1]) if name[-1].isdigit() else 1
        host = topology.address(kind, i)
        # only with --hosts: without, every copy keeps the 127.0.0.1 default (as docker-compose.yml and deploy/k8s)
        listen = {"LAB_HOST": host} if host != "127.0.0.1" else {}
        env = {**common_env, "LAB_PORT": str(port), "LAB_INSTANCE": name, **listen, **(extra_env or {})}
        add(name, kind, port, [sys.executable, "-m", module], env, f"http://{host}:{port}/health", i=i)

    if consul_mode:
        off = topology.port_offset
        argv = [str(ensure_consul()), "agent", "-dev", f"-node=lab-{run_id[:8]}", "-bind=127.0.0.1",
                "-client=127.0.0.1", f"-http-port={topology.consul_port}", f"-server-port={8300 + off}",
                f"-serf-lan-port={8301 + off}", f"-serf-wan-port={8302 + off}", "-dns-port=-1", "-grpc-port=-1",
                "-grpc-tls-port=-1", "-log-level=warn"]
        add("consul", "consul", topology.consul_port, argv, {},
            f"http://127.0.0.1:{topology.consul_port}/v1/status/leader")
    else:
        service("config-server", "config-server", "config_server", topology.config_port,
                {"LAB_REGISTRY_FILE": str(run_dir / "registry.json")})

    def preferring(i: int) -> dict[str, str]:
        """Member list with copy i's own member first: copy i is paired with member i."""
        if not members or consul_mode:
            return {}
        k = (i - 1) % len(members)
        return {"HZ_MEMBERS": ",".join(members[k:] + members[:k])}

    # the lab's Task 1 and 3 settings, only when chosen: the default services start as before
    if topology.queue == NO_QUEUE:
        queue = {"LAB_QUEUE": NO_QUEUE}
    store = {"LAB_LOGGING_STORE": "memory"} if topology.logging_store == "memory" else {}
    stub = {"LAB_MESSAGES_STUB": "true"} if topology.messages_stub else {}
    no_cluster = {"LAB_HAZELCAST": "false"} if not topology.members else {}
    grpc_ports = topology.grpc_ports()
    for i in range(1, topology.logging + 1):
        grpc = {"LAB_GRPC_PORT": str(grpc_ports[f"logging-{i}"])} if grpc_ports else {}
        service(f"logging-{i}", "logging", "logging_service", topology.logging_port(i),
                {**preferring(i), **grpc, **store})
    for i in range(1, topology.messages + 1):
        service(f"messages-{i}", "messages", "messages_service", topology.messages_port(i),
                stub or {**preferring(i), **queue, "LAB_JOURNAL": str(journal_path(run_dir, f"messages-{i}"))})
    # only in gRPC mode: HTTP mode's facade starts as before (and as docker-compose.yml and deploy/k8s start it)
    transport = {"LAB_LOGGING_TRANSPORT": topology.transport} if topology.transport != "http" else {}
    for i in range(1, topology.facades + 1):
        service(f"facade-{i}", "facade", "facade_service", topology.facade_port(i),
                {**preferring(i), **transport, **queue, **no_cluster})
    if topology.prometheus:
        add("prometheus", "prometheus", topology.prometheus_port, prometheus_argv(topology, run_dir), {},
            f"http://127.0.0.1:{topology.prometheus_port}/-/ready")
    return processes


def prometheus_argv(topology: Topology, run_dir: Path) -> list[str]:
    """The Prometheus server's command line: the run's scrape config (prometheus.write_config) and data in
    the run dir."""
    config = run_dir / "prometheus.yml"
    return [ensure_prometheus(), f"--config.file={config}", f"--storage.tsdb.path={run_dir / 'prometheus-data'}",
            f"--web.listen-address=127.0.0.1:{topology.prometheus_port}", "--storage.tsdb.retention.time=2d",
            "--web.enable-lifecycle"]
