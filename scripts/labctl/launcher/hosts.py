"""Hosts on one machine: each host a Linux network namespace with one veth into a bridge of its own, and the
machine itself (the root namespace) as the edge host, with an address on the same bridge.

Names and addresses come from the port offset, so two systems (or two test runs) never share a namespace, a
link or a subnet: host i of offset N is namespace `lab<N>-h<i>`, its veth's other end `lab<N>h<i>`, the bridge
`lab<N>br`, and the subnet the /28 at 100.64.0.0 + 16 N (the shared address space, RFC 6598: never routed on
the internet). The namespaces get no default route and the machine forwards nothing into them.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import shutil
import signal
import subprocess
from dataclasses import dataclass
from typing import Protocol

from labctl.control import ControlError

SPACE = ipaddress.ip_network("100.64.0.0/10")
SUBNET_PREFIX = 28  # 14 addresses: hosts from .1, the edge host on the last one
MAX_HOSTS = 13
HOST_IFACE = "eth0"  # the veth's end inside a host (names are per namespace)
COMMAND_TIMEOUT = 20.0
TOOLS = {"ip": "iproute2", "nft": "nftables", "iptables-legacy": "iptables"}


class HostsError(ControlError):
    """The hosts cannot be made or removed; the message says what and how to fix it."""


class CommandRunner(Protocol):
    """Runs one command to completion (the real one: `subprocess.run`); answers (exit code, output)."""

    def __call__(self, argv: list[str], stdin: str | None = None) -> tuple[int, str]: ...


def run_command(argv: list[str], stdin: str | None = None) -> tuple[int, str]:
    done = subprocess.run(argv, input=stdin, capture_output=True, text=True, timeout=COMMAND_TIMEOUT)
    return done.returncode, (done.stdout + done.stderr).strip()


@dataclass(frozen=True)
class HostNetwork:
    """The hosts of one system: names and addresses, all derived from its port offset."""

    port_offset: int
    hosts: int

    def __post_init__(self):
        if not 1 <= self.hosts <= MAX_HOSTS:
            raise HostsError(f"--hosts must be 1..{MAX_HOSTS} (got {self.hosts})")
        if not 0 <= self.port_offset < SPACE.num_addresses >> (32 - SUBNET_PREFIX):
            raise HostsError(f"no subnet for port offset {self.port_offset}")

    @property
    def subnet(self) -> ipaddress.IPv4Network:
        size = 1 << (32 - SUBNET_PREFIX)
        return ipaddress.ip_network(f"{SPACE.network_address + self.port_offset * size}/{SUBNET_PREFIX}")

    @property
    def names(self) -> list[str]:
        return [f"host{i}" for i in range(1, self.hosts + 1)]

    def address(self, host: str) -> str:
        return str(self.subnet.network_address + self.index(host))

    @property
    def edge_address(self) -> str:
        return str(self.subnet.broadcast_address - 1)

    def index(self, host: str) -> int:
        if host not in self.names:
            raise HostsError(f"no host named {host!r}; this system has {', '.join(self.names)}")
        return int(host.removeprefix("host"))

    def namespace(self, host: str) -> str:
        return f"lab{self.port_offset}-h{self.index(host)}"

    def outer_link(self, host: str) -> str:
        """The veth's end in the root namespace, on the bridge."""
        return f"lab{self.port_offset}h{self.index(host)}"

    @property
    def bridge(self) -> str:
        return f"lab{self.port_offset}br"

    @property
    def fault_table(self) -> str:
        """The nftables table (netdev family, the machine's namespace) holding `labctl net`'s cuts and loss."""
        return f"lab{self.port_offset}faults"

    def in_host(self, host: str, argv: list[str]) -> list[str]:
        """The command run inside the host's namespace."""
        return ["ip", "netns", "exec", self.namespace(host), *argv]

    # --- the commands that make and remove it ------------------------------------------------------

    def create_commands(self) -> list[list[str]]:
        prefix = f"/{SUBNET_PREFIX}"
        commands = [["ip", "link", "add", self.bridge, "type", "bridge"],
                    ["ip", "addr", "add", self.edge_address + prefix, "dev", self.bridge],
                    ["ip", "link", "set", self.bridge, "up"]]
        for host in self.names:
            ns, outer = self.namespace(host), self.outer_link(host)
            commands += [["ip", "netns", "add", ns],
                         ["ip", "link", "add", outer, "type", "veth", "peer", "name", HOST_IFACE, "netns", ns],
                         ["ip", "link", "set", outer, "master", self.bridge, "up"],
                         self.in_host(host, ["ip", "link", "set", "lo", "up"]),
                         self.in_host(host, ["ip", "addr", "add", self.address(host) + prefix, "dev", HOST_IFACE]),
                         self.in_host(host, ["ip", "link", "set", HOST_IFACE, "up"])]
        return commands

    def remove_commands(self) -> list[list[str]]:
        """Each removal on its own: a namespace goes once its last process has (hence the kills first)."""
        commands = []
        for host in self.names:
            commands += [["ip", "link", "del", self.outer_link(host)], ["ip", "netns", "del", self.namespace(host)]]
        return [["nft", "delete", "table", "netdev", self.fault_table], *commands, ["ip", "link", "del", self.bridge]]


