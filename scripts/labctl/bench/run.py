"""The phases of one bench run against a running system; each fills its part of the results."""

from __future__ import annotations

import dataclasses
import resource
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

import requests

from labctl.bench.floor import CALLERS, FloorRun, floor_sum
from labctl.bench.load import (
    REQUEST_TIMEOUT,
    SLOW_REQUEST_TIMEOUT,
    SlowClients,
    StatusPageReader,
    post_load,
    queue_latency,
    timed_gets,
)
from labctl.bench.member_ops import PROFILER_PERIOD_S, DiagnosticsLogs, ProfilerDump, member_ops_between
from labctl.bench.pieces import run_pieces
from labctl.bench.results import (
    BenchResults,
    Comparison,
    CpuUse,
    FacadePaging,
    Fill,
    GetCost,
    IdleCpu,
    Latency,
    MemberOps,
    PostLevel,
    QueueLatency,
    SlowClientLevel,
)
from labctl.bench.systems import (
    OtherCheckout,
    Side,
    consumer_batch,
    consumer_counts,
    received_total,
    wait_drained,
)
from labctl.bench.targets import fmt
from labctl.processes import CpuSnapshot, ProcessMeter

Out = Callable[[str], None]
DRAIN_TIMEOUT = 30.0
PIECES_REQUESTS = 2000  # per service, in-process
REFERENCE_CLIENTS = 32  # the level the targets judge; the slow clients and the A/B warm-up run at it too
SLOW_HEAD_START = 2.0  # seconds the slow clients drip before the level starts
SETTLE_S = 0.3  # after the queue drained, before a profiler dump counts as covering the level


@dataclass(frozen=True)
class Plan:
    levels: tuple[int, ...]
    duration_s: float
    sizes: tuple[int, ...]
    e2e_samples: int
    full_get_samples: int
    paged_get_samples: int
    idle_s: float
    fill_clients: int
    fill_budget_s: float
    floor: bool = False
    floor_seconds: float = 3.0
    floor_batches: tuple[int, ...] = (1, 10, 50)
    slow_clients: int = 0
    rounds: int = 2  # of the A/B POST levels, with another checkout to compare with
    member_ops: bool = False  # count the members' operations around the reference level
    member_ops_period_s: int = PROFILER_PERIOD_S  # between two operation-profiler dumps of a member
    status_page: bool = False  # B's POST levels run with /status.json read every second, as an open page does
    transports: tuple[str, ...] = ()  # A's and B's (--transports): both systems of this checkout
    queues: tuple[str, ...] = ()  # A's and B's (--queues): both systems of this checkout

    @property
    def reference_clients(self) -> int:
        """The level the slow clients and the member operations run at: 32, or the largest."""
        return REFERENCE_CLIENTS if REFERENCE_CLIENTS in self.levels else max(self.levels)


