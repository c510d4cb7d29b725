"""The launcher's System: starts, watches and stops the whole system (members, config server, services).

What it started is written to `<run-dir>/state.json`, so another command (a drill, a test, `labctl
stop`) can find a process by its name (member-2, logging-3), kill it, and start it again with the
settings it had. Every process carries LAB_RUN_ID and LAB_PROCESS in its environment: a pid is only
ever signalled after checking that it is still the process the state file names.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import signal
import socket
import subprocess
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests

from lab_common.contracts import MESSAGES_TOPIC
from labctl.control import ControlError, StatusRow
from labctl.deps import ROOT
from labctl.launcher import hosts, kafka
from labctl.launcher.prometheus import write_config
from labctl.launcher.topology import Process, State, Topology, plan
from labctl.probe import MemberHealth, ServiceHealth, health_at, member_health
from labctl.processes import carries, wait_gone

DEFAULT_RUN_DIR = ROOT / "var" / "run"
PORTS_FREE_WAIT = 10.0  # seconds start() waits for ports a system stopped just before to close
BROKERS_STOP_WAIT = 10.0  # seconds stop() gives Kafka brokers to shut down before SIGKILL


class LauncherError(ControlError):
    """Something the launcher was asked to do cannot be done; the message says what and why."""


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
        return state.topology.cluster_name, {p.name: p.address for p in state.processes.values() if p.kind == "member"}

    def kafka_brokers(self) -> dict[str, str]:
        """Each broker's client address by its name (kafka-2 -> 127.0.0.1:9094); none unless the queue is Kafka."""
        topology = self.state().topology
        return {f"kafka-{i}": f"127.0.0.1:{topology.kafka_port(i)}" for i in range(1, topology.kafka_brokers + 1)}

    # --- starting --------------------------------------------------------------------------------

    def start(self, topology: Topology | None = None, *, wait: bool = True, timeout: float = 120.0,
              progress=None) -> State:
        topology = topology or Topology()
        problems = topology.problems()
        if problems:
            raise LauncherError("cannot start this topology: " + "; ".join(problems))
        existing = self.load()
        if existing is not None and any(self.is_running(p, existing.run_id) for p in existing.processes.values()):
            raise LauncherError(f"a system is already running from {self.run_dir}: `labctl stop` it first")
        if topology.hosts:
            _check_hosts_topology(topology)
        too_high = {name: port for name, port in topology.grpc_ports().items() if port > 65535}
        if too_high:
            raise LauncherError(f"gRPC ports past 65535 with port offset {topology.port_offset}: "
                                + ", ".join(f"{name} ({port})" for name, port in too_high.items()))
        # with --hosts only the edge's ports on 127.0.0.1 can be taken (the hosts' namespaces are new)
        ports = {p.name: p.port for p in plan(topology, self.run_dir, "check").values() if not p.netns}
        ports |= {f"member-{i} metrics": topology.member_metrics_port(i) for i in range(1, topology.members + 1)
                  if not topology.hosts}
        ports |= {f"{name} gRPC": port for name, port in topology.grpc_ports().items()}
        ports |= topology.kafka_controller_ports()
        busy = _still_busy(ports, PORTS_FREE_WAIT)
        if busy:
            raise LauncherError("ports already in use: " + ", ".join(f"{name} ({port})" for name, port in busy.items()))
        if topology.network is not None:  # before the state file names them: stop() would remove them
            hosts.check_free(topology.network)
        run_id = uuid.uuid4().hex
        (self.run_dir / "logs").mkdir(parents=True, exist_ok=True)
        shutil.rmtree(self.run_dir / "journal", ignore_errors=True)  # the journals of an earlier system
        (self.run_dir / "registry.json").write_text(json.dumps(topology.registry(), indent=2))
        if topology.prometheus:
            write_config(topology, self.run_dir)
        if topology.kafka_brokers:
            kafka.write_configs(topology, self.run_dir)
        processes = plan(topology, self.run_dir, run_id)
        with self._lock():
            self._save(State(run_id, topology, processes))
        try:
            if topology.network is not None:
                hosts.create(topology.network)
            if topology.discovery == "consul":  # the agent first: services wait for their settings in its KV
                self._spawn("consul")
                self.wait_healthy(["consul"], timeout=30, progress=progress)
                _seed_consul_kv(topology)
            brokers = [name for name, p in processes.items() if p.kind == "broker"]
            if brokers:  # the brokers next: the facade and the messages copies need the topic
                for name in brokers:
                    self._spawn(name)
                self.wait_healthy(brokers, timeout=timeout, progress=progress)
                kafka.create_topic(topology.kafka_bootstrap(), MESSAGES_TOPIC, brokers=len(brokers))
            # with hosts, member-1 alone first: it becomes the master, on host1, where the drills expect it
            first = [name for name, p in processes.items() if p.kind == "member"][:1] if topology.hosts else []
            if first:
                self._spawn(first[0])
                self.wait_healthy(first, timeout=timeout, progress=progress)
            for name in processes:
                if name != "consul" and name not in brokers and name not in first:
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
            for command in process.before:
                subprocess.run(command, cwd=ROOT, env={**os.environ, **process.env}, stdin=subprocess.DEVNULL,
                               stdout=log, stderr=subprocess.STDOUT, check=True, timeout=120)
            child = subprocess.Popen(
                process.command(process.argv), cwd=ROOT, env={**os.environ, **process.env}, stdin=subprocess.DEVNULL,
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
            _seed_consul_kv(self.state().topology)

    def restart(self, name: str, *, wait: bool = True, timeout: float = 60.0) -> None:
        if self.is_running(self.process(name), self.state().run_id):
            self.terminate(name)
        self.start_process(name, wait=wait, timeout=timeout)

    # --- stopping --------------------------------------------------------------------------------

    def is_running(self, process: Process, run_id: str) -> bool:
        return process.pid is not None and carries(process.pid, {"LAB_RUN_ID": run_id, "LAB_PROCESS": process.name})

    def kill(self, name: str) -> float:
        """SIGKILL the process and everything in its group (a server's master and its worker)."""
        state = self.state()
        process = self.process(name)
        if not self.is_running(process, state.run_id):
            raise LauncherError(f"{name} is not running")
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        killed_at = time.time()
        wait_gone(process.pid, 5.0)
        return killed_at

    def freeze(self, name: str) -> float:
        """SIGSTOP the process and everything in its group: it hangs with its sockets open."""
        return self._signal_group(name, signal.SIGSTOP)

    def thaw(self, name: str) -> float:
        return self._signal_group(name, signal.SIGCONT)

    def _signal_group(self, name: str, signum: int) -> float:
        state = self.state()
        process = self.process(name)
        if not self.is_running(process, state.run_id):
            raise LauncherError(f"{name} is not running")
        os.killpg(process.pid, signum)
        return time.time()

    def terminate(self, name: str, timeout: float = 20.0) -> None:
        """SIGTERM, then SIGKILL after `timeout` seconds."""
        self._stop_many([self.process(name)], self.state().run_id, timeout)

    def stop(self, timeout: float = 20.0) -> None:
        """Stop everything: services first, then members. Leaves no process behind."""
        state = self.load()
        if state is None:
            return
        services = [p for p in state.processes.values() if p.kind not in ("member", "broker")]
        members = [p for p in state.processes.values() if p.kind == "member"]
        brokers = [p for p in state.processes.values() if p.kind == "broker"]
        self._stop_many(services, state.run_id, timeout)
        self._stop_many(members, state.run_id, timeout)
        # brokers stopped together cannot hand their partitions to each other: a short wait, then SIGKILL
        self._stop_many(brokers, state.run_id, min(timeout, BROKERS_STOP_WAIT))
        if state.topology.network is not None:  # after every process: a namespace goes with its last one
            left = hosts.remove(state.topology.network)
            if left:
                raise LauncherError("could not remove: " + "; ".join(left))
        with self._lock():
            (self.run_dir / "net.json").unlink(missing_ok=True)  # the faults went with the hosts
            self.state_path.unlink(missing_ok=True)

    def _stop_many(self, processes: list[Process], run_id: str, timeout: float) -> None:
        alive = [p for p in processes if self.is_running(p, run_id)]
        for p in alive:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(p.pid, signal.SIGTERM)
                os.killpg(p.pid, signal.SIGCONT)  # a frozen process handles its SIGTERM only once it runs
        deadline = time.monotonic() + timeout
        for p in alive:
            if not wait_gone(p.pid, max(0.1, deadline - time.monotonic())):
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(p.pid, signal.SIGKILL)
                wait_gone(p.pid, 5.0)
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
            if process.kind == "consul":
                leader = requests.get(process.health_url, timeout=timeout)
                if leader.status_code == 200:
                    return (True, "leader elected") if leader.json() else (False, "no leader yet")
                return False, ServiceHealth.of(leader).reason()
            if process.kind == "prometheus":
                ready = requests.get(process.health_url, timeout=timeout)
                return (True, "ready") if ready.status_code == 200 else (False, f"HTTP {ready.status_code}")
            if process.kind == "broker":
                return kafka.broker_health(process.health_url, timeout)
            if process.kind == "member":
                member = member_health(process.health_url, timeout)
                if member.status != 200:
                    return False, f"HTTP {member.status}"
                return member.active, member.summary()
            health = health_at(process.health_url, timeout)
        except requests.RequestException as err:
            return False, f"no answer ({type(err).__name__})"
        return (True, "ok") if health.healthy else (False, health.reason())

    def wait_cluster_safe(self, size: int, timeout: float = 60.0) -> None:
        """Until every running member sees `size` members and reports its data safely backed up."""
        deadline = time.monotonic() + timeout
        while True:
            state = self.state()
            members = [p for p in state.processes.values() if p.kind == "member" and self.is_running(p, state.run_id)]
            seen: dict[str, MemberHealth | None] = {}
            for p in members:
                try:
                    seen[p.name] = member_health(p.health_url, 1.0)
                except (requests.RequestException, ValueError):
                    seen[p.name] = None
            if seen and all(m is not None and m.safe_with(size) for m in seen.values()):
                return
            if time.monotonic() > deadline:
                found = "; ".join(f"{n}: {m.summary() if m else 'no answer'}" for n, m in seen.items()) or "no member"
                raise LauncherError(f"cluster not safe with {size} members after {timeout:.0f}s: {found}")
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

    def status(self) -> list[StatusRow]:
        state = self.state()
        names = list(state.processes)
        with ThreadPoolExecutor(max_workers=8) as pool:
            healths = list(pool.map(self.health, names))
        rows = []
        for name, (ok, detail) in zip(names, healths, strict=True):
            p = state.processes[name]
            running = self.is_running(p, state.run_id)
            url = p.address if p.kind in ("member", "broker") else p.url
            rows.append({"name": name, "kind": p.kind, "url": url,
                         "pid": p.pid if running else None, "running": running, "healthy": ok, "detail": detail,
                         "log": os.path.relpath(p.log_path, ROOT)})
        return rows


def seed_consul_kv(consul: str, cluster_name: str, members: tuple[str, ...] = ()) -> dict[str, str]:
    """Write the cluster settings and object names the services read from Consul KV (the members are
    the repo's defaults unless given); answers what it wrote."""
    from lab_common.consul_support import agent, kv_defaults, seed_kv
    from messages_service.settings import MessagesSettings  # the one settings class with every KV field

    settings = MessagesSettings.load("labctl", default_port=1, environ={}, argv=[], consul=consul,
                                     hz_cluster_name=cluster_name, **({"hz_members": members} if members else {}))
    values = kv_defaults(settings)
    seed_kv(agent(settings), values)
    return values


def _seed_consul_kv(topology: Topology) -> None:
    seed_consul_kv(f"127.0.0.1:{topology.consul_port}", topology.cluster_name, tuple(topology.member_addresses()))


def _check_hosts_topology(topology: Topology) -> None:
    """What --hosts runs: members, logging and messages copies on the hosts, the facade and the config server
    on the edge; the other modes are not placed on hosts (yet)."""
    hosts.require_tools()
    if topology.members != topology.hosts:
        raise LauncherError(f"--hosts {topology.hosts} places one member per host: give --members {topology.hosts}")
    other = {"--discovery consul": topology.discovery != "config-server",
             "--queue kafka": topology.queue != "hazelcast",
             "--transport grpc": topology.transport != "http", "--prometheus": topology.prometheus}
    chosen = [option for option, on in other.items() if on]
    if chosen:
        raise LauncherError(f"--hosts runs with the config server, the Hazelcast queue and HTTP only, not with "
                            f"{', '.join(chosen)}")


def _still_busy(ports: dict[str, int], wait: float) -> dict[str, int]:
    """The ports still in use after up to `wait` seconds: a JVM stopped a moment ago may still be
    closing its sockets after its main thread is reaped (the JMX exporter's is among the last)."""
    deadline = time.monotonic() + wait
    while True:
        busy = {name: port for name, port in ports.items() if _port_in_use(port)}
        if not busy or time.monotonic() > deadline:
            return busy
        time.sleep(0.2)


def _port_in_use(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(0.2)
        return s.connect_ex(("127.0.0.1", port)) == 0
