"""Network faults between the hosts of a system started with --hosts, as data: what is cut, slowed or lossy,
parsed from `labctl net` arguments and rendered as the nftables table that holds them on the hosts' links.

A partition `A | B` cuts every link between a host of side A and a host of side B, both ways, by dropping
packets (no reset: the peer sees silence, as across a failed switch). A host named on neither side keeps its
links to both (`host1 | host3` leaves host2 as the bridge between them). The edge host (the machine: facade,
config server) stays with the larger side; when the sides are the same size it keeps its links to both.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from labctl.control import ControlError

LOSS_SCALE = 10_000  # loss is drawn from numgen mod this: percentages to two decimals


class NetUsageError(ControlError):
    """`labctl net` was given something it cannot do; nothing was changed."""


@dataclass(frozen=True)
class Delay:
    ms: float
    jitter_ms: float = 0.0

    def describe(self) -> str:
        return f"{self.ms:g} ms" + (f" ± {self.jitter_ms:g} ms" if self.jitter_ms else "")


@dataclass
class Faults:
    """Every fault in place: the partition's two sides, each host's delay and loss (percent)."""

    sides: tuple[tuple[str, ...], tuple[str, ...]] | None = None
    delays: dict[str, Delay] = field(default_factory=dict)
    losses: dict[str, float] = field(default_factory=dict)

    def to_json(self) -> dict:
        return {"sides": [list(side) for side in self.sides] if self.sides else None,
                "delays": {h: {"ms": d.ms, "jitter_ms": d.jitter_ms} for h, d in self.delays.items()},
                "losses": dict(self.losses)}

    @classmethod
    def from_json(cls, data: dict) -> Faults:
        sides = data.get("sides")
        return cls(sides=(tuple(sides[0]), tuple(sides[1])) if sides else None,
                   delays={h: Delay(d["ms"], d.get("jitter_ms", 0.0)) for h, d in data.get("delays", {}).items()},
                   losses={h: float(p) for h, p in data.get("losses", {}).items()})

    def any(self) -> bool:
        return bool(self.sides or self.delays or self.losses)

    # --- what the partition cuts ---

    def cut_from(self, host: str) -> list[str]:
        """The hosts `host` cannot reach (nor be reached from)."""
        if not self.sides:
            return []
        a, b = self.sides
        return list(b) if host in a else list(a) if host in b else []

    def edge_cut_from(self) -> list[str]:
        """The hosts the edge cannot reach: those of the smaller side (none when the sides are equal)."""
        if not self.sides:
            return []
        a, b = self.sides
        return list(a) if len(a) < len(b) else list(b) if len(b) < len(a) else []


def parse_sides(words: list[str], known: list[str]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """`host1 host2,host3`, or the same with a `|` between (as one word or its own), into two sides of host
    names: each known, none named twice, neither empty."""
    joined = " ".join(words)
    parts = joined.split("|") if "|" in joined else words
    if len(parts) != 2:
        raise NetUsageError(f"give two sides, e.g. `host1 host2,host3` or `host1 '|' host2,host3` (got {joined!r})")
    sides = []
    for part in parts:
        names = [n for n in re.split(r"[,\s]+", part.strip()) if n]
        if not names:
            raise NetUsageError(f"a side names no host (got {joined!r})")
        sides.append(tuple(names))
    named = [n for side in sides for n in side]
    unknown = sorted({n for n in named if n not in known})
    if unknown:
        raise NetUsageError(f"no host named {', '.join(unknown)}; this system has {', '.join(known)}")
    twice = sorted({n for n in named if named.count(n) > 1})
    if twice:
        raise NetUsageError(f"{', '.join(twice)} named twice (a host is on one side, once)")
    return sides[0], sides[1]


def parse_ms(text: str, what: str) -> float:
    """`50ms`, `0.1s` or `50` (milliseconds) into milliseconds."""
    found = re.fullmatch(r"(\d+(?:\.\d+)?)(ms|s)?", text.strip())
    if not found:
        raise NetUsageError(f"{what} must be a duration such as 50ms or 0.1s (got {text!r})")
    value = float(found.group(1)) * (1000.0 if found.group(2) == "s" else 1.0)
    if value > 10_000:
        raise NetUsageError(f"{what} of {value:g} ms is more than the 10 s this allows")
    return value


def parse_percent(text: str) -> float:
    found = re.fullmatch(r"(\d+(?:\.\d+)?)%?", text.strip())
    value = float(found.group(1)) if found else -1.0
    if not 0.0 <= value <= 100.0:
        raise NetUsageError(f"loss must be a percentage from 0% to 100%, such as 10% (got {text!r})")
    return value


def fault_table(faults: Faults, table: str, links: dict[str, str], address: dict[str, str], edge: str) -> str:
    """The nftables script that makes the system's table (`netdev` family, in the machine's namespace) hold
    exactly these faults: it is created (so the delete never fails), deleted and, when there is anything to
    do, made again, in one transaction. Each host's chains sit on its veth's outer end (`links`), the wire:
    at ingress, what the host sends to a peer it is cut from is dropped (and a share of all it sends, for
    loss); at egress, what reaches it from one. A dropped packet has left its sender's stack, as on a real
    link (a drop in the sender's own output path would fail its send at once instead)."""
    script = [f"table netdev {table}", f"delete table netdev {table}"]
    chains = []
    for host, link in links.items():
        cut = [address[h] for h in faults.cut_from(host)] + ([edge] if host in faults.edge_cut_from() else [])
        peers = "{ " + ", ".join(sorted(cut)) + " }"
        loss = faults.losses.get(host, 0.0)
        sent = ([f"ip daddr {peers} drop"] if cut else []) + (
            [f"numgen random mod {LOSS_SCALE} < {round(loss * LOSS_SCALE / 100)} drop"] if loss else [])
        if sent:
            chains.append(f"  chain {host}_sends {{ type filter hook ingress device \"{link}\" priority 0; "
                          "policy accept; " + " ".join(f"{rule};" for rule in sent) + " }")
        if cut:
            chains.append(f"  chain {host}_gets {{ type filter hook egress device \"{link}\" priority 0; "
                          f"policy accept; ip saddr {peers} drop; }}")
    if chains:
        script += [f"table netdev {table} {{", *chains, "}"]
    return "\n".join(script) + "\n"