def require_tools(which=shutil.which, euid: int | None = None) -> None:
    """Root and the commands the hosts need, or an error naming the fix."""
    euid = os.geteuid() if euid is None else euid
    missing = sorted({package for command, package in TOOLS.items() if which(command) is None})
    if euid != 0:
        raise HostsError("--hosts needs root (network namespaces, a bridge, nftables rules): run labctl as root")
    if missing:
        raise HostsError(f"--hosts needs {', '.join(missing)}: `python -m labctl.deps net` installs "
                         f"(apt-get install {' '.join(missing)})")


def existing_namespaces(run: CommandRunner = run_command) -> set[str]:
    code, out = run(["ip", "netns", "list"])
    return {line.split()[0] for line in out.splitlines() if line.strip()} if code == 0 else set()


def check_free(net: HostNetwork, run: CommandRunner = run_command) -> None:
    """No namespace or link of this network exists yet, and its subnet overlaps no address of the machine."""
    taken = [ns for ns in map(net.namespace, net.names) if ns in existing_namespaces(run)]
    code, out = run(["ip", "-o", "link", "show"])
    links = {line.split(":")[1].strip().split("@")[0] for line in out.splitlines() if ":" in line and code == 0}
    taken += [link for link in [net.bridge, *map(net.outer_link, net.names)] if link in links]
    if taken:
        raise HostsError(f"{', '.join(taken)} already exist: another system with port offset {net.port_offset} "
                         "runs, or one was not stopped (`labctl stop` from its run folder removes them)")
    code, out = run(["ip", "-o", "-4", "addr", "show"])
    for line in out.splitlines() if code == 0 else []:
        words = line.split()
        if "inet" in words:
            network = ipaddress.ip_interface(words[words.index("inet") + 1]).network
            if network.overlaps(net.subnet):
                raise HostsError(f"the hosts' subnet {net.subnet} overlaps {network} on this machine")


def create(net: HostNetwork, run: CommandRunner = run_command) -> None:
    """Make the bridge, the namespaces and their links (check_free first); on any failure remove what was
    made, then raise."""
    for argv in net.create_commands():
        code, out = run(argv)
        if code != 0:
            remove(net, run)
            raise HostsError(f"`{' '.join(argv)}` failed: {out}")


def remove(net: HostNetwork, run: CommandRunner = run_command) -> list[str]:
    """Kill whatever still runs in the hosts, then remove every namespace, link and the bridge that exists;
    answers what could not be removed (nothing, normally)."""
    present = existing_namespaces(run)
    for host in net.names:
        if net.namespace(host) in present:
            code, out = run(["ip", "netns", "pids", net.namespace(host)])
            for pid in out.split() if code == 0 else []:
                with contextlib.suppress(ProcessLookupError, ValueError):
                    os.kill(int(pid), signal.SIGKILL)
    left = []
    for argv in net.remove_commands():
        code, out = run(argv)
        if code != 0 and "Cannot find device" not in out and "No such file" not in out:
            left.append(f"{' '.join(argv)}: {out}")
    return left
