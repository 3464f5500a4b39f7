"""Retention in every destination: each copy is its own repository, so each gets its own plan.

The databases' ``retention`` policies apply to each copy as to the primary, judged from the copy's
own catalog: "the newest verified backup" of a copy is the newest one *its* read-back verified,
so a copy never loses the one backup it holds verified because the primary holds a newer one.
Each copy's lifecycle runs with that copy's ``lifecycle_conn_id`` (else its ``conn_id``); uncommitted
objects a failed copy left behind are orphans there, removed after ``lifecycle.orphan_min_age``.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from restorable.commands.lifecycle import lifecycle_failure, lifecycle_summary, run_lifecycle
from restorable.copies.destinations import copy_services
from restorable.exceptions import RestorableError, StorageError
from restorable.lifecycle.apply import LifecycleReport
from restorable.services import Services

log = logging.getLogger(__name__)


def run_copies_lifecycle(
    services: Services, now: datetime, *, dry_run: bool
) -> tuple[dict[str, LifecycleReport], dict[str, StorageError]]:
    """Each copy's lifecycle report by name, and the copies whose lifecycle could not run at all."""
    reports: dict[str, LifecycleReport] = {}
    failed: dict[str, StorageError] = {}
    for copy in services.config.storage.copies:
        try:
            reports[copy.name] = run_lifecycle(copy_services(services, copy.name), now, dry_run=dry_run)
        except RestorableError as exc:
            # One unreachable region must not stop the others' retention (nor the primary's).
            log.error("copy lifecycle failed copy=%s error=%s", copy.name, exc.message)
            failed[copy.name] = StorageError(f"copy {copy.name}: {exc.message}", hint=exc.hint)
    return reports, failed


def enforce_everywhere(
    services: Services, now: datetime, *, dry_run: bool
) -> tuple[dict[str, Any], StorageError | None]:
    """The primary's lifecycle, then each copy's: (the summary for XCom, the error to end in or None).

    The summary is the primary's, with ``copies`` (each copy's summary) when there are copies.
    """
    report = run_lifecycle(services, now, dry_run=dry_run)
    summary = lifecycle_summary(report)
    failures = [f for f in [lifecycle_failure(report)] if f is not None]
    if services.config.storage.copies:
        reports, unreachable = run_copies_lifecycle(services, now, dry_run=dry_run)
        summary["copies"] = {name: lifecycle_summary(r) for name, r in reports.items()}
        summary["copies_failed"] = {name: exc.message for name, exc in unreachable.items()}
        for name, copied in reports.items():
            failure = lifecycle_failure(copied)
            if failure is not None:
                failures.append(StorageError(f"copy {name}: {failure.message}", hint=failure.hint))
        failures += unreachable.values()
    if not failures:
        return summary, None
    if len(failures) == 1:
        return summary, failures[0]
    return summary, StorageError("; ".join(f.message for f in failures), hint=failures[0].hint)


def audit_copies(services: Services) -> tuple[dict[str, Any], list[StorageError]]:
    """Each copy's bucket audited as the primary's is: (summary by copy name, the drifts or errors to fail on)."""
    from restorable.commands.lifecycle import audit_failure, run_audit

    summary: dict[str, Any] = {}
    failures: list[StorageError] = []
    for copy in services.config.storage.copies:
        try:
            drifts = run_audit(copy_services(services, copy.name), fix=False)
        except RestorableError as exc:
            summary[copy.name] = {"bucket": copy.bucket, "error": exc.message}
            failures.append(StorageError(f"copy {copy.name}: {exc.message}", hint=exc.hint))
            continue
        summary[copy.name] = {"bucket": copy.bucket, "drifts": [d.to_dict() for d in drifts]}
        failure = audit_failure(copy.bucket, drifts)
        if failure is not None:
            failures.append(StorageError(f"copy {copy.name}: {failure.message}", hint=failure.hint))
    return summary, failures
