"""Steps several labs share: the system's table, posting messages, who logged and who received what, reading
through the facade, and what the status page says of the members."""

from __future__ import annotations

from collections import Counter, defaultdict

from labctl.lab.framework import Result, Table
from labctl.lab.runner import HTTP_TIMEOUT, LabRun
from labctl.probe import facade_view, logging_listing, messages_listing, wait_for

SETTLE = 30.0  # seconds a step waits at most for something the system does in the background
STATS_WAIT = 20.0  # the members' statistics on the status page are read every 3 s, collected every 1 s


def words(messages: list[str]) -> str:
    """msg1 msg2 ... in their natural order, a run of three or more numbers shortened: load9-1..78."""
    numbered: dict[str, list[int]] = defaultdict(list)
    plain = []
    for text in messages:
        head = text.rstrip("0123456789")
        if head == text:
            plain.append(text)
        else:
            numbered[head].append(int(text[len(head):]))
    parts = sorted(plain)
    for head, numbers in sorted(numbered.items()):
        numbers.sort()
        run: list[int] = []
        for n in [*numbers, None]:
            if run and (n is None or n != run[-1] + 1):
                parts += [f"{head}{run[0]}..{run[-1]}"] if len(run) >= 3 else [f"{head}{k}" for k in run]
                run = []
            if n is not None:
                run.append(n)
    return " ".join(parts)


def system_table(run: LabRun) -> Result:
    """`labctl status`: every process of the lab's system, and a check that each is healthy."""
    rows = run.system.status()
    table = Table((run.t("col.name"), run.t("col.address"), run.t("col.health")),
                  [(r["name"], r["url"], run.t("word.healthy") if r["healthy"] else r["detail"]) for r in rows])
    sick = [f"{r['name']} ({r['detail']})" for r in rows if not r["healthy"]]
    run.expect(not sick, "expect.all_healthy", ", ".join(sick))
    kinds = Counter(r["kind"] for r in rows)
    return Result(table, {"members": kinds["member"], "logging": kinds["logging"], "messages": kinds["messages"],
                          "facades": kinds["facade"], "processes": len(rows)})


def post_messages(run: LabRun, texts: list[str], *, via: list[str] | None = None, field: str = "msg",
                  path: str = "/facade") -> Result:
    """POST each text through the facade (or the facades `via`, in turn); every one must be answered 201."""
    facades = [run.url(name) for name in via] if via else [run.facade]
    rows, failed, by_copy = [], [], Counter()
    for i, text in enumerate(texts):
        facade = facades[i % len(facades)]
        response = run.post(facade + path, {field: text})
        body = response.json() if response.headers.get("Content-Type", "").startswith("application/json") else {}
        logged_by = body.get("logged_by", "") if isinstance(body, dict) else ""
        by_copy[logged_by] += 1
        rows.append((text, response.status_code, str(body.get("uuid", ""))[:8] if isinstance(body, dict) else "",
                     logged_by, facade.rsplit(":", 1)[-1]))
        if response.status_code != 201:
            failed.append(f"{text}: {response.status_code} {response.text[:120]}")
    headers = (run.t("col.message"), run.t("col.status"), run.t("col.uuid"), run.t("col.logged_by"),
               run.t("col.facade_port"))
    run.expect(not failed, "expect.all_201", "; ".join(failed), count=len(texts))
    spread = ", ".join(f"{copy} {n}" for copy, n in sorted(by_copy.items()))
    return Result(Table(headers, rows), {"count": len(texts), "spread": spread, "copies": len(by_copy)})


