"""The printed report: one table per figure, then the targets."""

from __future__ import annotations

from labctl.bench.floor import PARTS, who_pays
from labctl.bench.results import GROUPS, BenchResults, PostLevel
from labctl.bench.targets import (
    TARGET_BY_KEY,
    TARGETS_TITLE,
    fmt,
    python_service_peaks_mb,
    reference_figures,
    target_rows,
)
from labctl.table import render


def _drain_cell(level: PostLevel) -> str:
    return "> 30" if level.queue_drained_after_s is None else fmt(level.queue_drained_after_s)


def report_tables(results: BenchResults) -> list[str]:
    sections = []
    if results.startup and results.startup.seconds is not None:
        sections.append(startup_table(results))
    elif results.startup and results.startup.skipped:
        sections.append(f"Start-up: {results.startup.skipped}")
    if results.floor:
        sections.append(floor_table(results))
    if results.pieces:
        sections.append(pieces_table(results))
    if results.post:
        sections.append(post_table(results))
        sections.append(cpu_table(results))
    if results.comparison:
        sections.append(comparison_table(results))
    if results.slow_clients:
        sections.append(slow_clients_table(results))
    if results.member_ops:
        sections.append(member_ops_table(results))
    if results.queue_latency:
        sections.append(queue_table(results))
    if results.comparison and results.comparison.a_queue_latency:
        sections.append(queue_comparison_table(results))
    if results.get_cost:
        sections.append(get_table(results))
    if results.memory:
        sections.append(memory_table(results))
    if results.post or results.queue_latency:
        sections.append(TARGETS_TITLE + "\n" + render(["WHAT", "MEASURED", "TARGET", "MET"], target_rows(results)))
    return sections


def startup_table(results: BenchResults) -> str:
    startup = results.startup
    rows = sorted(startup.healthy_after_s.items(), key=lambda kv: kv[1])
    target = TARGET_BY_KEY["startup"]
    return ("Start-up: seconds from launch until each process answered healthy\n"
            + render(["PROCESS", "HEALTHY AFTER (s)"],
                     [(n, fmt(s)) for n, s in rows] + [("all healthy", fmt(startup.seconds))])
            + f"\nall healthy: {fmt(startup.seconds)} s   TARGET {target.describe()}   MET "
              f"{target.met(startup.seconds)}")


def post_table(results: BenchResults) -> str:
    references = reference_figures(results)
    judged = [(TARGET_BY_KEY[key], name, figure) for key, name, figure in
              (("post_throughput_32", "msg/s", lambda lv: lv.throughput),
               ("post_p99_32", "p99", lambda lv: lv.latency.p99_ms),
               ("post_failures_32", "failed", lambda lv: lv.failed))
              if TARGET_BY_KEY[key].limit_in(references) is not None]  # the throughput target needs A
    target_text = ", ".join(f"{name} {t.describe(references)}" for t, name, _ in judged)
    floor_ms = references["floor_sum"]
    rows = []
    for level in results.post:
        lat = level.latency
        at32 = level.clients == 32
        met = "-"
        if at32:
            met = "yes" if all(t.met(figure(level), references) == "yes" for t, _, figure in judged) else "NO"
        rows.append((level.clients, fmt(level.seconds), level.acknowledged, level.failed, fmt(level.throughput),
                     fmt(lat.p50_ms), fmt(lat.p95_ms), fmt(lat.p99_ms), fmt(lat.max_ms), _drain_cell(level),
                     fmt(level.consumer_batch), *group_cells(level, floor_ms), fmt(level.cpu.bench_cores, 2),
                     fmt(level.cpu.others_cores, 2),
                     target_text if at32 else "", met))
    text = (f"POST /facade (keep-alive clients, {results.post[0].stored_before}+ messages stored)\n"
            + render(["CLIENTS", "SECONDS", "ACKED", "FAILED", "MSG/S", "P50 ms", "P95 ms", "P99 ms", "MAX ms",
                      "QUEUE DRAINED s", "BATCH", *GROUP_HEADERS, "LOADGEN CORES", "OTHER CORES", "TARGET", "MET"],
                     rows)
            + "\nQUEUE DRAINED: seconds after the load until the messages copies had received every "
              "acknowledged POST (> 30: not within 30 s, or the copies' /health could not be read)"
            + "\nBATCH: messages per consumer transaction during the level (from the copies' /health)"
            + "\nFACADE ... TOTAL: CPU ms per acknowledged POST by process group; x FLOOR: the total over the floor "
              "sum" + (f" ({floor_ms:.3f} ms)" if floor_ms else " (not measured: --floor)"))
    failures = {lv.clients: lv.failures for lv in results.post if lv.failures}
    if failures:
        text += "\nfailures: " + "; ".join(f"{c} clients: {f}" for c, f in failures.items())
    return text


