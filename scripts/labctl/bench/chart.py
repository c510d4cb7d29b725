"""The PNG chart: throughput and latency per client count, and CPU per message by kind, with the
targets drawn from the same definitions as the tables."""

from __future__ import annotations

from pathlib import Path

from labctl.bench.results import BenchResults
from labctl.bench.targets import TARGET_BY_KEY, reference_figures

TARGET_COLOUR = "#C44E52"


def save_chart(results: BenchResults, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    levels = results.post
    clients = [str(lv.clients) for lv in levels]
    figure, (thr_ax, lat_ax, cpu_ax) = plt.subplots(1, 3, figsize=(16, 5.2), dpi=100)

    references = reference_figures(results)
    thr = TARGET_BY_KEY["post_throughput_32"]
    thr_ax.bar(clients, [lv.throughput for lv in levels], color="#4C72B0", label="B: " + results.comparison.b_label
               if results.comparison else "this checkout")
    if results.comparison:
        a_levels = results.comparison.merged("A")
        thr_ax.plot(clients, [a_levels[lv.clients].throughput if lv.clients in a_levels else float("nan")
                              for lv in levels], "D", color="#DD8452", label="A: " + results.comparison.against)
    if thr.limit_in(references) is not None:
        thr_ax.axhline(thr.limit_in(references), color=TARGET_COLOUR, linestyle="--",
                       label=f"target at 32 clients: {thr.describe(references)}")
    thr_ax.set(title="POST throughput (acknowledged)", xlabel="concurrent keep-alive clients", ylabel="msg/s")
    thr_ax.legend(loc="upper left", fontsize=8)
    for x, lv in zip(clients, levels, strict=True):
        thr_ax.annotate(f"{lv.throughput:.0f}", (x, lv.throughput), ha="center", va="bottom", fontsize=9)

    p99 = TARGET_BY_KEY["post_p99_32"]
    for q in ("p50", "p95", "p99"):
        lat_ax.plot(clients, [getattr(lv.latency, f"{q}_ms") or 0 for lv in levels],
                    {"p50": "o-", "p95": "s-", "p99": "^-"}[q], label=q)
    lat_ax.axhline(p99.limit_in(references), color=TARGET_COLOUR, linestyle="--",
                   label=f"p99 target: {p99.describe(references)}")
    lat_ax.set(title="POST latency", xlabel="concurrent keep-alive clients", ylabel="ms")
    lat_ax.set_ylim(bottom=0)
    lat_ax.legend(fontsize=8)

    cpu = TARGET_BY_KEY["cpu_per_post_32"]
    bottom = [0.0] * len(levels)
    for kind in sorted({k for lv in levels for k in lv.cpu.ms_per_msg_by_kind}):
        values = [lv.cpu.ms_per_msg_by_kind.get(kind, 0.0) for lv in levels]
        cpu_ax.bar(clients, values, bottom=bottom, label=kind)
        bottom = [b + v for b, v in zip(bottom, values, strict=True)]
    cpu_ax.plot(clients, [lv.cpu.bench_ms_per_msg or 0 for lv in levels], "kx--", label="load generator")
    if cpu.limit_in(references) is not None:
        cpu_ax.axhline(cpu.limit_in(references), color=TARGET_COLOUR, linestyle="--",
                       label=f"target: {cpu.describe(references)}")
    cpu_ax.set(title="CPU per acknowledged POST", xlabel="concurrent keep-alive clients", ylabel="CPU ms / message")
    cpu_ax.legend(fontsize=8)

    machine = results.machine
    after = results.load_after or [float("nan")]
    figure.suptitle(f"facade-lab bench, {results.started_at[:16]} UTC, {machine.get('nproc')} cores "
                    f"({machine.get('cpu_model', '')}), {levels[0].stored_before if levels else 0}+ messages "
                    f"stored; load average before {results.load_before[0]:.2f}, after {after[0]:.2f}",
                    fontsize=10)
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)