def logged_by_copy(run: LabRun, expected: dict[str, str]) -> Result:
    """GET /logging: which logging copy logged which of `expected` (uuid -> msg), and how the map's entries
    spread over the members (their own statistics, as the status page shows them)."""
    listing = logging_listing(run.url(run.system.names("logging")[0]), HTTP_TIMEOUT, run.http)
    mine = [e for e in listing.entries if e.uuid in expected]
    seen = Counter(e.uuid for e in mine)
    by_copy: dict[str, list[str]] = defaultdict(list)
    for entry in mine:
        by_copy[entry.logged_by or "?"].append(entry.msg)
    missing = [msg for uuid, msg in expected.items() if uuid not in seen]
    doubled = [expected[u] for u, n in seen.items() if n > 1]
    run.expect(not missing and not doubled, "expect.logged_once", run.t("seen.missing_doubled", missing=words(missing),
                                                                          doubled=words(doubled)))
    rows = [(copy, len(msgs), words(msgs)) for copy, msgs in sorted(by_copy.items())]
    facts = {"count": len(mine), "entries": member_entries(run, len(listing.entries))}
    return Result(Table((run.t("col.copy"), run.t("col.count"), run.t("col.messages")), rows), facts)


def member_entries(run: LabRun, total: int | None = None) -> str:
    """'member-1 3 (+7 backups), member-2 ...' from the status page once its statistics count `total` entries
    (whatever it shows after a bounded wait otherwise)."""
    def members() -> list[dict]:
        return [m for m in run.status_page()["members"] if m["up"]]

    def counted(found: list[dict]) -> bool:
        owned = [m["owned_entries"] for m in found]
        return all(n is not None for n in owned) and (total is None or sum(owned) == total)

    found, _ = wait_for(members, counted, STATS_WAIT, interval=0.5)
    return ", ".join(run.t("fact.member_entries", member=run.member_name(m["address"]) or m["address"],
                           owned=m["owned_entries"], backups=m["backup_entries"]) for m in found or [])


def received_by_copy(run: LabRun, expected: dict[str, str]) -> Result:
    """GET /messages on every messages copy, until together they hold all of `expected` (bounded): each once."""
    copies = run.system.names("messages")

    def listings() -> dict[str, list]:
        return {copy: [e for e in messages_listing(run.url(copy), HTTP_TIMEOUT, run.http).entries
                       if e.uuid in expected] for copy in copies}

    def complete(found: dict[str, list]) -> bool:
        return {e.uuid for entries in found.values() for e in entries} >= set(expected)

    found, _ = wait_for(listings, complete, SETTLE, interval=0.3)
    found = found or {}
    got = Counter(e.uuid for entries in found.values() for e in entries)
    missing = [msg for uuid, msg in expected.items() if uuid not in got]
    doubled = [expected[u] for u, n in got.items() if n > 1]
    run.expect(not missing and not doubled, "expect.received_once",
               run.t("seen.missing_doubled", missing=words(missing), doubled=words(doubled)), count=len(expected))
    rows = [(copy, len(entries), words([e.msg for e in entries])) for copy, entries in found.items()]
    spread = ", ".join(f"{copy} {len(entries)}" for copy, entries in found.items())
    return Result(Table((run.t("col.copy"), run.t("col.count"), run.t("col.messages")), rows),
                  {"count": len(expected), "spread": spread})


def read_through_facade(run: LabRun, expected: dict[str, str], times: int = 3, facade: str | None = None,
                        with_messages: bool = True) -> Result:
    """GET /facade `times` times: every answer must hold all of `expected`, each once (`with_messages`: and
    which messages copy it merged, for a system that has them)."""
    rows = []
    for attempt in range(1, times + 1):
        view = facade_view(facade or run.facade, HTTP_TIMEOUT, run.http)
        mine = [e for e in view.merged if e.uuid in expected]
        seen = Counter(e.uuid for e in mine)
        missing = [msg for uuid, msg in expected.items() if uuid not in seen]
        run.expect(not missing and all(n == 1 for n in seen.values()), "expect.read_all",
                   run.t("seen.read", attempt=attempt, count=len(seen), missing=words(missing)), count=len(expected))
        also = sum(1 for e in mine if e.received_by)
        row = (attempt, view.logged.copy or "?", len(mine))
        rows.append(row + (view.messages_copy or view.messages_error or "-", also) if with_messages else row)
    headers = (run.t("col.attempt"), run.t("col.logging_copy"), run.t("col.logged"))
    if with_messages:
        headers += (run.t("col.messages_copy"), run.t("col.also_received"))
    return Result(Table(headers, rows), {"count": len(expected), "times": times})
