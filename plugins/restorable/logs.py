"""Log lines that say which run they belong to: the database, the backup id and the run id on every line.

Two layers:

- :func:`backup_log` gives a logger whose lines carry ``database=`` and ``backup=`` (and any fields
  passed as keywords): ``log.info("uploaded", parts=3)`` → ``uploaded database=shop backup=2026... parts=3``.
- A *run context* (:func:`start_run`, :func:`bind_run`) names the run a process is doing: the
  database, the backup once it is chosen, and the run id (Airflow's ``run_id``; a CLI run outside
  Airflow gets ``$AIRFLOW_CTX_DAG_RUN_ID`` or a generated ``cli-…`` id, a correlation id all the same).
  Every log record created while it is set carries it, whichever logger made it and whichever thread
  (the upload's worker threads too): the context is process-wide because a process runs one command
  (the CLI) or one task (Airflow's task runner).

How the context reaches the output:

- the CLI installs :func:`configure_logging`: ``key=value`` text by default, or one JSON object per
  line with ``RESTORABLE_LOG_FORMAT=json`` (``time``, ``level``, ``logger``, ``message``, the context
  and the line's own fields as keys; a traceback as ``exception``);
- inside Airflow, whose task logs render only a record's message, Restorable's own records get the
  missing ``key=value`` pairs appended to the message.

Nothing secret belongs in a field: fields are ids, counts, keys and error class names.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import threading
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import IO, Any

LOG_FORMAT_ENV = "RESTORABLE_LOG_FORMAT"
#: The run context's fields, in the order lines show them.
RUN_FIELDS = ("database", "backup", "run_id")

_lock = threading.Lock()
_run: dict[str, str] = {}
#: True while a formatter of ours renders the context (the CLI); else it goes into the message.
_rendered_by_formatter = False
_factory_installed = False


def _fmt(value: Any) -> str:
    text = str(value)
    return f'"{text}"' if (" " in text or "=" in text or not text) else text


def _pairs(fields: Mapping[str, Any]) -> str:
    return " ".join(f"{k}={_fmt(v)}" for k, v in fields.items() if v is not None)


class BackupLog(logging.LoggerAdapter):
    """``log.info("uploaded", parts=3)`` → ``uploaded database=shop backup=2026... parts=3``."""

    def log(self, level: int, msg: object, *args: Any, **fields: Any) -> None:  # type: ignore[override]
        if not self.isEnabledFor(level):
            return
        exc_info = fields.pop("exc_info", None)
        context = {k: v for k, v in {**self.extra, **fields}.items() if v is not None}
        line = " ".join([str(msg), _pairs(context)]).rstrip()
        # The bare event and its fields travel too, for the JSON format.
        extra = {"restorable_event": str(msg), "restorable_fields": context}
        self.logger.log(level, line, *args, exc_info=exc_info, extra=extra)

    def info(self, msg: object, *args: Any, **fields: Any) -> None:  # type: ignore[override]
        self.log(logging.INFO, msg, *args, **fields)

    def warning(self, msg: object, *args: Any, **fields: Any) -> None:  # type: ignore[override]
        self.log(logging.WARNING, msg, *args, **fields)

    def error(self, msg: object, *args: Any, **fields: Any) -> None:  # type: ignore[override]
        self.log(logging.ERROR, msg, *args, **fields)


def backup_log(name: str, database: str, backup_id: str | None = None) -> BackupLog:
    return BackupLog(logging.getLogger(name), {"database": database, "backup": backup_id})


# -- the run context ---------------------------------------------------------------------------
def cli_run_id() -> str:
    """The run id of a CLI run: Airflow's when a task runs the CLI (``AIRFLOW_CTX_DAG_RUN_ID``), else a new one."""
    return os.environ.get("AIRFLOW_CTX_DAG_RUN_ID") or f"cli-{uuid.uuid4().hex[:12]}"


def start_run(*, database: str | None = None, run_id: str | None = None, **fields: str | None) -> None:
    """This process now does this run: every log record from here on carries these fields."""
    global _run
    _install_factory()
    with _lock:
        _run = {k: str(v) for k, v in {"database": database, "run_id": run_id, **fields}.items() if v is not None}


