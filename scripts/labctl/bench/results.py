"""What the bench measures, as typed records: built phase by phase, saved once as JSON at the end."""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from labctl.bench.pieces import ServicePieces
from labctl.processes import CpuSnapshot, ProcessMemory, ms_per_op

# the process groups a POST's CPU is reported by: (kind in the launcher's state, label)
GROUPS = (("facade", "facade"), ("member", "members"), ("logging", "logging"), ("messages", "messages"),
          ("config-server", "config-server"), ("broker", "brokers"))  # brokers: Kafka mode only


def percentile(values: Sequence[float], q: float) -> float | None:
    """The q-th percentile (0-100), interpolating linearly between the closest ranks; None if empty."""
    if not values:
        return None
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 3)


@dataclass(frozen=True)
class Latency:
    """Count, p50/p95/p99, mean and max, in milliseconds."""

    count: int
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None
    mean_ms: float | None
    max_ms: float | None

    @classmethod
    def of(cls, seconds: Sequence[float]) -> Latency:
        return cls(count=len(seconds), p50_ms=_ms(percentile(seconds, 50)), p95_ms=_ms(percentile(seconds, 95)),
                   p99_ms=_ms(percentile(seconds, 99)), mean_ms=_ms(sum(seconds) / len(seconds)) if seconds else None,
                   max_ms=_ms(max(seconds)) if seconds else None)


@dataclass(frozen=True)
class CpuUse:
    """CPU per acknowledged message by process and by kind, the bench's own, and what the machine did."""

    window_s: float
    ms_per_msg: dict[str, float | None]
    ms_per_msg_by_kind: dict[str, float]
    total_ms_per_msg: float | None
    bench_ms_per_msg: float | None
    system_cores: float | None
    bench_cores: float | None
    machine_busy_cores: float | None
    others_cores: float | None

    @classmethod
    def between(cls, before: CpuSnapshot, after: CpuSnapshot, acknowledged: int, kinds: Mapping[str, str],
                clock_ticks: int) -> CpuUse:
        per_process = {name: ms_per_op(after.trees[name] - before.trees.get(name, after.trees[name]), acknowledged,
                                       clock_ticks)
                       for name in after.trees}
        wall = after.at - before.at
        system_s = sum(after.trees[n] - before.trees.get(n, after.trees[n]) for n in after.trees) / clock_ticks
        bench_s = after.bench_s - before.bench_s
        machine_s = (after.machine[0] - before.machine[0]) / clock_ticks
        per_kind: dict[str, float] = defaultdict(float)
        for name, value in per_process.items():
            per_kind[kinds[name]] += value or 0.0

        def per_message(seconds: float) -> float | None:
            return round(seconds * 1000 / acknowledged, 4) if acknowledged else None

        def cores(seconds: float) -> float | None:
            return round(seconds / wall, 3) if wall else None

        return cls(window_s=round(wall, 3), ms_per_msg=per_process,
                   ms_per_msg_by_kind={k: round(v, 4) for k, v in per_kind.items()},
                   total_ms_per_msg=per_message(system_s), bench_ms_per_msg=per_message(bench_s),
                   system_cores=cores(system_s), bench_cores=cores(bench_s), machine_busy_cores=cores(machine_s),
                   others_cores=cores(max(0.0, machine_s - system_s - bench_s)))

    def group_ms(self, kind: str) -> float | None:
        return self.ms_per_msg_by_kind.get(kind)


def _weighted(pairs: Sequence[tuple[float | None, float]]) -> float | None:
    """The weighted mean of the values that were measured; None if none was."""
    known = [(v, w) for v, w in pairs if v is not None and w > 0]
    total = sum(w for _, w in known)
    return round(sum(v * w for v, w in known) / total, 4) if total else None


@dataclass(frozen=True)
class PostLevel:
    """One run of `clients` keep-alive clients POSTing for a while."""

    clients: int
    seconds: float
    acknowledged: int
    failures: dict[str, int]
    throughput: float
    latency: Latency
    stored_before: int
    queue_drained_after_s: float | None  # None: not within the wait, or the copies' /health was unreadable
    cpu: CpuUse
    latencies_ms: list[float] = field(default_factory=list)
    round: int = 1  # of an A/B comparison; 0: every round's run of this level as one
    consumer_batch: float | None = None  # messages per consumer transaction during the level, if told
    status_reads: int | None = None  # with --status-page: /status.json answers read during the level (200s)

    @property
    def failed(self) -> int:
        return sum(self.failures.values())


