"""Hosts on one machine and `labctl net`, without touching the machine's network: the plan, the names, the
commands and the nftables rules made, with fakes for the command runner and the process spawner."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from labctl.cli import main
from labctl.launcher import State, System, Topology, kafka, plan, topology
from labctl.launcher import system as system_module
from labctl.launcher.hosts import HostNetwork, HostsError, check_free, create, remove, require_tools
from labctl.netfaults.control import NetFaults
from labctl.netfaults.delayer import Delayer, packet_ids
from labctl.netfaults.rules import Delay, Faults, NetUsageError, fault_table, parse_ms, parse_percent, parse_sides

HOSTS = ["host1", "host2", "host3"]


@pytest.fixture(autouse=True)
def no_jar_download(monkeypatch):
    monkeypatch.setattr(topology, "ensure_member_jar", lambda: Path("/cache/hazelcast.jar"))
    monkeypatch.setattr(topology, "ensure_jmx_exporter_jar", lambda: Path("/cache/jmx_prometheus_javaagent.jar"))
    monkeypatch.setattr(kafka, "ensure_kafka_libs", lambda: Path("/cache/kafka"))


class FakeRunner:
    """Records every command; answers from `answers` (argv prefix -> (code, output)), else success."""

    def __init__(self, answers: dict[tuple[str, ...], tuple[int, str]] | None = None):
        self.answers = answers or {}
        self.commands: list[tuple[list[str], str | None]] = []

    def __call__(self, argv, stdin=None):
        self.commands.append((list(argv), stdin))
        for prefix, answer in self.answers.items():
            if tuple(argv[:len(prefix)]) == prefix:
                return answer
        return 0, ""

    def argvs(self) -> list[list[str]]:
        return [argv for argv, _ in self.commands]


# --- the plan with hosts -------------------------------------------------------------------------


def test_with_hosts_each_member_and_its_copies_run_in_their_hosts_namespace_and_listen_on_its_address(tmp_path):
    processes = plan(Topology(hosts=3, port_offset=1100), tmp_path, "run")
    net = HostNetwork(1100, 3)
    for name, host in [("member-1", "host1"), ("logging-2", "host2"), ("messages-2", "host2"), ("member-3", "host3")]:
        assert processes[name].netns == net.namespace(host)
        assert processes[name].host == net.address(host)
    assert processes["member-2"].command(["java"]) == ["ip", "netns", "exec", "lab1100-h2", "java"]
    assert f"-Dlab.member.host={net.address('host2')}" in processes["member-2"].argv
    assert "-Dlab.icmp=true" in processes["member-2"].argv  # members ping each other's hosts (member.yaml)
    assert processes["logging-3"].env["LAB_HOST"] == net.address("host3")
    assert processes["logging-3"].url == f"http://{net.address('host3')}:9185"
    # the facade answers on 127.0.0.1 from the machine; the config server on the edge's address, for the hosts
    assert processes["facade-1"].url == "http://127.0.0.1:9180" and processes["facade-1"].netns is None
    assert processes["config-server"].host == net.edge_address
    assert processes["logging-1"].env["LAB_CONFIG_SERVER"] == f"http://{net.edge_address}:9988"


def test_without_hosts_the_plan_is_as_before(tmp_path):
    processes = plan(Topology(), tmp_path, "run")
    assert all(p.netns is None and p.host == "127.0.0.1" for p in processes.values())
    assert all(p.command(p.argv) == p.argv for p in processes.values())
    assert not any("LAB_HOST" in p.env for p in processes.values())
    assert "-Dlab.member.host=127.0.0.1" in processes["member-1"].argv
    assert "-Dlab.icmp=false" in processes["member-1"].argv  # on loopback every ping would succeed
    assert Topology().registry()["logging-service"][0] == "http://127.0.0.1:8081"


@pytest.mark.parametrize(("hosts", "first"), [(3, [("spawn", "member-1"), ("healthy", ("member-1",))]), (0, [])])
def test_with_hosts_member_1_starts_alone_first_and_so_is_the_master(tmp_path, monkeypatch, hosts, first):
    """The oldest member is the master: started and healthy before the others, member-1 is it, on host1."""
    events = []
    monkeypatch.setattr(system_module, "_check_hosts_topology", lambda top: None)
    monkeypatch.setattr(system_module, "_still_busy", lambda ports, wait: {})
    monkeypatch.setattr(system_module.hosts, "check_free", lambda net: None)
    monkeypatch.setattr(system_module.hosts, "create", lambda net: events.append(("network",)))
    monkeypatch.setattr(System, "_spawn", lambda self, name: events.append(("spawn", name)))
    monkeypatch.setattr(System, "wait_healthy",
                        lambda self, names=None, **kw: events.append(("healthy", tuple(names or ("all",)))))
    System(tmp_path).start(Topology(hosts=hosts, port_offset=1100))
    spawned = [event[1] for event in events if event[0] == "spawn"]
    assert events[int(bool(hosts)):][:len(first)] == first
    assert sorted(spawned) == sorted(plan(Topology(hosts=hosts, port_offset=1100), tmp_path, "run"))  # each once
    assert events[-1] == ("healthy", ("all",))


def test_a_state_file_written_before_hosts_existed_still_loads_on_loopback(tmp_path):
    state = State("run", Topology(), plan(Topology(), tmp_path, "run")).to_json()
    for process in state["processes"].values():
        del process["host"], process["netns"]
    del state["topology"]["hosts"]
    loaded = State.from_json(json.loads(json.dumps(state)))
    assert loaded.processes["member-1"].address == "127.0.0.1:5701" and loaded.topology.network is None


# --- names, addresses and commands ---------------------------------------------------------------


def test_names_fit_linux_interface_names_and_differ_between_port_offsets():
    nets = [HostNetwork(offset, 3) for offset in (0, 100, 1100, 20_100, 65_535)]
    for net in nets:
        for name in [net.bridge, *map(net.outer_link, net.names)]:
            assert len(name) <= 15, name
        assert net.subnet.subnet_of(HostNetwork(0, 1).subnet.supernet(new_prefix=10))
        assert net.edge_address not in map(net.address, net.names)
    assert len({n.subnet for n in nets}) == len({n.bridge for n in nets}) == len(nets)


def test_the_network_is_made_without_a_default_route_and_removed_link_by_link():
    net = HostNetwork(100, 3)
    made = [" ".join(argv) for argv in net.create_commands()]
    assert not any("route" in c or "nat" in c or "masquerade" in c for c in made)
    assert f"ip netns add {net.namespace('host3')}" in made
    removed = [" ".join(argv) for argv in net.remove_commands()]
    assert removed[-1] == f"ip link del {net.bridge}" and f"ip netns del {net.namespace('host1')}" in removed


def test_a_start_that_fails_half_way_removes_what_it_made():
    net = HostNetwork(100, 3)
    runner = FakeRunner({("ip", "netns", "add", net.namespace("host2")): (1, "boom")})
    with pytest.raises(HostsError, match="boom"):
        create(net, runner)
    assert ["ip", "link", "del", net.bridge] in runner.argvs()
    assert ["ip", "netns", "del", net.namespace("host1")] in runner.argvs()


def test_a_network_whose_names_are_taken_is_not_made_again():
    net = HostNetwork(100, 3)
    runner = FakeRunner({("ip", "netns", "list"): (0, f"{net.namespace('host1')} (id: 0)\n")})
    with pytest.raises(HostsError, match="already exist"):
        check_free(net, runner)
    clash = FakeRunner({("ip", "-o", "-4", "addr"): (0, f"5: eth1    inet {net.address('host1')}/16 scope global")})
    with pytest.raises(HostsError, match="overlaps"):
        check_free(net, clash)


def test_removal_ignores_what_is_already_gone_and_reports_the_rest():
    net = HostNetwork(100, 1)
    gone = FakeRunner({("ip", "link", "del"): (1, "Cannot find device")})
    assert remove(net, gone) == []
    stuck = FakeRunner({("ip", "link", "del"): (2, "Operation not permitted")})
    assert len(remove(net, stuck)) == 2


def test_missing_tools_or_root_are_named_with_their_fix():
    with pytest.raises(HostsError, match="nftables.*labctl.deps net"):
        require_tools(which=lambda c: None if c == "nft" else f"/usr/sbin/{c}", euid=0)
    with pytest.raises(HostsError, match="root"):
        require_tools(which=lambda c: f"/usr/sbin/{c}", euid=1000)


# --- arguments -----------------------------------------------------------------------------------


@pytest.mark.parametrize("words", [["host1", "host2,host3"], ["host1", "|", "host2,host3"], ["host1|host2,host3"],
                                   ["host1 | host2, host3"]])
def test_both_forms_of_two_sides_are_read(words):
    assert parse_sides(words, HOSTS) == (("host1",), ("host2", "host3"))


@pytest.mark.parametrize(("words", "problem"), [
    (["host1", "host9"], "no host named host9"), (["host1", "host1,host2"], "named twice"),
    (["host1,host1", "host2"], "named twice"), (["host1"], "two sides"), (["host1", "host2", "host3"], "two sides"),
    (["host1", "|", ","], "names no host"),
])
def test_a_wrong_partition_is_refused(words, problem):
    with pytest.raises(NetUsageError, match=problem):
        parse_sides(words, HOSTS)


def test_durations_and_percentages():
    assert parse_ms("50ms", "delay") == 50 and parse_ms("0.1s", "delay") == 100 and parse_ms("7", "delay") == 7
    assert parse_percent("10%") == 10 and parse_percent("2.5") == 2.5
    for bad in ("fast", "-5ms", "20s"):
        with pytest.raises(NetUsageError):
            parse_ms(bad, "delay")
    for bad in ("101%", "ten", "-1"):
        with pytest.raises(NetUsageError):
            parse_percent(bad)


# --- the rules -----------------------------------------------------------------------------------

ADDRESSES = {"host1": "10.9.0.1", "host2": "10.9.0.2", "host3": "10.9.0.3"}
LINKS = {"host1": "lab7h1", "host2": "lab7h2", "host3": "lab7h3"}
EDGE = "10.9.0.14"


def chains(faults: Faults) -> dict[str, str]:
    """chain name -> its line, from the table rendered for these faults."""
    script = fault_table(faults, "lab7faults", LINKS, ADDRESSES, EDGE)
    return {line.split()[1]: line for line in script.splitlines() if line.strip().startswith("chain ")}


def test_the_smaller_side_is_cut_from_the_others_and_from_the_edge_on_the_wire_both_ways():
    found = chains(Faults(sides=(("host1",), ("host2", "host3"))))
    sends, gets = found["host1_sends"], found["host1_gets"]
    assert 'hook ingress device "lab7h1"' in sends and "ip daddr { 10.9.0.14, 10.9.0.2, 10.9.0.3 } drop" in sends
    assert 'hook egress device "lab7h1"' in gets and "ip saddr { 10.9.0.14, 10.9.0.2, 10.9.0.3 } drop" in gets
    assert "ip daddr { 10.9.0.1 } drop" in found["host2_sends"]  # the larger side keeps the edge
    assert Faults(sides=(("host1",), ("host2", "host3"))).edge_cut_from() == ["host1"]


def test_a_bridge_host_keeps_both_sides_and_the_edge_reaches_everyone():
    faults = Faults(sides=(("host1",), ("host3",)))
    found = chains(faults)
    assert "host2_sends" not in found and "host2_gets" not in found
    assert "10.9.0.3" in found["host1_sends"] and EDGE not in found["host1_sends"]
    assert faults.edge_cut_from() == []


def test_the_table_replaces_the_last_one_in_one_transaction():
    healed = fault_table(Faults(), "lab7faults", LINKS, ADDRESSES, EDGE)
    assert healed == "table netdev lab7faults\ndelete table netdev lab7faults\n"
    lossy = fault_table(Faults(losses={"host3": 10.0}), "lab7faults", LINKS, ADDRESSES, EDGE)
    assert lossy.startswith(healed)
    assert list(chains(Faults(losses={"host3": 10.0}))) == ["host3_sends"]
    assert "numgen random mod 10000 < 1000 drop" in lossy


def test_faults_round_trip_through_their_file():
    faults = Faults(sides=(("host1",), ("host2", "host3")), delays={"host2": Delay(100, 20)}, losses={"host3": 10})
    assert Faults.from_json(json.loads(json.dumps(faults.to_json()))) == faults


# --- applying them -------------------------------------------------------------------------------


class FakeSpawn:
    """Stands in for subprocess.Popen: writes the delayer's ready line to its log, never starts anything."""

    def __init__(self):
        self.started: list[list[str]] = []

    def __call__(self, argv, stdout, **_):
        self.started.append(argv)
        stdout.write(b"delayer bound queue 1\n")
        stdout.flush()
        return type("FakeChild", (), {"pid": 999_999_999, "poll": lambda self: None})()


