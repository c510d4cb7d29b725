"""The launcher: starts, watches and stops the whole system (members, config server, services).

What it started is written to `<run-dir>/state.json`, so another command (a drill, a test, `labctl
stop`) can find a process by its name (member-2, logging-3), kill it, and start it again with the
settings it had. Every process carries LAB_RUN_ID and LAB_PROCESS in its environment: a pid is only
ever signalled after checking that it is still the process the state file names.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import requests

from scripts.deps import HAZELCAST_DIR, ROOT, ensure_consul, ensure_jmx_exporter_jar, ensure_member_jar

DEFAULT_RUN_DIR = ROOT / "var" / "run"


class LauncherError(RuntimeError):
    """Something the launcher was asked to do cannot be done; the message says what and why."""


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

    @classmethod
    def from_json(cls, data: dict) -> Topology:
        """As State.to_json wrote it (JSON has no tuples); a field an older launcher did not write takes its default."""
        return cls(**{**data, "member_java_options": tuple(data.get("member_java_options", ()))})

    @property
    def consul_port(self) -> int:
        return 8500 + self.port_offset

    def member_port(self, i: int) -> int:
        return 5700 + i + self.port_offset

    def member_metrics_port(self, i: int) -> int:
        return member_metrics_port(i, self.port_offset)

    def logging_port(self, i: int) -> int:
        return 8079 + 2 * i + self.port_offset  # 8081, 8083, 8085, ...

    def messages_port(self, i: int) -> int:
        return 8080 + 2 * i + self.port_offset  # 8082, 8084, ...

    def facade_port(self, i: int) -> int:
        return (8080, 8088)[i - 1] + self.port_offset if i <= 2 else 8088 + 2 * (i - 2) + self.port_offset

    @property
    def config_port(self) -> int:
        return 8888 + self.port_offset

    def member_addresses(self) -> list[str]:
        return [f"127.0.0.1:{self.member_port(i)}" for i in range(1, self.members + 1)]

    def registry(self) -> dict[str, list[str]]:
        return {
            "facade-service": [f"http://127.0.0.1:{self.facade_port(i)}" for i in range(1, self.facades + 1)],
            "logging-service": [f"http://127.0.0.1:{self.logging_port(i)}" for i in range(1, self.logging + 1)],
            "messages-service": [f"http://127.0.0.1:{self.messages_port(i)}" for i in range(1, self.messages + 1)],
        }


@dataclass
class Process:
    name: str
    kind: str  # member | config-server | logging | messages | facade
    port: int
    argv: list[str]
    env: dict[str, str]
    health_url: str
    log_path: str
    pid: int | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


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


MEMBER_METRICS_BASE_PORT = 9700  # member N's Prometheus JMX exporter answers on 9700 + N (+ the port offset)


def member_metrics_port(i: int, offset: int = 0) -> int:
    """Where member i's /metrics is served (9701, 9702, 9703 by default)."""
    return MEMBER_METRICS_BASE_PORT + i + offset


def member_metrics_agent(agent_jar: str, i: int, offset: int = 0) -> str:
    """The JVM flag that starts the Prometheus JMX exporter in member i, on loopback only."""
    return f"-javaagent:{agent_jar}=127.0.0.1:{member_metrics_port(i, offset)}:{HAZELCAST_DIR / 'jmx-exporter.yaml'}"


def _jvm_options() -> list[str]:
    lines = (HAZELCAST_DIR / "jvm.options").read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]


