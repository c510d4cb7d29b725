"""The targets the bench judges a run by: one definition each, read by the tables and the chart."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from labctl.bench.results import BenchResults
from labctl.processes import ProcessMemory

PYTHON_KINDS = ("config-server", "logging", "messages", "facade")


# figures of the same run that a target's limit may be a multiple of
REFERENCES = {"floor_sum": ("the floor sum", "--floor"), "a_throughput_32": ("A's", "--against")}


@dataclass(frozen=True)
class Target:
    key: str
    what: str
    limit: float
    unit: str
    at_least: bool = False  # a floor (throughput) rather than a ceiling
    of: str = ""  # a key of REFERENCES: the limit is `limit` times that figure

    def limit_in(self, references: Mapping[str, float | None]) -> float | None:
        if not self.of:
            return self.limit
        reference = references.get(self.of)
        return None if reference is None else self.limit * reference

    def describe(self, references: Mapping[str, float | None] | None = None) -> str:
        sign = ">=" if self.at_least else "<="
        unit = f" {self.unit}" if self.unit else ""
        if not self.of:
            return f"{sign} {self.limit:g}{unit}"
        limit = self.limit_in(references or {})
        return f"{sign} {self.limit:g} x {REFERENCES[self.of][0]}" + (f" ({limit:.3g}{unit})" if limit else "")

    def met(self, measured: float | None, references: Mapping[str, float | None] | None = None) -> str:
        if measured is None:
            return "not measured"
        limit = self.limit_in(references or {})
        if limit is None:
            return f"no verdict (without {REFERENCES[self.of][1]})"
        return "yes" if (measured >= limit if self.at_least else measured <= limit) else "NO"


TARGETS = (
    Target("post_throughput_32", "POST acknowledged at 32 clients", 3, "msg/s", at_least=True, of="a_throughput_32"),
    Target("post_p99_32", "POST p99 at 32 clients", 150, "ms"),
    Target("post_failures_32", "POST failures at 32 clients", 0, ""),
    Target("cpu_per_post_32", "total CPU per acknowledged POST (32 clients)", 1.5, "ms", of="floor_sum"),
    Target("slow_clients_share", "POST throughput at 32 clients with the slow clients, % of without", 80, "%",
           at_least=True),
    Target("queue_p50", "queue latency p50, 201 -> visible in a messages copy", 20, "ms"),
    Target("paged_p50_100k", "paged GET first page (100) p50, 100k stored", 20, "ms"),
    Target("full_get_p50_10k", "full GET /facade p50, 10k stored", 250, "ms"),
    Target("startup", "launch -> all healthy", 30, "s"),
    Target("python_rss", "peak RSS of each Python service (worst)", 100, "MB"),
)
TARGET_BY_KEY = {t.key: t for t in TARGETS}
TARGETS_TITLE = "Targets (throughput and CPU against the floor and the seed system; latency, reads, start-up, memory)"


def reference_figures(results: BenchResults) -> dict[str, float | None]:
    """The figures of this run that relative targets are multiples of. A's throughput is one only when A is
    another checkout (the target compares code with code), not this one with another transport or queue."""
    against_code = results.comparison and not (results.comparison.transports or results.comparison.queues)
    a_at_32 = results.comparison.merged("A").get(32) if against_code else None
    return {"floor_sum": results.floor_sum.ms if results.floor_sum else None,
            "a_throughput_32": a_at_32.throughput if a_at_32 else None}


def python_service_peaks_mb(memory: Mapping[str, ProcessMemory]) -> dict[str, float | None]:
    """Each Python service's peak in MB: its server worker's peak RSS plus what its master holds on its
    own (see ProcessMemory.service_peak_kb)."""
    peaks = {}
    for name, entry in memory.items():
        if entry.kind in PYTHON_KINDS:
            kb = entry.service_peak_kb()
            peaks[name] = round(kb / 1024, 1) if kb else None
    return peaks


def measured_figures(results: BenchResults) -> dict[str, float | None]:
    """The figure each target is judged on, None where it was not measured."""
    at32 = results.level(32)
    at10k, at100k = results.size(10_000), results.size(100_000)
    paged_100k = None
    if at100k:
        paged = at100k.facade_paged or at100k.logging_paged
        paged_100k = paged.latency.p50_ms if paged else None
    peaks = [v for v in python_service_peaks_mb(results.memory).values() if v is not None]
    return {
        "post_throughput_32": at32.throughput if at32 else None,
        "post_p99_32": at32.latency.p99_ms if at32 else None,
        "post_failures_32": at32.failed if at32 else None,
        "cpu_per_post_32": at32.cpu.total_ms_per_msg if at32 else None,
        "slow_clients_share": results.slow_clients.percent_of_plain if results.slow_clients else None,
        "queue_p50": results.queue_latency.latency.p50_ms if results.queue_latency else None,
        "paged_p50_100k": paged_100k,
        "full_get_p50_10k": at10k.full.latency.p50_ms if at10k and at10k.full else None,
        "startup": results.startup.seconds if results.startup else None,
        "python_rss": max(peaks) if peaks else None,
    }


def fmt(value: float | int | None, digits: int = 1) -> str:
    if value is None:
        return "-"
    return str(value) if isinstance(value, int) else f"{value:.{digits}f}"


def target_rows(results: BenchResults) -> list[tuple[str, str, str, str]]:
    """(what, measured, target, met) for every target."""
    figures, references = measured_figures(results), reference_figures(results)
    return [(t.what, fmt(figures[t.key], 2), t.describe(references), t.met(figures[t.key], references))
            for t in TARGETS]