def hosts_system(tmp_path: Path, hosts: int = 3) -> System:
    system = System(tmp_path)
    top = Topology(hosts=hosts, port_offset=1100)
    system._save(State("run-1", top, plan(top, tmp_path, "run-1")))
    return system


def test_a_partition_is_one_table_on_the_hosts_links_and_is_read_back_by_a_fresh_controller(tmp_path):
    runner = FakeRunner()
    system = hosts_system(tmp_path)
    NetFaults(system, runner, FakeSpawn()).partition((("host1",), ("host2", "host3")))
    [(argv, script)] = [(argv, stdin) for argv, stdin in runner.commands if argv[:1] == ["nft"]]
    assert argv == ["nft", "-f", "-"] and 'device "lab1100h1"' in script and "table netdev lab1100faults" in script
    assert NetFaults(system, FakeRunner()).faults().sides == (("host1",), ("host2", "host3"))


def test_a_delay_starts_a_delayer_in_the_host_and_queues_its_outgoing_packets(tmp_path):
    runner, spawn = FakeRunner(), FakeSpawn()
    NetFaults(hosts_system(tmp_path), runner, spawn).delay("host2", 100, 20)
    assert spawn.started[0][:4] == ["ip", "netns", "exec", "lab1100-h2"]
    assert spawn.started[0][-4:] == ["--delay-ms", "100", "--jitter-ms", "20"]
    assert any("NFQUEUE" in " ".join(argv) and "lab1100-h2" in argv for argv in runner.argvs())


