"""Structured log lines (key=value) that carry the database and backup id on every line."""

from __future__ import annotations

import logging
from typing import Any


def _fmt(value: Any) -> str:
    text = str(value)
    return f'"{text}"' if (" " in text or "=" in text or not text) else text


class BackupLog(logging.LoggerAdapter):
    """``log.info("uploaded", parts=3)`` → ``uploaded database=shop backup=2026... parts=3``."""

    def log(self, level: int, msg: object, *args: Any, **fields: Any) -> None:  # type: ignore[override]
        if not self.isEnabledFor(level):
            return
        exc_info = fields.pop("exc_info", None)
        context = {**self.extra, **fields}
        line = " ".join([str(msg)] + [f"{k}={_fmt(v)}" for k, v in context.items() if v is not None])
        self.logger.log(level, line, *args, exc_info=exc_info)

    def info(self, msg: object, *args: Any, **fields: Any) -> None:  # type: ignore[override]
        self.log(logging.INFO, msg, *args, **fields)

    def warning(self, msg: object, *args: Any, **fields: Any) -> None:  # type: ignore[override]
        self.log(logging.WARNING, msg, *args, **fields)

    def error(self, msg: object, *args: Any, **fields: Any) -> None:  # type: ignore[override]
        self.log(logging.ERROR, msg, *args, **fields)


def backup_log(name: str, database: str, backup_id: str | None = None) -> BackupLog:
    return BackupLog(logging.getLogger(name), {"database": database, "backup": backup_id})