def merge_levels(levels: Sequence[PostLevel]) -> PostLevel:
    """Rounds of the same level as one: counts summed, latencies pooled, CPU weighted by what each acknowledged."""
    first = levels[0]
    if len(levels) == 1:
        return first
    seconds = sum(lv.seconds for lv in levels)
    acknowledged = sum(lv.acknowledged for lv in levels)
    failures: dict[str, int] = defaultdict(int)
    for lv in levels:
        for reason, n in lv.failures.items():
            failures[reason] += n
    latencies = [ms for lv in levels for ms in lv.latencies_ms]
    drains = [lv.queue_drained_after_s for lv in levels]
    by_ack = [(lv.cpu, lv.acknowledged) for lv in levels]
    by_window = [(lv.cpu, lv.cpu.window_s) for lv in levels]
    names = list(dict.fromkeys(n for lv in levels for n in lv.cpu.ms_per_msg))
    kinds = list(dict.fromkeys(k for lv in levels for k in lv.cpu.ms_per_msg_by_kind))
    cpu = CpuUse(
        window_s=round(sum(c.window_s for c, _ in by_window), 3),
        ms_per_msg={n: _weighted([(c.ms_per_msg.get(n), w) for c, w in by_ack]) for n in names},
        ms_per_msg_by_kind={k: _weighted([(c.ms_per_msg_by_kind.get(k), w) for c, w in by_ack]) or 0.0
                            for k in kinds},
        total_ms_per_msg=_weighted([(c.total_ms_per_msg, w) for c, w in by_ack]),
        bench_ms_per_msg=_weighted([(c.bench_ms_per_msg, w) for c, w in by_ack]),
        system_cores=_weighted([(c.system_cores, w) for c, w in by_window]),
        bench_cores=_weighted([(c.bench_cores, w) for c, w in by_window]),
        machine_busy_cores=_weighted([(c.machine_busy_cores, w) for c, w in by_window]),
        others_cores=_weighted([(c.others_cores, w) for c, w in by_window]),
    )
    return PostLevel(clients=first.clients, seconds=round(seconds, 3), acknowledged=acknowledged,
                     failures=dict(failures), throughput=round(acknowledged / seconds, 1) if seconds else 0.0,
                     latency=Latency.of([ms / 1000 for ms in latencies]), stored_before=first.stored_before,
                     queue_drained_after_s=None if None in drains else max(drains), cpu=cpu, latencies_ms=latencies,
                     round=0, consumer_batch=_weighted([(lv.consumer_batch, lv.acknowledged) for lv in levels]))


@dataclass(frozen=True)
class Gets:
    """Sequential GETs of one URL."""

    url: str
    latency: Latency
    latencies_ms: list[float]
    statuses: dict[str, int]  # "200", "503", or the exception's name
    failed: int
    bytes: int | None
    messages_returned: int | None


@dataclass(frozen=True)
class Fill:
    start: int
    posted: int = 0
    failures: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    throughput: float | None = None
    latency: Latency | None = None
    reached: bool = True
    queue_drained_after_s: float | None = None


@dataclass(frozen=True)
class GetCost:
    size: int
    stored: int | None = None
    fill: Fill | None = None
    full: Gets | None = None
    logging_paged: Gets | None = None
    facade_paged: Gets | None = None
    skipped: str = ""


@dataclass(frozen=True)
class FacadePaging:
    supported: bool
    note: str


@dataclass(frozen=True)
class QueueLatency:
    samples: int
    warmup: int
    latency: Latency
    lower_bound: Latency
    poll_rtt: Latency
    latencies_ms: list[float]
    missing: int
    failures: dict[str, int]
    seen_at: dict[str, int]  # which copy showed it first, by name


@dataclass(frozen=True)
class Startup:
    seconds: float | None
    healthy_after_s: dict[str, float] = field(default_factory=dict)
    skipped: str = ""


@dataclass(frozen=True)
class IdleCpu:
    window_s: float
    ms_per_s: dict[str, float]


@dataclass(frozen=True)
class FloorPart:
    """One part of a POST measured alone: CPU per operation, and who spent it."""

    part: str  # a key of floor.PARTS
    ops: int
    seconds: float
    ms_per_op: dict[str, float | None]  # by payer: "server", "caller", "client", "member-1", ...
    batch: int | None = None  # queue items per consumer transaction
    error: str = ""
    cpu_ms_per_op: float | None = field(init=False)  # every payer's share summed

    def __post_init__(self):
        values = [v for v in self.ms_per_op.values() if v is not None]
        object.__setattr__(self, "cpu_ms_per_op", round(sum(values), 4) if values and self.ops > 0 else None)


@dataclass(frozen=True)
class FloorSum:
    ms: float | None  # None when a part it needs was not measured
    terms: list[tuple[str, int, float | None]]  # (part label, times, ms per op)
    batch: float | None  # the consumer batch size the consumer's share was taken at
    batch_note: str


@dataclass(frozen=True)
class Floor:
    callers: int
    seconds_per_part: float
    wall_s: float
    parts: list[FloorPart]


