"""Hosts on one machine (`labctl start --hosts 3`): real namespaces, real members, real faults between them.
Nothing of a system's network may outlive it: after a stop, and after the launcher is SIGKILLed and the
system stopped from another labctl, no namespace and no link of it is left."""

from __future__ import annotations

import signal
import statistics
import subprocess
import sys
import uuid

import pytest
import requests

from labctl.launcher import ROOT, LauncherError, System
from labctl.launcher.hosts import HostNetwork, existing_namespaces
from tests.helpers import eventually, port_offset, started_system

pytestmark = pytest.mark.e2e

PORT_OFFSET = port_offset(23_000)  # members on host addresses; the facade on 127.0.0.1:31080, + the shift
RUN_OFFSET = port_offset(23_500)  # the `labctl run` killed with SIGKILL


def labctl(run_dir, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "labctl.cli", "--run-dir", str(run_dir), *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)


def connect_ms(net: HostNetwork, source: str, target: str, port: int, tries: int = 5) -> list[float | None]:
    """TCP connect times from inside host `source` to `target`'s port, in ms (None: no answer within 1 s)."""
    code = ("import socket, time\n"
            f"for _ in range({tries}):\n"
            "    t = time.monotonic()\n"
            "    try:\n"
            f"        socket.create_connection(('{net.address(target)}', {port}), timeout=1).close()\n"
            "        print(round((time.monotonic() - t) * 1000, 2))\n"
            "    except OSError:\n"
            "        print('none')\n")
    out = subprocess.run(net.in_host(source, [sys.executable, "-c", code]), capture_output=True, text=True,
                         timeout=30, check=True).stdout.split()
    return [None if word == "none" else float(word) for word in out]


def network_gone(net: HostNetwork) -> bool:
    links = subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True, check=True).stdout
    ours = [net.bridge, *map(net.outer_link, net.names)]
    return not (set(map(net.namespace, net.names)) & existing_namespaces()) and not any(
        f" {name}:" in links or f" {name}@" in links for name in ours)


@pytest.fixture(scope="module")
def hosts_system(tmp_path_factory):
    with started_system(tmp_path_factory.mktemp("hosts"), "hosts", port_offset=PORT_OFFSET, hosts=3) as system:
        yield system
    assert network_gone(HostNetwork(PORT_OFFSET, 3))  # stopped: every namespace and link of it removed


def test_every_copy_listens_on_its_hosts_address_and_the_facade_on_loopback(hosts_system):
    net = hosts_system.state().topology.network
    rows = {row["name"]: row for row in hosts_system.status()}
    assert rows["member-2"]["url"] == f"{net.address('host2')}:{5702 + PORT_OFFSET}"
    assert rows["logging-3"]["url"].startswith(f"http://{net.address('host3')}:")
    assert rows["messages-1"]["url"].startswith(f"http://{net.address('host1')}:")
    assert rows["facade-1"]["url"] == f"http://127.0.0.1:{8080 + PORT_OFFSET}"
    answer = requests.post(rows["facade-1"]["url"] + "/facade", data={"msg": "from the machine"}, timeout=10)
    assert answer.status_code == 201, answer.text


def test_a_partition_cuts_both_ways_and_a_heal_makes_the_cluster_whole(hosts_system, tmp_path):
    run_dir = hosts_system.run_dir
    net = hosts_system.state().topology.network
    member = {h: 5700 + i + PORT_OFFSET for i, h in enumerate(net.names, 1)}
    assert None not in connect_ms(net, "host2", "host1", member["host1"], 2)
    cut = labctl(run_dir, "net", "partition", "host1", "|", "host2,host3")
    assert cut.returncode == 0, cut.stderr
    assert "the edge is with host2,host3" in cut.stdout
    assert connect_ms(net, "host2", "host1", member["host1"], 2) == [None, None]
    assert connect_ms(net, "host1", "host3", member["host3"], 2) == [None, None]
    assert None not in connect_ms(net, "host2", "host3", member["host3"], 2)
    status = labctl(run_dir, "net", "status")  # read back by a fresh process
    assert "host1 | host2,host3" in status.stdout and "host2, host3" in status.stdout
    healed = labctl(run_dir, "net", "heal")
    assert healed.returncode == 0 and "no partition" in healed.stdout
    assert None not in connect_ms(net, "host2", "host1", member["host1"], 2)
    hosts_system.wait_cluster_safe(3, timeout=120)
    facade = hosts_system.url("facade-1")
    eventually(lambda: requests.post(facade + "/facade", data={"msg": "after heal"}, timeout=10).status_code == 201,
               timeout=60, interval=1)


def test_a_delay_slows_what_the_host_sends_and_goes_when_removed(hosts_system):
    run_dir = hosts_system.run_dir
    net = hosts_system.state().topology.network
    port = 5701 + PORT_OFFSET
    before = statistics.median(connect_ms(net, "host3", "host1", port))
    slowed = labctl(run_dir, "net", "delay", "host1", "100ms", "--jitter", "10ms")
    assert slowed.returncode == 0, slowed.stderr
    during = statistics.median(connect_ms(net, "host3", "host1", port))
    labctl(run_dir, "net", "delay", "host1", "0ms")
    after = statistics.median(connect_ms(net, "host3", "host1", port))
    measured = f"TCP connect host3 -> host1: {before:.2f} ms, with 100 ms ± 10 ms {during:.2f} ms, after {after:.2f} ms"
    assert before < 20 and 85 <= during <= 160 and after < 20, measured


def test_a_wrong_host_or_side_exits_2_and_changes_nothing(hosts_system):
    run_dir = hosts_system.run_dir
    for args in (["partition", "host1", "host1,host2"], ["partition", "host1", "host4"], ["delay", "host9", "5ms"],
                 ["loss", "host1", "150%"]):
        answer = labctl(run_dir, "net", *args)
        assert answer.returncode == 2, (args, answer.stdout, answer.stderr)
    assert "no partition" in labctl(run_dir, "net", "status").stdout


def test_after_the_launcher_is_sigkilled_a_stop_removes_every_namespace_and_link(tmp_path):
    run_dir = tmp_path / "run"
    net = HostNetwork(RUN_OFFSET, 3)
    child = subprocess.Popen(
        [sys.executable, "-m", "labctl.cli", "--run-dir", str(run_dir), "run", "--hosts", "3", "--port-offset",
         str(RUN_OFFSET), "--cluster-name", f"hosts-run-{uuid.uuid4().hex[:8]}"],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        system = System(run_dir)
        eventually(lambda: _all_healthy(system), timeout=150, interval=1)
        assert labctl(run_dir, "net", "delay", "host2", "20ms").returncode == 0  # a delayer runs in host2 too
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=10)
        assert not network_gone(net)  # the launcher died: the system and its network are still there
        stopped = labctl(run_dir, "stop")
        assert stopped.returncode == 0, stopped.stderr
    finally:
        if child.poll() is None:
            child.kill()
        labctl(run_dir, "stop")
    assert network_gone(net)


def _all_healthy(system: System) -> bool:
    try:
        return all(row["healthy"] for row in system.status())
    except LauncherError:
        return False