class Bench:
    """One benchmark run against one system; fills `results` phase by phase."""

    def __init__(self, side: Side, plan: Plan, out: Out, results: BenchResults, meter: ProcessMeter | None = None,
                 other: OtherCheckout | None = None, diagnostics: DiagnosticsLogs | None = None):
        self.side = side
        self.diagnostics = diagnostics  # the members' diagnostics logs, with --member-ops
        self.other = other
        self.plan = plan
        self.out = out
        self.results = results
        self.meter = meter or ProcessMeter()
        self.tag = uuid.uuid4().hex[:8]
        self.stored = 0
        self.fill_seconds = 0.0

    def run(self) -> None:
        self.stored = self.side.stored()
        self.results.stored_at_start = self.stored
        self.idle_cpu()
        if self.plan.floor:
            self.floor()
        self.queue_latency()
        self.get_cost()
        if self.other:
            self.compared_post_levels()
        else:
            self.results.post = [self.post_level(self.side, clients, self.stored) for clients in self.plan.levels]
        if self.plan.slow_clients:
            self.slow_clients()
        if self.results.floor:
            self.results.floor_sum = floor_sum(self.results.floor, self._batch_seen())
        self.memory()

    def idle_cpu(self) -> None:
        self.out(f"\nidle CPU for {self.plan.idle_s:g}s...")
        before = CpuSnapshot.take(self.meter, self.side.roots)
        time.sleep(self.plan.idle_s)
        after = CpuSnapshot.take(self.meter, self.side.roots)
        wall = after.at - before.at
        self.results.idle_cpu = IdleCpu(
            window_s=round(wall, 3),
            ms_per_s={n: round((after.trees[n] - before.trees[n]) * 1000 / self.meter.clock_ticks / wall, 2)
                      for n in after.trees})

    def floor(self) -> None:
        self.out(f"\nfloor: each part of a POST alone, at {CALLERS} concurrent callers:")
        self.results.floor = FloorRun(self.side, callers=CALLERS, seconds=self.plan.floor_seconds,
                                      batches=self.plan.floor_batches, out=self.out, meter=self.meter).run()
        self.out(f"  done in {self.results.floor.wall_s:.0f}s")
        if "config-server" not in self.side.processes:
            self.out("  where a request's CPU goes: skipped (it needs the config server to find logging)")
            return
        self.out(f"  where a request's CPU goes: {PIECES_REQUESTS} POSTs in-process to the facade's app, "
                 f"then to a logging copy's, one thread...")
        self.results.pieces, error = run_pieces(self.side.url("config-server"), self.side.cluster_name,
                                                self.side.member_addresses, PIECES_REQUESTS)
        if error:
            self.out(f"  where a request's CPU goes: {error}")

    def queue_latency(self) -> None:
        self.results.queue_latency, acknowledged = self.queue_latency_of(self.side)
        self.stored += acknowledged

    def queue_latency_of(self, side: Side) -> tuple[QueueLatency, int]:
        """The side's queue latency, once what it acknowledged was drained; and how many POSTs it acknowledged."""
        names = side.names("messages")
        which = f" of {side.label}" if self.other else ""
        self.out(f"\nqueue latency{which}: {self.plan.e2e_samples} sequential POSTs, polling GET /messages of "
                 f"{', '.join(names)} every ~3 ms...")
        received_before = received_total(side)
        result = queue_latency(side.facade, side.messages_urls, samples=self.plan.e2e_samples, tag=self.tag)
        seen_at = {side.name_of(url): n for url, n in result.seen_at.items()}
        acknowledged = result.warmup + self.plan.e2e_samples - sum(result.failures.values())
        if received_before is not None:
            wait_drained(side, received_before + acknowledged, DRAIN_TIMEOUT)
        return dataclasses.replace(result, seen_at=seen_at), acknowledged

    def fill(self, side: Side, stored: int, size: int) -> Fill:
        """POST through the facade, concurrently, until `size` messages are stored (bounded in time)."""
        if size <= stored:
            return Fill(start=stored)
        which = f" {side.label}" if self.other else ""
        self.out(f"\nfilling{which} to {size} stored: {size - stored} POSTs through the facade with "
                 f"{self.plan.fill_clients} clients (at most {self.plan.fill_budget_s:.0f}s in all)...")
        received_before = received_total(side)
        began = time.monotonic()
        failures: Counter = Counter()
        latencies: list[float] = []
        posted = 0
        for _ in range(3):  # failures leave it short: top up, a bounded number of times
            remaining = self.plan.fill_budget_s - self.fill_seconds
            if stored + posted >= size or remaining <= 0:
                break
            run = post_load(side.facade + "/facade", self.plan.fill_clients, seconds=remaining,
                            max_requests=size - stored - posted, tag=f"bench-fill-{self.tag}", progress=self.out)
            self.fill_seconds += run.wall_s
            posted += run.acknowledged
            failures.update(run.failures)
            latencies.extend(run.latencies)
        seconds = time.monotonic() - began
        self.out(f"  stored {stored + posted} after {seconds:.0f}s ({posted / seconds:.0f} msg/s)")
        drained = None
        if received_before is not None:
            drained = wait_drained(side, received_before + posted, 120)
        return Fill(start=stored, posted=posted, failures=dict(failures), seconds=round(seconds, 1),
                    throughput=round(posted / seconds, 1), latency=Latency.of(latencies),
                    reached=stored + posted >= size, queue_drained_after_s=drained)

    def get_cost(self) -> None:
        for size in self.plan.sizes:
            if self.stored > size:
                self.out(f"\nGET cost at {size}: skipped, {self.stored} already stored")
                self.results.get_cost.append(GetCost(size=size, skipped=f"{self.stored} already stored"))
                continue
            fill = self.fill(self.side, self.stored, size)
            self.stored += fill.posted
            if not fill.reached:
                self.out(f"  the fill did not reach {size} within its time budget: measuring at {self.stored}")
            budget = 10.0 if self.plan.full_get_samples <= 5 else 30.0
            self.out(f"GET cost with {self.stored} stored...")
            full = timed_gets(self.side.facade + "/facade", samples=self.plan.full_get_samples, budget_s=budget)
            logging_paged = timed_gets(self.side.logging + "/logging?limit=100", samples=self.plan.paged_get_samples,
                                       budget_s=15.0, timeout=REQUEST_TIMEOUT)
            paging = self._facade_paging()
            self.results.facade_paging = paging
            facade_paged = None
            if paging.supported:
                facade_paged = timed_gets(self.side.facade + "/facade?limit=100",
                                          samples=self.plan.paged_get_samples, budget_s=15.0, timeout=REQUEST_TIMEOUT)
            else:
                self.out(f"  {paging.note}")
            self.results.get_cost.append(GetCost(size=size, stored=self.stored, fill=fill, full=full,
                                                 logging_paged=logging_paged, facade_paged=facade_paged))

    def _facade_paging(self) -> FacadePaging:
        """Whether GET /facade?limit=100 answers one page; the paged figure falls back to logging's if not."""
        fallback = "paged figure is GET /logging?limit=100"
        try:
            response = requests.get(self.side.facade + "/facade?limit=100", timeout=SLOW_REQUEST_TIMEOUT)
        except requests.RequestException as err:
            return FacadePaging(False, f"GET /facade?limit=100 failed ({type(err).__name__}): {fallback}")
        if response.status_code != 200:
            return FacadePaging(False, f"GET /facade?limit=100 answers HTTP {response.status_code}: {fallback}")
        body = response.json()
        if "next" not in body or (body.get("count") or 0) > 100:
            return FacadePaging(False, f"GET /facade ignores limit: {fallback}")
        return FacadePaging(True, "GET /facade?limit=100 answers one page")

    def post_level(self, side: Side, clients: int, stored: int, *, round_number: int | None = None) -> PostLevel:
        """`clients` keep-alive clients POST for the plan's duration; CPU from before the load until the
        queue has drained. `round_number`: of an A/B comparison."""
        to = f" to {side.label} (round {round_number})" if round_number else ""
        count_ops = (self.diagnostics is not None and side is self.side and clients == self.plan.reference_clients
                     and self.results.member_ops is None)
        self.out(f"\nPOST{to} with {clients} keep-alive clients "
                 f"for {self.plan.duration_s:g}s ({stored} stored)...")
        ops_before = self._profiler_dumps(time.time()) if count_ops else None
        counts_before = consumer_counts(side)
        before = CpuSnapshot.take(self.meter, side.roots)
        page = StatusPageReader(side.facade + "/status.json").start() if self.plan.status_page and \
            side is self.side else None
        try:
            run = post_load(side.facade + "/facade", clients, seconds=self.plan.duration_s,
                            max_requests=max(1000, int(self.plan.duration_s * 5000)),
                            tag=f"bench-post-{self.tag}-{side.label}{round_number or ''}-{clients}")
        finally:
            status_reads = page.stop() if page else None
        drained = wait_drained(side, None if counts_before is None else counts_before.received + run.acknowledged,
                               DRAIN_TIMEOUT)
        after = CpuSnapshot.take(self.meter, side.roots)
        cpu = CpuUse.between(before, after, run.acknowledged, side.kinds, self.meter.clock_ticks)
        batch = consumer_batch(counts_before, consumer_counts(side))
        level = PostLevel(clients=clients, seconds=round(run.wall_s, 3), acknowledged=run.acknowledged,
                          failures=dict(run.failures), throughput=round(run.throughput, 1),
                          latency=Latency.of(run.latencies), stored_before=stored, queue_drained_after_s=drained,
                          cpu=cpu, latencies_ms=[round(s * 1000, 3) for s in run.latencies], round=round_number or 1,
                          consumer_batch=batch, status_reads=status_reads)
        if side is self.side:
            self.stored += run.acknowledged
        self.out(f"  {level.throughput:.0f} msg/s, p99 {fmt(level.latency.p99_ms)} ms, {level.failed} failed, "
                 f"{fmt(cpu.total_ms_per_msg, 2)} ms CPU/msg")
        if ops_before is not None:
            self.results.member_ops = self.member_ops(ops_before, level)
        return level

    def _profiler_dumps(self, since: float) -> dict[str, ProfilerDump | None]:
        """Each member's operation-profiler dump written at `since` or later (waits up to a few periods)."""
        return self.diagnostics.wait_for_dumps(since, timeout=3 * self.plan.member_ops_period_s + 5)

    def member_ops(self, before: dict[str, ProfilerDump | None], level: PostLevel) -> MemberOps:
        """The members' operations from the dumps before the level to the first ones written after its
        queue drained (outside the level's CPU window)."""
        self.out("  member operations: waiting for each member's next operation-profiler dump...")
        after = self._profiler_dumps(time.time() + SETTLE_S)
        ops = member_ops_between(before, after, clients=level.clients, acknowledged=level.acknowledged,
                                 load_s=level.seconds, period_s=self.plan.member_ops_period_s,
                                 queue_drained=level.queue_drained_after_s is not None)
        self.out(f"  {fmt(ops.per_post, 2)} member operations per acknowledged POST, over "
                 f"{fmt(ops.window_s)} s between the dumps" + (f" ({ops.error})" if ops.error else ""))
        return ops

    def compared_post_levels(self) -> None:
        """The POST levels alternated between A (the other checkout's system, started now and filled to as
        many stored as this one's) and B (this one's), level by level, round after round; which side goes
        first alternates between rounds. B's rounds, merged, are the results' POST levels."""
        side_a = self.other.start(self.out)
        try:
            a_stored = side_a.stored()
            a_latency = None
            if self.plan.queues:  # the channel is what differs: its latency on A too, as on B
                a_latency, acknowledged = self.queue_latency_of(side_a)
                a_stored += acknowledged
            a_stored += self.fill(side_a, a_stored, self.stored).posted
            a_stored += self.warm_up(side_a)
            self.stored += self.warm_up(self.side)
            a_stored_before = a_stored
            a_levels, b_levels = [], []
            for round_number in range(1, self.plan.rounds + 1):
                for clients in self.plan.levels:
                    order = (side_a, self.side) if round_number % 2 else (self.side, side_a)
                    for side in order:
                        stored = a_stored if side is side_a else self.stored
                        level = self.post_level(side, clients, stored, round_number=round_number)
                        if side is side_a:
                            a_stored += level.acknowledged
                            a_levels.append(level)
                        else:
                            b_levels.append(level)
            commit, uncommitted = self.other.commit()
            comparison = Comparison(against=self.other.label, a_commit=commit, a_uncommitted=uncommitted or [],
                                    rounds=self.plan.rounds, a_stored_before=a_stored_before, a_levels=a_levels,
                                    b_levels=b_levels, transports=list(self.plan.transports),
                                    queues=list(self.plan.queues), a_queue_latency=a_latency)
            self.results.comparison = comparison
            merged = comparison.merged("B")
            self.results.post = [merged[clients] for clients in self.plan.levels]
        finally:
            self.out("\nstopping A...")
            self.results.system["a"] = self.other.stop()

    def warm_up(self, side: Side) -> int:
        """One 32-client level that is not counted: a system started a moment ago (its members' JIT, its
        connections) would otherwise pay for it in the first round. Answers how many it acknowledged."""
        self.out(f"\nwarm-up of {side.label}: {REFERENCE_CLIENTS} clients for {self.plan.duration_s:g}s, uncounted...")
        received_before = received_total(side)
        run = post_load(side.facade + "/facade", REFERENCE_CLIENTS, seconds=self.plan.duration_s,
                        max_requests=max(1000, int(self.plan.duration_s * 5000)), tag=f"bench-warm-{self.tag}")
        if received_before is not None:
            wait_drained(side, received_before + run.acknowledged, DRAIN_TIMEOUT)
        return run.acknowledged

    def slow_clients(self) -> None:
        """The 32-client level again (the largest level if 32 is not one) without slow clients and then
        with them, back to back, so that both see the same system: slow clients each send a POST's
        headers a byte a second and never finish them."""
        clients = self.plan.reference_clients
        self.out(f"\nthe {clients}-client level again, without slow clients, as the measure for the next...")
        plain = self.post_level(self.side, clients, self.stored)
        self.out(f"\n{self.plan.slow_clients} slow clients (a byte a second of a POST's headers, never finished) "
                 f"hold connections to the facade open; then {clients} clients POST as before...")
        slow = SlowClients(self.side.facade + "/facade", self.plan.slow_clients).open()
        try:
            time.sleep(SLOW_HEAD_START)  # every slow connection has begun its request
            level = self.post_level(self.side, clients, self.stored)
            still_open = slow.still_open()
        finally:
            slow.close()
        result = SlowClientLevel(slow_clients=self.plan.slow_clients, opened=slow.opened,
                                 still_open_at_end=still_open, level=level, plain_throughput=plain.throughput,
                                 reopened=slow.reopened)
        self.results.slow_clients = result
        self.out(f"  {fmt(result.percent_of_plain)}% of the throughput without them; {still_open} of "
                 f"{slow.opened} slow connections open at the end ({slow.reopened} opened again after the "
                 f"facade closed them)")

    def _batch_seen(self) -> float | None:
        """Messages per consumer transaction at 32 clients (or the largest level), as the copies counted."""
        levels = [lv for lv in self.results.post if lv.consumer_batch is not None]
        if not levels:
            return None
        level = next((lv for lv in levels if lv.clients == 32), max(levels, key=lambda lv: lv.clients))
        return level.consumer_batch

    def memory(self) -> None:
        self.results.memory = self.meter.peak_memory(self.side.roots, self.side.kinds)
        self.results.bench_peak_rss_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