def bind_run(**fields: str | None) -> None:
    """Add fields to the current run (``bind_run(backup=...)`` once the backup id is chosen)."""
    global _run
    with _lock:
        if _run:  # outside a run (a library call, a unit test) there is nothing to bind to
            _run = {**_run, **{k: str(v) for k, v in fields.items() if v is not None}}


def end_run() -> None:
    global _run
    with _lock:
        _run = {}


def current_run() -> dict[str, str]:
    return dict(_run)


def _missing(run: Mapping[str, str], message: str) -> dict[str, str]:
    """The run's fields a message does not hold with the same value. An engine's ``database=`` names
    the server's database, which may differ from the run's (Restorable's database id): both then show."""
    return {k: v for k, v in run.items() if f"{k}={_fmt(v)}" not in message}


def _install_factory() -> None:
    global _factory_installed
    with _lock:
        if _factory_installed:
            return
        previous = logging.getLogRecordFactory()

        def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
            record = previous(*args, **kwargs)
            run = _run
            record.restorable_run = run
            # logging.makeLogRecord (structlog's formatter copies records with it) asks for a blank
            # record first, name None, and fills it from the original's __dict__ afterwards.
            if run and not _rendered_by_formatter and (record.name or "").startswith("restorable"):
                missing = _missing(run, str(record.msg))
                if missing:
                    # %-escape: a record with args is formatted with them later.
                    tail = _pairs(missing).replace("%", "%%") if record.args else _pairs(missing)
                    record.msg = f"{record.msg} {tail}"
            return record

        logging.setLogRecordFactory(factory)
        _factory_installed = True


# -- the CLI's formatters ----------------------------------------------------------------------
def _run_of(record: logging.LogRecord) -> dict[str, str]:
    return getattr(record, "restorable_run", None) or {}


class KeyValueFormatter(logging.Formatter):
    """``time LEVEL logger message key=value…``: the run's fields a line does not already hold, appended."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        message = record.getMessage()
        missing = _missing(_run_of(record), message)
        if not missing:
            return line
        head, sep, trace = line.partition("\n")  # keep the fields on the line, before a traceback
        return f"{head} {_pairs(missing)}{sep}{trace}"


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ``time``, ``level``, ``logger``, ``message``, the run's and the line's fields."""

    def format(self, record: logging.LogRecord) -> str:
        fields = dict(getattr(record, "restorable_fields", None) or {})
        out: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds")[:-6] + "Z",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage() if record.args else getattr(record, "restorable_event", record.getMessage()),
            **_run_of(record),
        }
        for key, value in fields.items():
            out.setdefault(key, value if isinstance(value, int | float | bool) else str(value))
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        return json.dumps(out, ensure_ascii=False)


def log_format() -> str:
    """``text`` or ``json``, as ``$RESTORABLE_LOG_FORMAT`` asks (an unknown value is ``configure_logging``'s error)."""
    return (os.environ.get(LOG_FORMAT_ENV) or "text").strip().lower()


def configure_logging(level: int = logging.INFO, stream: IO[str] | None = None, fmt: str | None = None) -> None:
    """The CLI's logging: text (``key=value``) or, with ``RESTORABLE_LOG_FORMAT=json``, JSON lines.

    Only when nothing configured logging before (as ``logging.basicConfig``): a process embedding the
    CLI keeps its handlers, and the run's fields then go into Restorable's messages instead.
    """
    global _rendered_by_formatter
    from restorable.exceptions import ConfigError

    fmt = (fmt or log_format()).strip().lower()
    if fmt not in ("text", "json"):
        raise ConfigError(f"${LOG_FORMAT_ENV}={fmt!r} is not a log format", hint="Use text or json")
    root = logging.getLogger()
    _install_factory()
    if root.handlers:
        return  # embedded (pytest, an application): like basicConfig, leave its handlers; fields go inline
    root.setLevel(level)
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else KeyValueFormatter())
    root.addHandler(handler)
    _rendered_by_formatter = True