def test_a_wrong_host_changes_nothing(tmp_path):
    runner = FakeRunner()
    faults = NetFaults(hosts_system(tmp_path), runner, FakeSpawn())
    for change in (lambda: faults.delay("host7", 50), lambda: faults.loss("hostX", 10)):
        with pytest.raises(NetUsageError, match="no host named"):
            change()
    assert runner.commands == [] and not (tmp_path / "net.json").exists()


def test_labctl_net_on_a_system_without_hosts_exits_2_and_changes_nothing(tmp_path, capsys):
    system = System(tmp_path)
    system._save(State("run-1", Topology(), plan(Topology(), tmp_path, "run-1")))
    assert main(["--run-dir", str(tmp_path), "net", "partition", "host1", "host2"]) == 2
    assert "without --hosts" in capsys.readouterr().err
    assert main(["--run-dir", str(tmp_path / "none"), "net", "status"]) == 2


def test_labctl_net_refuses_a_host_on_both_sides_with_exit_2(tmp_path, capsys):
    hosts_system(tmp_path)
    assert main(["--run-dir", str(tmp_path), "net", "partition", "host1,host2", "|", "host2"]) == 2
    assert "named twice" in capsys.readouterr().err and not (tmp_path / "net.json").exists()


# --- the delayer's own logic ----------------------------------------------------------------------


def test_the_delayer_keeps_packets_in_order_whatever_the_jitter():
    delayer = Delayer.__new__(Delayer)
    delayer.delay_s, delayer.jitter_s, delayer.last_due = 0.1, 0.05, 0.0
    import random

    delayer.rng = random.Random(1)
    dues = [delayer.due(arrived) for arrived in (0.0, 0.001, 0.002, 0.003, 0.5)]
    assert dues == sorted(dues) and 0.05 <= dues[0] <= 0.15


def test_packet_ids_are_read_from_a_queue_notification():
    import struct

    attr = struct.pack("=HH", 4 + 7, 1) + struct.pack("!IHB", 4242, 0x0800, 3) + b"\0"
    body = struct.pack("=BBH", 2, 0, 0) + attr
    notice = struct.pack("=IHHII", 16 + len(body), 3 << 8, 0, 0, 0) + body
    assert packet_ids(notice + notice) == [4242, 4242]