@dataclass(frozen=True)
class SlowClientLevel:
    """A POST level run while slow clients hold connections to the facade open."""

    slow_clients: int
    opened: int  # connections the facade accepted
    still_open_at_end: int  # not closed by the facade by the end of the level
    level: PostLevel
    plain_throughput: float | None  # the same client count without slow clients, just before
    reopened: int = 0  # slow connections opened again in place of ones the facade closed
    percent_of_plain: float | None = field(init=False)

    def __post_init__(self):
        percent = round(self.level.throughput * 100 / self.plain_throughput, 1) if self.plain_throughput else None
        object.__setattr__(self, "percent_of_plain", percent)


@dataclass(frozen=True)
class Comparison:
    """A/B: the POST levels alternated between another checkout's system (A) and this one's (B); with
    --transports, between two systems of this checkout that differ in how the facade calls logging; with
    --queues, in the channel facade -> messages (then A's queue latency is measured too)."""

    against: str
    a_commit: str
    a_uncommitted: list[str]
    rounds: int
    a_stored_before: int
    a_levels: list[PostLevel]  # every round
    b_levels: list[PostLevel]
    transports: list[str] = field(default_factory=list)  # A's and B's with --transports, else empty
    queues: list[str] = field(default_factory=list)  # A's and B's with --queues, else empty
    a_queue_latency: QueueLatency | None = None  # with --queues: A's, measured as B's is

    @property
    def b_label(self) -> str:
        if self.transports:
            return f"this checkout, --transport {self.transports[1]}"
        if self.queues:
            return f"this checkout, --queue {self.queues[1]}"
        return "this checkout"

    def merged(self, side: str) -> dict[int, PostLevel]:
        levels = self.a_levels if side == "A" else self.b_levels
        by_clients: dict[int, list[PostLevel]] = defaultdict(list)
        for level in levels:
            by_clients[level.clients].append(level)
        return {clients: merge_levels(runs) for clients, runs in by_clients.items()}


@dataclass(frozen=True)
class MemberOpCount:
    operation: str  # the class, as Hazelcast's operation profiler names it
    kind: str  # "client task", "operation" or "backup" (member_ops.operation_kind)
    count: int  # run in the window, the members summed
    per_post: float | None  # per acknowledged POST


@dataclass(frozen=True)
class MemberOps:
    """The operations the members ran around one POST level, by class, from each member's operation
    profiler dumps before the level and after its queue drained (labctl.bench.member_ops)."""

    clients: int
    acknowledged: int
    load_s: float
    window_s: float | None  # from the earliest dump before to the latest after: the load, the drain and a bit
    period_s: int  # between two dumps of a member
    queue_drained: bool  # False: what the consumers had still to do is missing
    by_member: dict[str, int]  # operations each member ran in the window, every kind
    operations: list[MemberOpCount]  # most first
    error: str = ""  # a member left out, and why
    per_post: float | None = field(init=False)  # every kind summed
    per_post_by_kind: dict[str, float] = field(init=False)

    def __post_init__(self):
        by_kind: dict[str, int] = defaultdict(int)
        for op in self.operations:
            by_kind[op.kind] += op.count
        ack = self.acknowledged
        object.__setattr__(self, "per_post", round(sum(by_kind.values()) / ack, 4) if ack else None)
        object.__setattr__(self, "per_post_by_kind", {k: round(n / ack, 4) for k, n in by_kind.items()} if ack else {})


@dataclass
class BenchResults:
    """Everything one run measured; phases fill it in, and it is saved once (dataclasses.asdict)."""

    command: list[str]
    started_at: str
    mode: str
    plan: dict
    machine: dict
    load_before: list[float]
    completed: bool = False
    finished_at: str = ""
    load_after: list[float] = field(default_factory=list)
    system: dict = field(default_factory=dict)
    startup: Startup | None = None
    stored_at_start: int | None = None
    idle_cpu: IdleCpu | None = None
    floor: Floor | None = None
    floor_sum: FloorSum | None = None
    pieces: list[ServicePieces] = field(default_factory=list)
    queue_latency: QueueLatency | None = None
    get_cost: list[GetCost] = field(default_factory=list)
    facade_paging: FacadePaging | None = None
    post: list[PostLevel] = field(default_factory=list)
    comparison: Comparison | None = None
    slow_clients: SlowClientLevel | None = None
    member_ops: MemberOps | None = None
    memory: dict[str, ProcessMemory] = field(default_factory=dict)
    bench_peak_rss_kb: int = 0
    targets: list[dict] = field(default_factory=list)

    def level(self, clients: int) -> PostLevel | None:
        return next((lv for lv in self.post if lv.clients == clients), None)

    def size(self, size: int) -> GetCost | None:
        return next((s for s in self.get_cost if s.size == size and not s.skipped), None)