GROUP_HEADERS = [f"{label.split('-')[0].upper()} ms" for _, label in GROUPS] + ["TOTAL ms", "x FLOOR"]


def group_cells(level: PostLevel, floor_ms: float | None) -> list[str]:
    """CPU ms per acknowledged POST of each process group, the total, and the total over the floor sum."""
    total = level.cpu.total_ms_per_msg
    return ([fmt(level.cpu.group_ms(kind), 2) for kind, _ in GROUPS] + [fmt(total, 2)]
            + [fmt(total / floor_ms, 2) if total is not None and floor_ms else "-"])


def pieces_table(results: BenchResults) -> str:
    rows = []
    for service in results.pieces:
        rows.append((service.service, "all threads of the process", fmt(service.process_ms, 3)))
        rows.append(("", "  other threads (the Hazelcast client's reactor...)",
                     fmt(service.process_ms - service.handler_ms, 3)))
        rows.append(("", "  the request's thread", fmt(service.handler_ms, 3)))
        rows += [("", f"    {piece.name}", fmt(piece.ms_per_request, 3)) for piece in service.pieces]
        rows.append(("", "    rest of the handler (Flask, parsing, the answer)", fmt(service.rest_ms, 3)))
    return ("Where a request's CPU goes: each service's real app in-process, one request at a time through "
            "Flask's test client\n(thread CPU time around each call to a port; no HTTP server: serving is the "
            "floor's Flask figure)\n" + render(["SERVICE", "PIECE", "CPU ms/request"], rows))


def floor_table(results: BenchResults) -> str:
    floor = results.floor
    rows = [(PARTS.get(p.part, p.part) + (f", batch {p.batch}" if p.batch else ""), p.ops, fmt(p.seconds),
             fmt(p.cpu_ms_per_op, 3), who_pays(p) or p.error) for p in floor.parts]
    text = (f"Floor: each part of a POST alone, {floor.callers} concurrent callers, CPU ms per operation "
            f"(from /proc of the processes doing the work; {floor.wall_s:.0f} s in all)\n"
            + render(["PART", "OPS", "SECONDS", "CPU ms/op", "WHO PAYS (ms/op)"], rows))
    total = results.floor_sum
    if total:
        text += ("\nfloor SUM for one POST = " + " + ".join(f"{n} x {fmt(ms, 3)} ({label})" if n > 1 else
                                                          f"{fmt(ms, 3)} ({label})" for label, n, ms in total.terms)
                 + f" = {fmt(total.ms, 3)} ms\n({total.batch_note})")
    return text


def _ratio(b: float | None, a: float | None) -> str:
    return fmt(b / a, 2) if a and b is not None else "-"


