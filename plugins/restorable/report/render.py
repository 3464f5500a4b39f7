"""The report as JSON (for machines), HTML (Jinja2) or PDF (fpdf2, see ``pdf``), from one dict.

Every format carries the same figures and the same statement of method, so an auditor reading the
PDF and a script reading the JSON see one report.
"""

from __future__ import annotations

import json
from typing import Any

FORMATS = ("html", "pdf", "json")
CONTENT_TYPES = {"html": "text/html; charset=utf-8", "pdf": "application/pdf", "json": "application/json"}


def percent(value: float | None) -> str:
    return "n/a" if value is None else f"{value * 100:.1f} %"


def seconds(value: float | None) -> str:
    if value is None:
        return "n/a"
    if value < 120:
        return f"{value:.1f} s"
    if value < 7200:
        return f"{value / 60:.1f} min"
    return f"{value / 3600:.1f} h"


def verdict(met: bool | None) -> str:
    return "n/a" if met is None else "met" if met else "NOT met"


def statement(report: dict[str, Any]) -> list[str]:
    """What was tested and how, in sentences an auditor can check against the evidence keys."""
    objectives = report["objectives"]
    where = f"s3://{report['bucket']}/{report['prefix']}"
    return [
        "Every backup is streamed from the database's own snapshot, compressed and encrypted to the "
        "age recipients listed below, and committed by writing its manifest last; a backup that fails "
        "at any step leaves no manifest. The manifest records the SHA-256 of the plain and of the stored "
        "stream, the exact row count of every table and the schema, all taken in the same snapshot.",
        "A backup counts as verified when it was read back from the bucket and its SHA-256 matched the "
        "manifest (a checksum or deep record), or when a restore drill restored it; the last check must "
        "not have failed. A scheduled backup succeeded when such a backup exists for its run; the "
        f"objective is {percent(objectives['backup_success'])} of scheduled runs.",
        "A restore drill restores the backup into an isolated scratch database, re-computes both hashes, "
        "checks integrity (amcheck on PostgreSQL), runs Great Expectations on the restored copy against "
        "the row counts and schema recorded at backup time, records its evidence beside the backup and "
        "drops the scratch database. A point-in-time drill restores a base backup and archived WAL to a "
        "random moment between two heartbeats and proves exactly the rows committed by then are present. "
        f"The objective is {percent(objectives['drill_pass'])} of drills passed; the measured restore time "
        f"(RTO) is compared with {seconds(objectives['rto_seconds'])}, and the data a loss just before the "
        f"drilled backup would have cost (RPO) with {seconds(objectives['rpo_seconds'])}.",
        f"All figures in this report were read from the bucket {where} (manifests and the append-only "
        "verification records), not from Airflow's database; each can be checked by reading the evidence "
        "keys listed per database. Scheduled runs are the occurrences of the configured cron schedules "
        "in the period, in UTC.",
    ]


def to_json(report: dict[str, Any]) -> bytes:
    return json.dumps({**report, "statement": statement(report)}, indent=2, sort_keys=True).encode() + b"\n"


def to_html(report: dict[str, Any]) -> bytes:
    from jinja2 import Environment, PackageLoader, select_autoescape

    env = Environment(loader=PackageLoader("restorable.report", "templates"), autoescape=select_autoescape(["html"]))
    env.filters.update(percent=percent, seconds=seconds, verdict=verdict)
    template = env.get_template("report.html")
    return template.render(report=report, statement=statement(report)).encode()


def render(report: dict[str, Any], fmt: str) -> bytes:
    if fmt == "json":
        return to_json(report)
    if fmt == "html":
        return to_html(report)
    if fmt == "pdf":
        from restorable.report.pdf import to_pdf

        return to_pdf(report, statement(report))
    raise ValueError(f"unknown report format {fmt!r} (one of {', '.join(FORMATS)})")
