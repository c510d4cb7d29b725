"""Lab 5: Consul. Every copy registers itself with a health check, the settings live in Consul's KV, two
facades find everything through Consul; a killed copy turns critical and calls go to the live ones."""

from __future__ import annotations

import base64

from lab_common.consul_support import KV_PREFIX
from labctl.lab import actions
from labctl.lab.framework import Lab, Result, Step, Table
from labctl.lab.runner import LabRun
from labctl.launcher import Topology
from labctl.probe import wait_for

SERVICES = {"facade-service": 2, "logging-service": 3, "messages-service": 2}
VICTIM = "logging-2"


def _consul(run: LabRun) -> str:
    return run.url("consul")


def _instances(run: LabRun, service: str) -> list[tuple[str, str, str]]:
    """(instance id, address, the worst of its checks) of each instance Consul knows, passing or not."""
    found = []
    for entry in run.get_json(f"{_consul(run)}/v1/health/service/{service}"):
        statuses = [c["Status"] for c in entry["Checks"] if c.get("ServiceID")]
        worst = next((s for s in ("critical", "warning") if s in statuses), "passing" if statuses else "-")
        found.append((entry["Service"]["ID"], f"{entry['Service']['Address']}:{entry['Service']['Port']}", worst))
    return sorted(found)


def registered(run: LabRun) -> Result:
    def counts() -> dict[str, tuple[int, int]]:
        return {s: (len(found := _instances(run, s)), sum(1 for i in found if i[2] == "passing")) for s in SERVICES}

    found, _ = wait_for(counts, lambda c: all(c[s] == (n, n) for s, n in SERVICES.items()), actions.SETTLE, 0.5)
    found = found or {}
    run.expect(all(found.get(s) == (n, n) for s, n in SERVICES.items()), "expect.registered",
               ", ".join(f"{s}: {found.get(s)}" for s in SERVICES),
               wanted=", ".join(f"{s} ×{n}" for s, n in SERVICES.items()))
    rows = [(s, total, passing) for s, (total, passing) in found.items()]
    return Result(Table((run.t("col.service"), run.t("col.instances"), run.t("col.passing")), rows),
                  {"instances": sum(SERVICES.values())})


def settings_in_kv(run: LabRun) -> Result:
    items = run.get_json(f"{_consul(run)}/v1/kv/{KV_PREFIX}?recurse")
    values = {i["Key"]: base64.b64decode(i["Value"] or b"").decode() for i in items}
    members = next((v for k, v in values.items() if "members" in k), "")
    run.expect(bool(members), "expect.kv", ", ".join(values) or "-")
    return Result(Table((run.t("col.key"), run.t("col.value")), sorted(values.items())),
                  {"keys": len(values), "members": members})


def post_both(run: LabRun) -> Result:
    return actions.post_messages(run, [f"msg{i}" for i in range(1, 11)], via=run.system.names("facade"))


def read_second(run: LabRun) -> Result:
    expected = {u: m for u, m in run.posted.items() if m.startswith("msg")}
    result = actions.read_through_facade(run, expected, times=2, facade=run.url(run.system.names("facade")[-1]))
    return Result(result.table, {**result.facts, "facade": run.system.names("facade")[-1]})


def _checks_table(run: LabRun, service: str) -> Table:
    return Table((run.t("col.instance"), run.t("col.address"), run.t("col.check")), _instances(run, service))


def _victim_state(run: LabRun) -> str:
    port = run.url(VICTIM).rsplit(":", 1)[-1]
    return next((i[2] for i in _instances(run, "logging-service") if i[1].endswith(":" + port)), "absent")


def kill_copy(run: LabRun) -> Result:
    run.kill(VICTIM)
    state, seconds = wait_for(lambda: _victim_state(run), lambda s: s in ("critical", "absent"), actions.SETTLE, 0.2)
    run.expect(seconds is not None, "expect.critical", str(state), copy=VICTIM)
    run.mark(run.t("mark.critical", names=VICTIM))
    return Result(_checks_table(run, "logging-service"), {"copy": VICTIM, "state": state,
                                                           "seconds": f"{seconds or 0:.1f}"})


def post_after(run: LabRun) -> Result:
    result = actions.post_messages(run, [f"after{i}" for i in range(1, 7)], via=run.system.names("facade"))
    used = {row[3] for row in result.table.rows}
    run.expect(VICTIM not in used, "expect.live_only", ", ".join(sorted(used)), copy=VICTIM)
    return Result(result.table, {**result.facts, "copy": VICTIM})


def restart_copy(run: LabRun) -> Result:
    run.start(VICTIM)
    state, seconds = wait_for(lambda: _victim_state(run), lambda s: s == "passing", actions.SETTLE, 0.2)
    run.expect(seconds is not None, "expect.passing", str(state), copy=VICTIM)
    return Result(_checks_table(run, "logging-service"), {"copy": VICTIM})


LAB = Lab(5, None, lambda offset: Topology(port_offset=offset, cluster_name="lab5", discovery="consul", facades=2),
          (Step("start", "labctl start --discovery consul", actions.system_table),
           Step("registered", "for s in facade-service logging-service messages-service; do "
                              "curl {consul}/v1/health/service/$s; done", registered, screenshot=True),
           Step("kv", f"curl '{{consul}}/v1/kv/{KV_PREFIX}?recurse'", settings_in_kv),
           Step("post", 'for i in 1 3 5 7 9; do curl -X POST -d "msg=msg$i" {facade}/facade; done; '
                        'for i in 2 4 6 8 10; do curl -X POST -d "msg=msg$i" {facade2}/facade; done', post_both),
           Step("read", "curl {facade2}/facade", read_second),
           Step("kill", lambda run: run.labctl(f"kill {VICTIM}"), kill_copy, screenshot=True, fault=True),
           Step("after", 'for i in $(seq 1 6); do curl -X POST -d "msg=after$i" {facade}/facade; done', post_after),
           Step("restart", lambda run: run.labctl(f"start-process {VICTIM}"), restart_copy)))