def comparison_table(results: BenchResults) -> str:
    comparison = results.comparison
    a_merged, b_merged = comparison.merged("A"), comparison.merged("B")
    by_round = {side: {} for side in "AB"}
    for side, levels in (("A", comparison.a_levels), ("B", comparison.b_levels)):
        for level in levels:
            by_round[side].setdefault(level.clients, []).append(fmt(level.throughput, 0))
    rows = []
    for clients in sorted(set(a_merged) | set(b_merged)):
        a, b = a_merged.get(clients), b_merged.get(clients)
        for side, level in (("A", a), ("B", b)):
            if level:
                cells = group_cells(level, None)[:-1]
                rows.append((clients, side, level.acknowledged, level.failed, fmt(level.throughput),
                             ", ".join(by_round[side][clients]), fmt(level.latency.p50_ms), fmt(level.latency.p99_ms),
                             *cells))
        if a and b:
            rows.append((clients, "B/A", "", "", _ratio(b.throughput, a.throughput), "",
                         _ratio(b.latency.p50_ms, a.latency.p50_ms), _ratio(b.latency.p99_ms, a.latency.p99_ms),
                         *(_ratio(b.cpu.group_ms(kind), a.cpu.group_ms(kind)) for kind, _ in GROUPS),
                         _ratio(b.cpu.total_ms_per_msg, a.cpu.total_ms_per_msg)))
    commit = results.machine.get("git_commit", "")[:7]
    uncommitted = ", with uncommitted changes" if comparison.a_uncommitted else ""
    return (f"A/B: POST /facade, A = {comparison.against} ({comparison.a_commit[:7]}{uncommitted}), "
            f"B = {comparison.b_label} ({commit}); "
            f"{comparison.rounds} rounds, level by level, A first in odd rounds\n"
            + render(["CLIENTS", "SIDE", "ACKED", "FAILED", "MSG/S", "MSG/S BY ROUND", "P50 ms", "P99 ms",
                      *GROUP_HEADERS[:-1]], rows)
            + f"\nA had {comparison.a_stored_before} messages stored before its levels; CPU in ms per acknowledged "
              "POST, every round together (the side not under load idles meanwhile, outside the other side's figures)")


def slow_clients_table(results: BenchResults) -> str:
    slow = results.slow_clients
    level = slow.level
    target = TARGET_BY_KEY["slow_clients_share"]
    return (f"POST /facade while {slow.slow_clients} slow clients hold connections open (each sends a POST's "
            "headers a byte a second, never finishing; one closed by the facade is opened again)\n"
            + render(["CLIENTS", "SLOW OPENED", "OPENED AGAIN", "OPEN AT END", "ACKED", "FAILED", "MSG/S",
                      "WITHOUT THEM MSG/S", "% OF WITHOUT", "P50 ms", "P99 ms", "TARGET", "MET"],
                     [(level.clients, slow.opened, slow.reopened, slow.still_open_at_end, level.acknowledged,
                       level.failed,
                       fmt(level.throughput), fmt(slow.plain_throughput), fmt(slow.percent_of_plain),
                       fmt(level.latency.p50_ms), fmt(level.latency.p99_ms), target.describe(),
                       target.met(slow.percent_of_plain))])
            + "\nWITHOUT THEM: the same level run just before, without slow clients"
            + (f"\nfailures: {level.failures}" if level.failures else ""))


MEMBER_OPS_SHOWN = 0.01  # per POST: rows below it are folded into one


def short_names(names: list[str]) -> dict[str, str]:
    """Each class's own name, with its package's last part where two packages hold the same name."""
    last = [name.rsplit(".", 1)[-1] for name in names]
    return {name: ".".join(name.split(".")[-2:]) if last.count(short) > 1 else short
            for name, short in zip(names, last, strict=True)}


