"""``restorable report``: the audit evidence report of a period, to a file, stdout or the bucket.

``report__all`` (monthly) calls ``store_report`` for the month before its run; the CLI writes where
``--out`` says (stdout for html/json without it). Reading needs only the restore reader's rights and
the lifecycle's for the bucket settings; storing the report is a put with the backup writer's, under
the layout's ``_reports/`` (Object Lock as the storage section sets it, so the evidence is WORM too).
"""

from __future__ import annotations

import argparse
import sys
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from restorable.exceptions import ConfigError
from restorable.services import Services


def add_parsers(sub: Any) -> None:
    rp = sub.add_parser("report", help="the audit evidence report of a period (backups, drills, RTO/RPO, settings)")
    rp.add_argument("--database", help="one configured database (default: all)")
    rp.add_argument("--from", dest="start", required=True, help="start of the period (2026-11-01, UTC)")
    rp.add_argument("--to", dest="end", required=True, help="end of the period; a date alone includes that day")
    rp.add_argument("--format", choices=("html", "pdf", "json"), default="html")
    rp.add_argument("--out", type=Path, help="file to write (default: stdout; a PDF needs --out)")
    rp.add_argument("--store", action="store_true", help="also write it into the bucket under _reports/")


def build_report(services: Services, start: datetime, end: datetime, *, database: str | None = None) -> dict:
    from restorable.report.collect import collect_report
    from restorable.report.period import Period

    return collect_report(services, Period(start, end), database=database)


def store_report(services: Services, body: bytes, fmt: str, *, start: datetime, end: datetime) -> str:
    """Put the rendered report into the bucket; return its key."""
    from restorable.report.render import CONTENT_TYPES

    catalog = services.catalog("backup")
    key = catalog.layout.report_key(start, end, fmt)
    storage = services.config.storage
    retain = datetime.now().astimezone() + timedelta(days=storage.lock_days) if storage.lock_days else None
    catalog.store.put_bytes(
        key,
        body,
        content_type=CONTENT_TYPES[fmt],
        lock_mode=storage.lock_mode if retain else None,
        retain_until=retain,
    )
    return key


def cmd_report(args: argparse.Namespace, services: Services) -> int:
    from restorable.report.period import period_of
    from restorable.report.render import render

    if args.database:
        services.config.database(args.database)  # a ConfigError naming the known ids
    if args.format == "pdf" and args.out is None:
        raise ConfigError("a PDF report needs --out FILE", hint="restorable report ... --format pdf --out report.pdf")
    period = period_of(args.start, args.end)
    report = build_report(services, period.start, period.end, database=args.database)
    body = render(report, args.format)
    if args.store:
        key = store_report(services, body, args.format, start=period.start, end=period.end)
        print(f"report stored at s3://{services.config.storage.bucket}/{key}", file=sys.stderr)
    if args.out is None:
        sys.stdout.write(body.decode())
    else:
        args.out.write_bytes(body)
        totals = report["totals"]
        print(
            f"report of {period.label} written to {args.out}: backups {totals['backups_succeeded']}/"
            f"{totals['backups_scheduled']} succeeded, drills {totals['drills_passed']}/{totals['drills_run']} "
            f"passed, {totals['failures']} failure(s)",
            file=sys.stderr,
        )
    return 0
