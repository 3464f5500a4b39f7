"""Alerts: one Slack-compatible JSON message per failed task, to the configured webhook.

Wired as ``on_failure_callback``: it fires once a task has failed for good (after its
retries, or at once for a permanent error such as a validation mismatch), never on start or
on retry. The message names the database, the backup, the DAG and task, the failing step,
the error (secrets scrubbed) and the runbook to follow.

Two other alerts go to the same webhook with messages of their own: a breach the WAL monitor
found (``breach_payload``: sent by the monitor once per breach, and its failing task does not
alert again), and a backup run past its deadline (``backup_deadline_missed``: the callback of
the backup DAGs' ``DeadlineAlert``, run by the triggerer).
"""

from __future__ import annotations

import json
import logging
import re
import urllib.request
from typing import Any

from airflow.sdk import BaseNotifier

log = logging.getLogger(__name__)

#: Which runbook answers a failure of which step.
RUNBOOKS = {
    "preflight": "backup-failed.md",
    "backup": "backup-failed.md",
    "verify_checksum": "checksum-mismatch.md",
    "publish": "backup-failed.md",
    "pick_backup": "drill-failed.md",
    "restore_scratch": "drill-failed.md",
    "validate": "drill-failed.md",
    "record_evidence": "drill-failed.md",
    "drop_scratch": "drill-failed.md",
    "restore": "restore.md",
    "validate_restore": "restore.md",
    "enforce": "lifecycle.md",
    "audit_bucket": "lifecycle.md",
    "physical_preflight": "base-backup-failed.md",
    "base_backup": "base-backup-failed.md",
    "monitor_wal": "rpo.md",
    "rotate_keys": "keys.md",
    "audit_encryption": "keys.md",
}
#: The runbook of a backup run past its deadline.
DEADLINE_RUNBOOK = "backup-deadline.md"
_CREDENTIALS_IN_URI = re.compile(r"(://[^:/@\s]+:)[^@\s]+@")
_SECRET_WORDS = re.compile(r"(AGE-SECRET-KEY-1)[0-9A-Z]+|((?:password|secret|token)\s*[=:]\s*)\S+", re.I)


def scrub(text: str, limit: int = 1500) -> str:
    """Remove credentials from an error message and cut it to ``limit`` characters."""
    text = _CREDENTIALS_IN_URI.sub(r"\1***@", text)
    text = _SECRET_WORDS.sub(lambda m: (m.group(1) or m.group(2)) + "***", text)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def webhook_url(conn: Any) -> str:
    """The URL of an HTTP connection: ``host`` may be a full URL, else scheme://host:port/schema."""
    host = (conn.host or "").strip()
    if host.startswith(("http://", "https://")):
        base = host
    else:
        scheme = (conn.extra_dejson or {}).get("scheme") or ("https" if conn.conn_type == "https" else "http")
        base = f"{scheme}://{host}" + (f":{conn.port}" if conn.port else "")
    if conn.schema:
        base = base.rstrip("/") + "/" + conn.schema.lstrip("/")
    return base


class RestorableWebhookNotifier(BaseNotifier):
    """POST an alert to the webhook of HTTP connection ``webhook_conn_id`` (a no-op when None)."""

    template_fields = ("webhook_conn_id",)

    def __init__(
        self, webhook_conn_id: str | None, *, runbook_url: str = "docs/runbooks", timeout: float = 10.0
    ) -> None:
        super().__init__()
        self.webhook_conn_id = webhook_conn_id
        self.runbook_url = runbook_url.rstrip("/")
        self.timeout = timeout

    def payload(self, context: Any) -> dict[str, Any]:
        ti = context.get("ti") or context.get("task_instance")
        task = context.get("task")
        dag_id = getattr(ti, "dag_id", None) or getattr(context.get("dag"), "dag_id", None)
        task_id = getattr(ti, "task_id", None) or getattr(task, "task_id", None)
        exception = context.get("exception")
        # The configured database id (what on-call knows), else whatever the error names.
        database = getattr(task, "database_id", None) or getattr(exception, "database", None)
        if isinstance(database, str) and "{{" in database:
            database = getattr(exception, "database", None)
        backup_id = (
            getattr(exception, "backup_id", None)
            or getattr(task, "resolved_backup_id", None)
            or getattr(task, "backup_id", None)
        )
        if isinstance(backup_id, str) and "{{" in backup_id:
            backup_id = None
        step = task_id or "unknown"
        runbook = f"{self.runbook_url}/{RUNBOOKS.get(step, 'README.md')}"
        error = scrub(f"{type(exception).__name__}: {exception}") if exception is not None else "unknown error"
        text = (
            f":rotating_light: Restorable: {step} failed for database {database or '?'}"
            f"{f' (backup {backup_id})' if backup_id else ''} in {dag_id}. {error.splitlines()[0][:300]}"
            f" Runbook: {runbook}"
        )
        return {
            "text": text,
            "database": database,
            "backup_id": backup_id,
            "dag_id": dag_id,
            "task_id": task_id,
            "run_id": getattr(ti, "run_id", None),
            "try_number": getattr(ti, "try_number", None),
            "failing_step": step,
            "error": error,
            "runbook": runbook,
        }

    def notify(self, context: Any) -> None:
        exception = context.get("exception")
        if getattr(exception, "alerted", False):
            # The error carries its own alert, already sent (an open breach the monitor reported).
            log.info("no failure alert: %s was alerted on by its task", type(exception).__name__)
            return
        post_alert(self.webhook_conn_id, self.payload(context), timeout=self.timeout)