def member_ops_table(results: BenchResults) -> str:
    ops = results.member_ops
    title = (f"Member operations per acknowledged POST at {ops.clients} clients (Hazelcast's operation profiler, "
             f"every member summed; {ops.acknowledged} POSTs in {fmt(ops.load_s)} s, profiler dumps "
             f"{fmt(ops.window_s)} s apart)")
    if ops.per_post is None:
        return f"{title}\nnot measured: {ops.error or 'no POST was acknowledged'}"
    shown = [op for op in ops.operations if op.per_post >= MEMBER_OPS_SHOWN]
    folded = [op for op in ops.operations if op.per_post < MEMBER_OPS_SHOWN]
    names = short_names([op.operation for op in ops.operations])

    def row(name: str, kind: str, per_post: float, count: int) -> tuple[str, str, str, str]:
        return name, kind, f"{per_post:.2f}", f"{count:,}"

    rows = [row(names[op.operation], op.kind, op.per_post, op.count) for op in shown]
    if folded:
        count = sum(op.count for op in folded)
        rows.append(row(f"other ({len(folded)} classes under {MEMBER_OPS_SHOWN} per POST)", "",
                        count / ops.acknowledged, count))
    rows.append(row("all member operations", "", ops.per_post, sum(op.count for op in ops.operations)))
    kinds = ", ".join(f"{kind}s {n:.2f}" for kind, n in sorted(ops.per_post_by_kind.items(), key=lambda kv: -kv[1]))
    notes = [f"per POST by kind: {kinds}",
             "client task: a client's request as a member received it (the operations it causes have rows of "
             "their own); backup: one backup copy applied",
             "the window holds whatever else the members did meanwhile (heartbeats, idle consumer polls); with "
             "the profiler on, the members' CPU figures of this run include its cost"]
    if not ops.queue_drained:
        notes.append("the queue was not seen to drain after the level (> 30 s, or the copies' /health unreadable): "
                     "operations the consumers had still to run may be missing")
    if ops.error:
        notes.append(f"left out: {ops.error}")
    return f"{title}\n" + render(["OPERATION", "KIND", "PER POST", "COUNT"], rows) + "".join(f"\n{n}" for n in notes)


def cpu_table(results: BenchResults) -> str:
    levels = results.post
    names = list(levels[0].cpu.ms_per_msg)
    idle = results.idle_cpu.ms_per_s if results.idle_cpu else {}
    target, references = TARGET_BY_KEY["cpu_per_post_32"], reference_figures(results)
    headers = ["PROCESS", "IDLE ms/s"] + [f"{lv.clients} CLIENTS" for lv in levels] + ["TARGET", "MET"]
    rows = [[name, fmt(idle.get(name), 1)] + [fmt(lv.cpu.ms_per_msg.get(name), 3) for lv in levels] + ["", ""]
            for name in names]
    at32 = results.level(32)
    rows.append(["TOTAL (system)", fmt(sum(idle.values()), 1) if idle else "-"]
                + [fmt(lv.cpu.total_ms_per_msg, 3) for lv in levels]
                + [f"{target.describe(references)} at 32",
                   target.met(at32.cpu.total_ms_per_msg if at32 else None, references)])
    rows.append(["load generator (bench)", "-"] + [fmt(lv.cpu.bench_ms_per_msg, 3) for lv in levels] + ["", ""])
    rows.append(["system cores busy", "-"] + [fmt(lv.cpu.system_cores, 2) for lv in levels] + ["", ""])
    rows.append(["rest of machine, cores", "-"] + [fmt(lv.cpu.others_cores, 2) for lv in levels] + ["", ""])
    return ("CPU milliseconds per acknowledged POST, by process (recorded pid + descendants, from /proc; "
            "window = load + queue drain)\n" + render(headers, rows))


def queue_table(results: BenchResults) -> str:
    queue = results.queue_latency
    target = TARGET_BY_KEY["queue_p50"]
    lat = queue.latency
    return ("End-to-end queue latency: 201 of the POST -> the message visible in GET /messages of a copy\n"
            + render(["SAMPLES", "SEEN", "MISSING", "P50 ms", "P99 ms", "MAX ms", "P50 LOWER BOUND ms",
                      "POLL RTT P50 ms", "TARGET", "MET"],
                     [(queue.samples, lat.count, queue.missing, fmt(lat.p50_ms), fmt(lat.p99_ms), fmt(lat.max_ms),
                       fmt(queue.lower_bound.p50_ms), fmt(queue.poll_rtt.p50_ms), f"p50 {target.describe()}",
                       target.met(lat.p50_ms))])
            + "\n(visible = the end of the poll that first showed it; the lower bound is that poll's start)")


