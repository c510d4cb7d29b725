"""Reading the services and members: `/health` and the listings as typed results, and waiting on a probe."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import astuple, dataclass, field, fields
from typing import Any, TypeVar

import requests

T = TypeVar("T")


class ProbeError(ValueError):
    """An answer that does not have the shape this module reads (a service of other code, say)."""


def wait_for(probe: Callable[[], T], ok: Callable[[T], bool], timeout: float,
             interval: float = 0.25) -> tuple[T | None, float | None]:
    """Probe until `ok` holds or `timeout` passes: the last value read, and the seconds it took (None if never).
    A probe that fails (no answer, not JSON) counts as not yet."""
    started = time.monotonic()
    value = None
    while True:
        try:
            value = probe()
        except (requests.RequestException, ValueError, KeyError):
            pass
        else:
            if ok(value):
                return value, time.monotonic() - started
        if time.monotonic() - started > timeout:
            return value, None
        time.sleep(interval)


def _json_object(response: requests.Response) -> dict:
    body = response.json()
    if not isinstance(body, dict):
        raise ProbeError(f"{response.url} answered {type(body).__name__}, not a JSON object")
    return body


def _detail(detail: Any, key: str) -> Any:
    if not isinstance(detail, Mapping) or key not in detail:
        raise ProbeError(f"no {key!r} in the check's detail")
    return detail[key]


# --- /health of a service ------------------------------------------------------------------------


@dataclass(frozen=True)
class Check:
    ok: bool
    detail: Any = None  # a sentence or an object, as the check tells it


@dataclass(frozen=True)
class ConsumerCounts:
    """A messages copy's consumer since it started (summed over copies by `+`, compared over time by `-`);
    a count is None from copies whose code does not keep it (older code)."""

    received: int  # records written: what the copy's GET /messages lists
    taken: int | None  # items taken off the queue by committed transactions
    transactions: int | None  # transactions that took at least one item
    dropped: int | None = None  # items taken whose uuid some copy had received already
    redelivered: int | None = None  # items taken that redelivery had offered again
    not_committed: int | None = None  # records written by a transaction that then failed
    unanswered: int | None = None  # record writes that got no answer (written or not)

    @classmethod
    def of(cls, detail: Any) -> ConsumerCounts:
        received = int(_detail(detail, "received"))
        return cls(received, *(int(detail[name]) if name in detail else None for name in _COUNTED[1:]))

    def __add__(self, other: ConsumerCounts) -> ConsumerCounts:
        return self._combine(other, lambda a, b: a + b)

    def __sub__(self, other: ConsumerCounts) -> ConsumerCounts:
        return self._combine(other, lambda a, b: a - b)

    def _combine(self, other: ConsumerCounts, op: Callable[[int, int], int]) -> ConsumerCounts:
        pairs = zip(astuple(self), astuple(other), strict=True)
        return ConsumerCounts(*(None if a is None or b is None else op(a, b) for a, b in pairs))


_COUNTED = tuple(f.name for f in fields(ConsumerCounts))


@dataclass(frozen=True)
class ServiceHealth:
    """A service's GET /health: 200 when every check passes, else 503 naming the failing ones."""

    status: int
    checks: dict[str, Check] = field(default_factory=dict)

    @classmethod
    def of(cls, response: requests.Response) -> ServiceHealth:
        try:
            body = response.json()
        except ValueError:
            return cls(response.status_code)
        checks = body.get("checks", {}) if isinstance(body, dict) else {}
        return cls(response.status_code,
                   {name: Check(bool(c.get("ok")), c.get("detail")) for name, c in checks.items()})

    @property
    def healthy(self) -> bool:
        return self.status == 200

    def reason(self) -> str:
        """'HTTP 503 (cluster: not connected)': the status and every failing check."""
        failing = [f"{name}: {check.detail}" for name, check in self.checks.items() if not check.ok]
        return f"HTTP {self.status}" + (f" ({'; '.join(failing)})" if failing else "")

    def detail(self, check: str) -> Any:
        if check not in self.checks:
            raise ProbeError(f"no {check!r} check in /health")
        return self.checks[check].detail

    def consumer(self) -> ConsumerCounts:
        """A messages copy's consumer counts."""
        return ConsumerCounts.of(self.detail("consumer"))

    def offered_again(self) -> int:
        """How many messages a messages copy's redelivery check offered again since it started."""
        return int(_detail(self.detail("redelivery"), "offered_again"))

    def registry_reachable(self) -> bool:
        """Whether the facade's discovery reaches its source (else it serves addresses from its cache)."""
        return bool(_detail(self.detail("discovery"), "reachable"))

    def registry_error(self) -> str | None:
        detail = self.detail("discovery")
        return detail.get("error") if isinstance(detail, Mapping) else None


