"""`labctl net`: cut, slow down or make lossy the links between the hosts of a system started with --hosts."""

from __future__ import annotations

import argparse

from labctl.launcher import System
from labctl.netfaults.control import NetFaults
from labctl.netfaults.rules import Faults, parse_ms, parse_percent, parse_sides
from labctl.table import render


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="net_command", required=True, metavar="ACTION")
    p = sub.add_parser("partition", help="cut every link between two sides, both ways (replaces a partition in "
                                         "place); a host on neither side keeps both; the edge (facade, config "
                                         "server) stays with the larger side")
    p.add_argument("sides", nargs="+", metavar="SIDE",
                   help="two comma lists of hosts: host1 host2,host3 (or host1 '|' host2,host3)")
    sub.add_parser("heal", help="remove every cut, delay and loss")
    p = sub.add_parser("delay", help="hold every packet HOST sends for DELAY (one way: a round trip between HOST "
                                     "and any other host gains DELAY once); 0ms removes it")
    p.add_argument("host", metavar="HOST")
    p.add_argument("delay", metavar="DELAY", help="e.g. 50ms or 0.1s")
    p.add_argument("--jitter", default="0ms", help="each packet's delay drawn uniformly in DELAY ± JITTER; "
                                                   "packets keep their order (default 0ms)")
    p = sub.add_parser("loss", help="drop PERCENT of the packets HOST sends, at random; 0%% removes it")
    p.add_argument("host", metavar="HOST")
    p.add_argument("percent", metavar="PERCENT", help="e.g. 10%%")
    sub.add_parser("status", help="what is cut, slowed or lossy now")


def status_text(net: NetFaults, faults: Faults | None = None) -> str:
    faults = faults if faults is not None else net.faults()
    running = net.delayers_running()
    rows = []
    for host in net.net.names:
        delay = faults.delays.get(host)
        slowed = "-" if delay is None else delay.describe() + ("" if running.get(host) else " (delayer NOT running)")
        loss = faults.losses.get(host)
        rows.append((host, net.net.address(host), net.net.namespace(host), ", ".join(faults.cut_from(host)) or "-",
                     slowed, f"{loss:g}%" if loss else "-"))
    table = render(["HOST", "ADDRESS", "NAMESPACE", "CUT FROM", "DELAY (OUT)", "LOSS (OUT)"], rows)
    edge_cut = faults.edge_cut_from()
    if faults.sides:
        a, b = faults.sides
        side = "both sides" if not edge_cut else ",".join(b if edge_cut == list(a) else a)
        partition = f"partition: {','.join(a)} | {','.join(b)}; the edge is with {side}"
    else:
        partition = "no partition"
    seen = [h for h in net.net.names if h not in edge_cut]
    edge = (f"edge (the machine: facade, config server) {net.net.edge_address}: reaches "
            f"{', '.join(seen) or 'no host'}" + (f"; cut from {', '.join(edge_cut)}" if edge_cut else ""))
    return "\n".join([table, "", partition, edge])


def run_net(args, out) -> int:
    net = NetFaults(System(args.run_dir))
    action = args.net_command
    if action == "partition":
        faults = net.partition(parse_sides(args.sides, net.net.names))
    elif action == "heal":
        faults = net.heal()
    elif action == "delay":
        faults = net.delay(args.host, parse_ms(args.delay, "delay"), parse_ms(args.jitter, "jitter"))
    elif action == "loss":
        faults = net.loss(args.host, parse_percent(args.percent))
    else:
        faults = None
    out(status_text(net, faults))
    return 0