def plan(topology: Topology, run_dir: Path, run_id: str) -> dict[str, Process]:
    """Every process of the system with the command and environment it is started with."""
    logs = run_dir / "logs"
    members = topology.member_addresses()
    consul_mode = topology.discovery == "consul"
    common_env = {"PYTHONUNBUFFERED": "1", "LAB_SERVER": topology.server, "LAB_DISCOVERY": topology.discovery}
    if consul_mode:  # cluster settings come from Consul KV, addresses from Consul's passing instances
        common_env["LAB_CONSUL"] = f"127.0.0.1:{topology.consul_port}"
    else:
        common_env.update({"HZ_CLUSTER_NAME": topology.cluster_name,
                           "LAB_CONFIG_SERVER": f"http://127.0.0.1:{topology.config_port}"})
    processes: dict[str, Process] = {}

    def add(name: str, kind: str, port: int, argv: list[str], env: dict[str, str], health_url: str):
        env = {**env, "LAB_RUN_ID": run_id, "LAB_PROCESS": name}
        processes[name] = Process(name, kind, port, argv, env, health_url, str(logs / f"{name}.log"))

    jar = str(ensure_member_jar()) if topology.members else ""
    agent = str(ensure_jmx_exporter_jar()) if topology.members else ""
    for i in range(1, topology.members + 1):
        port = topology.member_port(i)
        argv = ["java", *_jvm_options(), member_metrics_agent(agent, i, topology.port_offset),
                f"-Dhazelcast.config={HAZELCAST_DIR / 'member.yaml'}",
                f"-Dlab.cluster.name={topology.cluster_name}", f"-Dlab.member.port={port}",
                f"-Dlab.member.list={','.join(members)}", *topology.member_java_options,
                "-cp", jar, "com.hazelcast.core.server.HazelcastMemberStarter"]
        add(f"member-{i}", "member", port, argv, {}, f"http://127.0.0.1:{port}/hazelcast/health")

    def service(name: str, kind: str, module: str, port: int, extra_env: dict[str, str] | None = None):
        env = {**common_env, "LAB_PORT": str(port), "LAB_INSTANCE": name, **(extra_env or {})}
        add(name, kind, port, [sys.executable, "-m", module], env, f"http://127.0.0.1:{port}/health")

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

    for i in range(1, topology.logging + 1):
        service(f"logging-{i}", "logging", "logging_service", topology.logging_port(i), preferring(i))
    for i in range(1, topology.messages + 1):
        service(f"messages-{i}", "messages", "messages_service", topology.messages_port(i), preferring(i))
    for i in range(1, topology.facades + 1):
        service(f"facade-{i}", "facade", "facade_service", topology.facade_port(i), preferring(i))
    return processes