def service_health(base_url: str, timeout: float, session: requests.Session | None = None) -> ServiceHealth:
    """GET {base_url}/health (raises requests' errors when nothing answers)."""
    return health_at(base_url + "/health", timeout, session)


def health_at(health_url: str, timeout: float, session: requests.Session | None = None) -> ServiceHealth:
    return ServiceHealth.of((session or requests).get(health_url, timeout=timeout))


# --- /hazelcast/health of a member ---------------------------------------------------------------


@dataclass(frozen=True)
class MemberHealth:
    status: int
    node_state: str | None = None
    cluster_size: int | None = None
    cluster_safe: bool = False

    @property
    def active(self) -> bool:
        return self.node_state == "ACTIVE"

    def safe_with(self, size: int) -> bool:
        return self.cluster_size == size and self.cluster_safe

    def summary(self) -> str:
        return f"cluster of {self.cluster_size}, {'safe' if self.cluster_safe else 'migrating'}"


def member_health(health_url: str, timeout: float) -> MemberHealth:
    """GET a member's /hazelcast/health (raises requests' errors when nothing answers)."""
    response = requests.get(health_url, timeout=timeout)
    try:
        body = _json_object(response)
    except ValueError:
        return MemberHealth(response.status_code)
    return MemberHealth(response.status_code, body.get("nodeState"), body.get("clusterSize"),
                        bool(body.get("clusterSafe")))


# --- listings ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Entry:
    uuid: str
    msg: str
    logged_by: str | None = None
    received_by: str | None = None  # in the facade's merged view: the messages copy that has it too

    @classmethod
    def of(cls, item: Mapping) -> Entry:
        return cls(item["uuid"], item["msg"], item.get("logged_by"), item.get("received_by"))


@dataclass(frozen=True)
class Listing:
    """What a logging copy (GET /logging) or a messages copy (GET /messages) answers."""

    copy: str | None
    count: int | None
    entries: list[Entry]

    @classmethod
    def of(cls, body: Mapping) -> Listing:
        try:
            return cls(body.get("copy"), body.get("count"), [Entry.of(m) for m in body["messages"]])
        except (KeyError, TypeError) as err:
            raise ProbeError(f"not a listing: {type(err).__name__} {err}") from err

    def uuids(self) -> list[str]:
        return [e.uuid for e in self.entries]


@dataclass(frozen=True)
class FacadeView:
    """GET /facade: the logging copy's listing, the merged view, and which messages copy it asked."""

    logged: Listing
    merged: list[Entry]
    messages_copy: str | None
    messages_error: str | None

    @classmethod
    def of(cls, body: Mapping) -> FacadeView:
        try:
            messages = body["messages"]
            return cls(Listing.of(body["logging"]), [Entry.of(m) for m in body["merged"]], messages.get("copy"),
                       messages.get("error"))
        except (KeyError, TypeError, AttributeError) as err:
            raise ProbeError(f"not the facade's view: {type(err).__name__} {err}") from err


def _get_json(url: str, timeout: float, session: requests.Session | None) -> dict:
    response = (session or requests).get(url, timeout=timeout)
    response.raise_for_status()
    return _json_object(response)


def logging_listing(base_url: str, timeout: float, session: requests.Session | None = None) -> Listing:
    """GET {base_url}/logging: everything the map holds (a full read)."""
    return Listing.of(_get_json(base_url + "/logging", timeout, session))


def messages_listing(base_url: str, timeout: float, session: requests.Session | None = None) -> Listing:
    """GET {base_url}/messages: what this messages copy received."""
    return Listing.of(_get_json(base_url + "/messages", timeout, session))


def facade_view(base_url: str, timeout: float, session: requests.Session | None = None) -> FacadeView:
    return FacadeView.of(_get_json(base_url + "/facade", timeout, session))


def stored_count(base_url: str, timeout: float) -> int:
    """How many messages the map holds, from a full GET /logging (its entries are not kept)."""
    count = _get_json(base_url + "/logging", timeout, None).get("count")
    if not isinstance(count, int):
        raise ProbeError("GET /logging answered no count")
    return count