def _post(url: str, payload: dict[str, Any], timeout: float) -> None:
    body = json.dumps(payload, default=str).encode()
    request = urllib.request.Request(url, data=body, method="POST", headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 (URL from config)
        response.read()


def post_alert(webhook_conn_id: str | None, payload: dict[str, Any], *, timeout: float = 10.0) -> bool:
    """POST ``payload`` to the webhook of ``webhook_conn_id``; True when it was delivered.

    Never raises: an alert that cannot be sent must not hide the failure it reports.
    """
    if not webhook_conn_id:
        return False
    from airflow.sdk import BaseHook

    try:
        url = webhook_url(BaseHook.get_connection(webhook_conn_id))
    except Exception as exc:  # not defined: say so, but never mask the task's own failure
        log.error("alert not sent: webhook connection %s unusable: %s", webhook_conn_id, type(exc).__name__)
        return False
    try:
        _post(url, payload, timeout)
    except OSError as exc:
        log.error("alert not delivered webhook_conn_id=%s error=%s", webhook_conn_id, exc)
        return False
    return True


def breach_payload(database_id: str, breach: dict[str, Any], *, dag_id: str, run_id: str, runbook_url: str):
    """The alert of one breach the WAL monitor found: the database, the figure, the objective, the runbook."""
    runbook = f"{runbook_url.rstrip('/')}/{breach['runbook']}"
    text = (
        f":rotating_light: Restorable: {breach['check']} breached for database {database_id}: "
        f"{breach['message']} (measured {breach['measured']}, objective {breach['objective']}). Runbook: {runbook}"
    )
    return {
        "text": text,
        "kind": "breach",
        "database": database_id,
        "check": breach["check"],
        "measured": breach["measured"],
        "objective": breach["objective"],
        "message": breach["message"],
        "since": breach.get("since"),
        "dag_id": dag_id,
        "run_id": run_id,
        "runbook": runbook,
    }


def deadline_payload(
    database_id: str,
    *,
    dag_id: str | None,
    run_id: str | None,
    scheduled: Any,
    deadline: Any,
    allowed: str,
    runbook_url: str,
) -> dict[str, Any]:
    """The alert of a backup run not finished by its deadline (it may be stuck; the next one is due)."""
    runbook = f"{runbook_url.rstrip('/')}/{DEADLINE_RUNBOOK}"
    text = (
        f":hourglass: Restorable: {dag_id} for database {database_id}, scheduled at {scheduled}, has not finished "
        f"by its deadline {deadline} ({allowed} after its scheduled time). It may be stuck. Runbook: {runbook}"
    )
    return {
        "text": text,
        "kind": "deadline",
        "database": database_id,
        "dag_id": dag_id,
        "run_id": run_id,
        "scheduled": str(scheduled) if scheduled is not None else None,
        "deadline": str(deadline) if deadline is not None else None,
        "allowed": allowed,
        "runbook": runbook,
    }


async def backup_deadline_missed(
    *,
    database_id: str,
    allowed: str,
    webhook_conn_id: str | None,
    runbook_url: str = "docs/runbooks",
    context: dict[str, Any] | None = None,
) -> bool:
    """A ``DeadlineAlert``'s callback (``AsyncCallback``: the triggerer awaits it with ``context``).

    Airflow 3.3 hands it ``context = {"dag_run": <the run as the REST API shows it>, "deadline":
    {"id", "deadline_time"}}``; the connection is read with ``aget_connection`` (the triggerer's
    event loop must not block on it) and the POST runs in a thread.
    """
    import asyncio

    from airflow.sdk import BaseHook

    dag_run = (context or {}).get("dag_run") or {}
    deadline = ((context or {}).get("deadline") or {}).get("deadline_time")
    payload = deadline_payload(
        database_id,
        dag_id=dag_run.get("dag_id"),
        run_id=dag_run.get("dag_run_id") or dag_run.get("run_id"),
        scheduled=dag_run.get("logical_date") or dag_run.get("run_after"),
        deadline=deadline,
        allowed=allowed,
        runbook_url=runbook_url,
    )
    log.warning("backup past its deadline: %s", payload["text"])
    if not webhook_conn_id:
        return False
    try:
        url = webhook_url(await BaseHook.aget_connection(webhook_conn_id))
    except Exception as exc:
        log.error("deadline alert not sent: webhook connection %s unusable: %s", webhook_conn_id, type(exc).__name__)
        return False
    try:
        await asyncio.to_thread(_post, url, payload, 10.0)
    except OSError as exc:
        log.error("deadline alert not delivered webhook_conn_id=%s error=%s", webhook_conn_id, exc)
        return False
    return True