class System:
    """The running system as one object: what tests, drills and the CLI drive."""

    def __init__(self, run_dir: Path = DEFAULT_RUN_DIR):
        self.run_dir = Path(run_dir)
        self.state_path = self.run_dir / "state.json"

    # --- state -----------------------------------------------------------------------------------

    @contextlib.contextmanager
    def _lock(self):
        self.run_dir.mkdir(parents=True, exist_ok=True)
        with open(self.run_dir / "state.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            yield

    def _save(self, state: State) -> None:
        tmp = self.state_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(state.to_json(), indent=2))
        tmp.replace(self.state_path)

    def load(self) -> State | None:
        if not self.state_path.exists():
            return None
        return State.from_json(json.loads(self.state_path.read_text()))

    def state(self) -> State:
        state = self.load()
        if state is None:
            raise LauncherError(f"nothing is running from {self.run_dir} (no state.json): start it first")
        return state

    def process(self, name: str) -> Process:
        state = self.state()
        if name not in state.processes:
            raise LauncherError(f"no process named {name!r}; known: {', '.join(state.processes)}")
        return state.processes[name]

    def names(self, kind: str | None = None) -> list[str]:
        return [n for n, p in self.state().processes.items() if kind is None or p.kind == kind]

    def url(self, name: str) -> str:
        return self.process(name).url

    def hazelcast_cluster(self) -> tuple[str, dict[str, str]]:
        """The cluster name and each member's address (member-1 -> 127.0.0.1:5701), for a client."""
        state = self.state()
        return state.topology.cluster_name, {
            p.name: f"127.0.0.1:{p.port}" for p in state.processes.values() if p.kind == "member"
        }

    # --- starting --------------------------------------------------------------------------------

    def start(self, topology: Topology = Topology(), *, wait: bool = True, timeout: float = 120.0,
              progress=None) -> State:
        existing = self.load()
        if existing is not None and any(self.is_running(p, existing.run_id) for p in existing.processes.values()):
            raise LauncherError(f"a system is already running from {self.run_dir}: `labctl stop` it first")
        busy = [p for p in plan(topology, self.run_dir, "check").values() if _port_in_use(p.port)]
        if busy:
            raise LauncherError("ports already in use: " + ", ".join(f"{p.name} ({p.port})" for p in busy))
        run_id = uuid.uuid4().hex
        (self.run_dir / "logs").mkdir(parents=True, exist_ok=True)
        (self.run_dir / "registry.json").write_text(json.dumps(topology.registry(), indent=2))
        processes = plan(topology, self.run_dir, run_id)
        with self._lock():
            self._save(State(run_id, topology, processes))
        try:
            if topology.discovery == "consul":  # the agent first: services wait for their settings in its KV
                self._spawn("consul")
                self.wait_healthy(["consul"], timeout=30, progress=progress)
                seed_consul_kv(topology)
            for name in processes:
                if name != "consul":
                    self._spawn(name)
            if wait:
                self.wait_healthy(timeout=timeout, progress=progress)
        except BaseException:
            self.stop()
            raise
        return self.state()

    def _spawn(self, name: str) -> None:
        with self._lock():
            state = self.state()
            process = state.processes[name]
            if self.is_running(process, state.run_id):
                raise LauncherError(f"{name} is already running (pid {process.pid})")
            log = open(process.log_path, "ab")
            log.write(f"\n----- {time.strftime('%Y-%m-%d %H:%M:%S')} starting {name} -----\n".encode())
            log.flush()
            child = subprocess.Popen(
                process.argv, cwd=ROOT, env={**os.environ, **process.env}, stdin=subprocess.DEVNULL,
                stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            )
            log.close()
            process.pid = child.pid
            self._save(state)

    def start_process(self, name: str, *, wait: bool = True, timeout: float = 60.0) -> None:
        """Start one process again with the settings it had (after a kill or stop)."""
        self._spawn(name)
        if wait or self.process(name).kind == "consul":
            self.wait_healthy([name], timeout=timeout)
        if self.process(name).kind == "consul":  # a dev agent starts empty: give it the settings again
            seed_consul_kv(self.state().topology)

    def restart(self, name: str, *, wait: bool = True, timeout: float = 60.0) -> None:
        if self.is_running(self.process(name), self.state().run_id):
            self.terminate(name)
        self.start_process(name, wait=wait, timeout=timeout)

    # --- stopping --------------------------------------------------------------------------------

    def is_running(self, process: Process, run_id: str) -> bool:
        return process.pid is not None and _is_ours(process.pid, run_id, process.name)

    def kill(self, name: str) -> float:
        """SIGKILL the process and everything in its group (a server's master and its worker)."""
        state = self.state()
        process = self.process(name)
        if not self.is_running(process, state.run_id):
            raise LauncherError(f"{name} is not running")
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        killed_at = time.time()
        _wait_gone(process.pid, 5.0)
        return killed_at

    def terminate(self, name: str, timeout: float = 20.0) -> None:
        """SIGTERM, then SIGKILL after `timeout` seconds."""
        self._stop_many([self.process(name)], self.state().run_id, timeout)

    def stop(self, timeout: float = 20.0) -> None:
        """Stop everything: services first, then members. Leaves no process behind."""
        state = self.load()
        if state is None:
            return
        services = [p for p in state.processes.values() if p.kind != "member"]
        members = [p for p in state.processes.values() if p.kind == "member"]
        self._stop_many(services, state.run_id, timeout)
        self._stop_many(members, state.run_id, timeout)
        with self._lock():
            self.state_path.unlink(missing_ok=True)

    def _stop_many(self, processes: list[Process], run_id: str, timeout: float) -> None:
        alive = [p for p in processes if self.is_running(p, run_id)]
        for p in alive:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(p.pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for p in alive:
            if not _wait_gone(p.pid, max(0.1, deadline - time.monotonic())):
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(p.pid, signal.SIGKILL)
                _wait_gone(p.pid, 5.0)
            # a server's worker may outlive its master by a moment; the group must be empty
            with contextlib.suppress(ProcessLookupError):
                os.killpg(p.pid, signal.SIGKILL)

    # --- health ----------------------------------------------------------------------------------

    def health(self, name: str, timeout: float = 1.0) -> tuple[bool, str]:
        state = self.state()
        process = state.processes[name]
        if not self.is_running(process, state.run_id):
            return False, "not running"
        try:
            response = requests.get(process.health_url, timeout=timeout)
        except requests.RequestException as err:
            return False, f"no answer ({type(err).__name__})"
        if response.status_code != 200:
            return False, _health_reason(response)
        if process.kind == "consul":
            return (bool(response.json()), "leader elected") if response.json() else (False, "no leader yet")
        if process.kind == "member":
            body = response.json()
            return body.get("nodeState") == "ACTIVE", (
                f"cluster of {body.get('clusterSize')}, {'safe' if body.get('clusterSafe') else 'migrating'}"
            )
        return True, "ok"

    def wait_cluster_safe(self, size: int, timeout: float = 60.0) -> None:
        """Until every running member sees `size` members and reports its data safely backed up."""
        deadline = time.monotonic() + timeout
        while True:
            state = self.state()
            members = [p for p in state.processes.values() if p.kind == "member" and self.is_running(p, state.run_id)]
            bodies = []
            for p in members:
                try:
                    bodies.append(requests.get(p.health_url, timeout=1.0).json())
                except (requests.RequestException, ValueError):
                    bodies.append({})
            if bodies and all(b.get("clusterSize") == size and b.get("clusterSafe") for b in bodies):
                return
            if time.monotonic() > deadline:
                raise LauncherError(f"cluster not safe with {size} members after {timeout:.0f}s: {bodies}")
            time.sleep(0.5)

    def wait_healthy(self, names: list[str] | None = None, *, timeout: float = 120.0, progress=None) -> None:
        pending = list(names or self.names())
        deadline = time.monotonic() + timeout
        last_report = 0.0
        with ThreadPoolExecutor(max_workers=8) as pool:
            while pending:
                results = dict(zip(pending, pool.map(self.health, pending), strict=True))
                for name, (ok, _) in results.items():
                    if ok and progress:
                        progress(f"  {name} healthy")
                pending = [n for n in pending if not results[n][0]]
                if not pending:
                    return
                now = time.monotonic()
                dead = [n for n in pending if results[n][1] == "not running"]
                if dead:
                    raise LauncherError(f"exited during start: {', '.join(dead)} (see {self.run_dir / 'logs'})")
                if now > deadline:
                    raise LauncherError(
                        "not healthy in time: " + "; ".join(f"{n}: {results[n][1]}" for n in pending)
                    )
                if progress and now - last_report > 5:
                    progress(f"  waiting for {', '.join(pending)}")
                    last_report = now
                time.sleep(0.3)

    def status(self) -> list[dict]:
        state = self.state()
        names = list(state.processes)
        with ThreadPoolExecutor(max_workers=8) as pool:
            healths = list(pool.map(self.health, names))
        rows = []
        for name, (ok, detail) in zip(names, healths, strict=True):
            p = state.processes[name]
            running = self.is_running(p, state.run_id)
            rows.append({"name": name, "kind": p.kind, "url": p.url if p.kind != "member" else f"127.0.0.1:{p.port}",
                         "pid": p.pid if running else None, "running": running, "healthy": ok, "detail": detail,
                         "log": os.path.relpath(p.log_path, ROOT)})
        return rows


def seed_consul_kv(topology: Topology) -> None:
    """Write the cluster settings and object names the services read from Consul KV."""
    from lab_common.consul_support import agent, kv_defaults, seed_kv
    from lab_common.settings import Settings

    settings = Settings.load("labctl", default_port=1, environ={}, argv=[], consul=f"127.0.0.1:{topology.consul_port}",
                             hz_cluster_name=topology.cluster_name, hz_members=tuple(topology.member_addresses()))
    seed_kv(agent(settings), kv_defaults(settings))


def _health_reason(response: requests.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return f"HTTP {response.status_code}"
    failing = [f"{n}: {c.get('detail')}" for n, c in body.get("checks", {}).items() if not c.get("ok")]
    return f"HTTP {response.status_code}" + (f" ({'; '.join(failing)})" if failing else "")


def _is_ours(pid: int, run_id: str, name: str) -> bool:
    try:
        environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    fields = stat.rsplit(")", 1)[1].split()
    if fields[0] == "Z":
        return False
    if f"LAB_RUN_ID={run_id}".encode() in environ and f"LAB_PROCESS={name}".encode() in environ:
        return True
    # our own child between fork and exec still shows this process's environment
    return int(fields[1]) == os.getpid()


def _wait_gone(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)  # reap it if it is our child
        try:
            os.kill(pid, 0)
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
            if state == "Z":
                return True
        except (ProcessLookupError, FileNotFoundError):
            return True
        time.sleep(0.05)
    return False


def _port_in_use(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(0.2)
        return s.connect_ex(("127.0.0.1", port)) == 0
