"""The lab report, `lab-N.md`: every step with its command, its real output, why, the status page's
screenshot and a fault step's timeline, PNGs beside the Markdown."""

from __future__ import annotations

import time
from collections.abc import Iterable
from pathlib import Path

from labctl.lab.framework import Lab, LabFailed, Table
from labctl.lab.i18n import Catalogue
from labctl.lab.runner import StepRecord


def _cell(value: object) -> str:
    return str("" if value is None else value).replace("|", "\\|").replace("\n", " ")


def markdown_table(table: Table) -> list[str]:
    lines = ["| " + " | ".join(_cell(h) for h in table.headers) + " |",
             "|" + "|".join("---" for _ in table.headers) + "|"]
    lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in table.rows]
    return lines


def report_name(lab: Lab) -> str:
    return f"lab-{lab.number}" + (f"-{lab.variant}" if lab.variant else "") + ".md"


def write_report(directory: Path, lab: Lab, t: Catalogue, records: Iterable[StepRecord], *,
                 failure: LabFailed | None, stopped: bool, seconds: float) -> Path:
    """Write the report of what ran; answers its path. Images are linked by their names (they lie beside it)."""
    directory.mkdir(parents=True, exist_ok=True)
    lines = [f"# {t(lab.key + '.title')}", "", t(lab.key + ".intro"), "",
             t("report.meta", date=time.strftime("%Y-%m-%d %H:%M"), seconds=f"{seconds:.0f}"), ""]
    for record in records:
        lines += [f"## {record.number}. {record.title}", "", "```sh", f"$ {record.command}", "```", ""]
        if record.table is not None:
            lines += markdown_table(record.table) + [""]
        if record.why:
            lines += [f"**{t('report.why')}** {record.why}", ""]
        if record.look:
            lines += [f"**{t('report.look')}** {record.look}", ""]
        if record.screenshot is not None:
            lines += [f"![{t('report.screenshot', number=record.number)}]({record.screenshot.name})", ""]
        if record.chart is not None:
            lines += [f"![{t('report.chart', number=record.number)}]({record.chart.name})", ""]
        if record.load:
            failed = sum(1 for o in record.load if not o.uuid)
            lines += [t("report.load", posts=len(record.load), accepted=len(record.load) - failed, failed=failed), ""]
    lines.append(f"## {t('report.verdict')}")
    lines.append("")
    if failure is not None:
        lines.append(t("report.failed", expected=failure.expected, seen=failure.seen))
    elif stopped:
        lines.append(t("report.stopped"))
    else:
        lines.append(t("report.passed"))
    path = directory / report_name(lab)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path