def queue_comparison_table(results: BenchResults) -> str:
    """--queues: each channel's end-to-end latency, measured the same way on each side."""
    comparison = results.comparison
    a, b = comparison.a_queue_latency, results.queue_latency
    rows = [(side, queue, latency.samples, latency.latency.count, latency.missing, fmt(latency.latency.p50_ms),
             fmt(latency.latency.p99_ms), fmt(latency.latency.max_ms))
            for side, queue, latency in (("A", comparison.queues[0], a), ("B", comparison.queues[1], b))]
    rows.append(("B/A", "", "", "", "", _ratio(b.latency.p50_ms, a.latency.p50_ms),
                 _ratio(b.latency.p99_ms, a.latency.p99_ms), _ratio(b.latency.max_ms, a.latency.max_ms)))
    return ("Queue latency, A/B: 201 of the POST -> the message visible in GET /messages of a copy, one POST "
            "at a time on an idle system\n"
            + render(["SIDE", "QUEUE", "SAMPLES", "SEEN", "MISSING", "P50 ms", "P99 ms", "MAX ms"], rows))


def get_table(results: BenchResults) -> str:
    paged_target, full_target = TARGET_BY_KEY["paged_p50_100k"], TARGET_BY_KEY["full_get_p50_10k"]
    rows, failures = [], []
    for entry in results.get_cost:
        if entry.skipped:
            rows.append((entry.size, "-", "(skipped: " + entry.skipped + ")", "", "", "", "", "", "", "", ""))
            continue
        for figures, label, full in ((entry.full, "GET /facade", True),
                                     (entry.facade_paged, "GET /facade?limit=100", False),
                                     (entry.logging_paged, "GET /logging?limit=100", False)):
            if not figures:
                continue
            target = None
            if full and entry.size == 10_000:
                target = full_target
            elif not full and entry.size == 100_000:
                target = paged_target
            lat = figures.latency
            failed = {status: n for status, n in figures.statuses.items() if status != "200"}
            if failed:
                failures.append(f"{label} at {entry.stored}: " + ", ".join(
                    f"{n} x {'HTTP ' + s if s.isdigit() else s}" for s, n in failed.items()))
            rows.append((entry.size, entry.stored, label, lat.count, figures.failed, fmt(lat.p50_ms), fmt(lat.p95_ms),
                         fmt(lat.max_ms), fmt(figures.bytes, 0), f"p50 {target.describe()}" if target else "",
                         target.met(lat.p50_ms) if target else ""))
    notes = [results.facade_paging.note if results.facade_paging else ""] + [f"failed: {f}" for f in failures]
    return ("GET cost as data grows (sequential, one keep-alive client; percentiles of the answered ones)\n"
            + render(["SIZE", "STORED", "REQUEST", "OK", "FAILED", "P50 ms", "P95 ms", "MAX ms", "BYTES", "TARGET",
                      "MET"], rows)
            + "".join(f"\n{note}" for note in notes if note))


def memory_table(results: BenchResults) -> str:
    target = TARGET_BY_KEY["python_rss"]
    peaks = python_service_peaks_mb(results.memory)
    rows = []
    for name, entry in results.memory.items():
        own = round(entry.peak_kb / 1024, 1) if entry.peak_kb else None
        children = [round(kb / 1024, 1) for kb in entry.children_peak_kb.values() if kb]
        if name in peaks:
            rows.append((name, entry.kind, fmt(peaks[name]), fmt(own), " + ".join(fmt(c) for c in children),
                         target.describe(), target.met(peaks[name])))
        else:
            rows.append((name, entry.kind, fmt(own), fmt(own), "", "", ""))
    return ("Peak RSS (VmHWM, MB): a Python service's figure is its worker's peak plus the pages its server's\n"
            "master holds on its own (Private_Clean + Private_Dirty): each page counted once\n"
            + render(["PROCESS", "KIND", "PEAK MB", "MASTER MB", "WORKER MB", "TARGET", "MET"], rows)
            + f"\nload generator (bench) peak RSS: {results.bench_peak_rss_kb / 1024:.1f} MB")
