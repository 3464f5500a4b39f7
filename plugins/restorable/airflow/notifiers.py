"""Alerts: one Slack-compatible JSON message per failed task, to the configured webhook.

Wired as ``on_failure_callback``: it fires once a task has failed for good (after its
retries, or at once for a permanent error such as a validation mismatch), never on start or
on retry. The message names the database, the backup, the DAG and task, the failing step,
the error (secrets scrubbed) and the runbook to follow.
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
}
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
        if not self.webhook_conn_id:
            return
        from airflow.sdk import BaseHook

        try:
            url = webhook_url(BaseHook.get_connection(self.webhook_conn_id))
        except Exception as exc:  # not defined: say so, but never mask the task's own failure
            log.error("alert not sent: webhook connection %s unusable: %s", self.webhook_conn_id, type(exc).__name__)
            return
        body = json.dumps(self.payload(context), default=str).encode()
        request = urllib.request.Request(url, data=body, method="POST", headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:  # noqa: S310 (URL from config)
                response.read()
        except OSError as exc:
            # An alert that cannot be sent must not hide the task's own failure.
            log.error("alert not delivered webhook_conn_id=%s error=%s", self.webhook_conn_id, exc)
