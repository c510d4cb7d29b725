"""Network faults applied to a running system with hosts: one nftables table of the system's own on the hosts'
links for cuts and loss, a delayer process (scripts/labctl/netfaults/delayer.py) behind an iptables NFQUEUE rule in
each slowed host.

What is in place is written to `<run-dir>/net.json`, so any later `labctl net` (or a drill) reads it back; every
change is checked in full before anything is touched, then each host's rules are replaced as a whole.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from labctl.deps import ROOT
from labctl.launcher import System
from labctl.launcher.hosts import HOST_IFACE, CommandRunner, HostNetwork, HostsError, run_command
from labctl.netfaults.rules import Delay, Faults, NetUsageError, fault_table
from labctl.processes import carries, wait_gone

QUEUE = 1  # the netfilter queue number inside each host's namespace (queues are per namespace)
DELAYER_READY_WAIT = 10.0  # seconds for a delayer to bind its queue


def delayer_name(host: str) -> str:
    return f"net-delay-{host}"


class NetFaults:
    """The faults of the system `system` runs (started with --hosts)."""

    def __init__(self, system: System, run: CommandRunner = run_command, spawn=subprocess.Popen):
        state = system.load()
        if state is None:
            raise NetUsageError(f"nothing is running from {system.run_dir}: `labctl start --hosts 3` first")
        if state.topology.network is None:
            raise NetUsageError("this system was started without --hosts: there is no network between its "
                                "processes to cut (`labctl start --hosts 3`)")
        self.net: HostNetwork = state.topology.network
        self.run_id = state.run_id
        self.path = system.run_dir / "net.json"
        self.logs = system.run_dir / "logs"
        self.run = run
        self.spawn = spawn

    # --- state ---

    def faults(self) -> Faults:
        data = json.loads(self.path.read_text()) if self.path.exists() else {}
        return Faults.from_json(data) if data.get("run_id") == self.run_id else Faults()

    def _pids(self) -> dict[str, int]:
        data = json.loads(self.path.read_text()) if self.path.exists() else {}
        return data.get("delayers", {}) if data.get("run_id") == self.run_id else {}

    def _save(self, faults: Faults, pids: dict[str, int]) -> None:
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"run_id": self.run_id, **faults.to_json(), "delayers": pids}, indent=2))
        tmp.replace(self.path)

    def addresses(self) -> dict[str, str]:
        return {host: self.net.address(host) for host in self.net.names}

    # --- changes (each checked before anything is touched) ---

    def partition(self, sides: tuple[tuple[str, ...], tuple[str, ...]]) -> Faults:
        faults = self.faults()
        faults.sides = sides
        return self._apply(faults)

    def heal(self) -> Faults:
        """Every cut, delay and loss removed."""
        return self._apply(Faults())

    def _known(self, host: str) -> None:
        if host not in self.net.names:
            raise NetUsageError(f"no host named {host!r}; this system has {', '.join(self.net.names)}")

    def delay(self, host: str, ms: float, jitter_ms: float = 0.0) -> Faults:
        self._known(host)
        if jitter_ms > ms:
            raise NetUsageError(f"jitter ({jitter_ms:g} ms) larger than the delay ({ms:g} ms)")
        faults = self.faults()
        if ms > 0:
            faults.delays[host] = Delay(ms, jitter_ms)
        else:
            faults.delays.pop(host, None)
        return self._apply(faults)

    def loss(self, host: str, percent: float) -> Faults:
        self._known(host)
        faults = self.faults()
        if percent > 0:
            faults.losses[host] = percent
        else:
            faults.losses.pop(host, None)
        return self._apply(faults)

    def _apply(self, wanted: Faults) -> Faults:
        before, pids = self.faults(), self._pids()
        links = {host: self.net.outer_link(host) for host in self.net.names}
        self._must(["nft", "-f", "-"],
                   fault_table(wanted, self.net.fault_table, links, self.addresses(), self.net.edge_address))
        for host in self.net.names:
            if before.delays.get(host) != wanted.delays.get(host) or (host in wanted.delays and not self._alive(
                    host, pids.get(host))):
                self._stop_delayer(host, pids.pop(host, None))
                if host in wanted.delays:
                    pids[host] = self._start_delayer(host, wanted.delays[host])
        self._save(wanted, pids)
        return wanted

    def _must(self, argv: list[str], stdin: str | None = None) -> None:
        code, out = self.run(argv, stdin)
        if code != 0:
            raise HostsError(f"`{' '.join(argv)}` failed: {out}")

    # --- delayers ---

    def _rule(self, action: str) -> list[str]:
        return ["iptables-legacy", "-t", "mangle", action, "POSTROUTING", "-o", HOST_IFACE, "-j", "NFQUEUE",
                "--queue-num", str(QUEUE), "--queue-bypass"]

    def _alive(self, host: str, pid: int | None) -> bool:
        return pid is not None and carries(pid, {"LAB_RUN_ID": self.run_id, "LAB_PROCESS": delayer_name(host)})

    def _start_delayer(self, host: str, delay: Delay) -> int:
        log_path = self.logs / f"{delayer_name(host)}.log"
        self.logs.mkdir(parents=True, exist_ok=True)
        start = log_path.stat().st_size if log_path.exists() else 0
        argv = [sys.executable, "-m", "labctl.netfaults.delayer", "--queue", str(QUEUE),
                "--delay-ms", f"{delay.ms:g}", "--jitter-ms", f"{delay.jitter_ms:g}"]
        env = {**os.environ, "LAB_RUN_ID": self.run_id, "LAB_PROCESS": delayer_name(host)}
        with open(log_path, "ab") as log:
            child = self.spawn(self.net.in_host(host, argv), cwd=ROOT, env=env, stdin=subprocess.DEVNULL,
                               stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + DELAYER_READY_WAIT
        while "bound queue" not in _read_from(log_path, start):
            if time.monotonic() > deadline or child.poll() is not None:
                self._stop_delayer(host, child.pid)
                raise HostsError(f"the delayer of {host} did not bind its queue: see {log_path}")
            time.sleep(0.05)
        self._must(self.net.in_host(host, ["sh", "-c", " ".join(self._rule("-C")) + " 2>/dev/null || "
                                           + " ".join(self._rule("-A"))]))
        return child.pid

    def _stop_delayer(self, host: str, pid: int | None) -> None:
        """Packets first stop going to the queue, then the delayer lets what it holds go and exits."""
        self.run(self.net.in_host(host, self._rule("-D")))
        if self._alive(host, pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
            if not wait_gone(pid, 5.0):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)

    def delayers_running(self) -> dict[str, bool]:
        pids = self._pids()
        return {host: self._alive(host, pids.get(host)) for host in self.faults().delays}


def _read_from(path: Path, offset: int) -> str:
    with open(path, "rb") as f:
        f.seek(offset)
        return f.read().decode(errors="replace")
