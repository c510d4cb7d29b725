"""labctl bench: what the system costs and how fast it answers, on this machine.

Measures POST throughput and latency at several client counts, the CPU each process spends per
acknowledged POST (psutil, from /proc), the queue's end-to-end latency, the cost of GET as data grows, the
start-up time and each process's peak memory; on request the floor (each part of a POST alone), an
A/B run against another checkout, and the facade's throughput while slow clients hold connections.
Prints tables, saves JSON and a PNG chart.

The load generator runs on the same cores as the system it measures: its own CPU is measured and
reported apart from the system's, and so is what the rest of the machine did meanwhile.

Shared with the other tools: labctl.processes (CPU and memory of process trees), labctl.load (the POST
client), labctl.probe (/health). Modules: load (the load clients), systems (the systems measured), run (the
phases), floor and floor_worker (the floor's parts), results (what they measure), targets, report
(tables), chart, command (the CLI glue).
"""

from labctl.bench.command import add_arguments, run_bench

__all__ = ["add_arguments", "run_bench"]
