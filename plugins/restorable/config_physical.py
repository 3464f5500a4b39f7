"""The ``physical`` block of a PostgreSQL database entry: base backups, WAL archiving, the monitor.

Parsed with the same field reader as the rest of the config (``config._Fields``), so its mistakes
read alike: the file, the entry and the field, and what to write instead.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from restorable.config import (
    WAL_MODES,
    MonitorConfig,
    PhysicalConfig,
    WalConfig,
    _Fields,
    _positive_duration,
    _schedule,
    parse_size,
)
from restorable.exceptions import ConfigError


def parse_physical(data: Any, where: str, env: Mapping[str, str], engine: str, db_id: str, conn_id: str):
    if data is None:
        return None
    if engine != "postgres":
        raise ConfigError(
            f"{where}: physical backups with WAL archiving are for PostgreSQL; this entry's engine is {engine!r}",
            hint="Remove the physical block (MariaDB point-in-time recovery archives binlogs instead)",
        )
    from restorable.lifecycle.policy import parse_duration

    f = _Fields(data, where, env)
    enabled = f.boolean("enabled", True)
    schedule = _schedule(f, "schedule", "0 1 * * *")
    replication_conn_id = f.text("replication_conn_id", conn_id)
    window = parse_duration(f.text("pitr_window", "7d"), where=f"{where}.pitr_window")
    wal_wait = parse_duration(f.text("wal_wait", "10m"), where=f"{where}.wal_wait")
    staging = f.text("staging_dir", None)
    if staging is not None and not os.path.isabs(staging):
        raise ConfigError(f"{where}.staging_dir: {staging!r} is not an absolute path")
    monitor = _monitor(f.raw("monitor", None), f"{where}.monitor", env)
    w = _Fields(f.raw("wal", required=True), f"{where}.wal", env)
    mode = w.text("mode", "archive")
    if mode not in WAL_MODES:
        raise ConfigError(f"{where}.wal.mode: {mode!r} is not a WAL mode", hint="Use archive or stream")
    spool = w.text("spool_dir", required=True)
    if not os.path.isabs(spool):
        raise ConfigError(
            f"{where}.wal.spool_dir: {spool!r} is not an absolute path",
            hint="PostgreSQL's archive step and the archiver must agree on it: give an absolute directory",
        )
    spool_max = parse_size(w.raw("spool_max", "8GiB"), f"{where}.wal.spool_max")
    spool_alarm = parse_size(w.raw("spool_alarm", "1GiB"), f"{where}.wal.spool_alarm")
    if spool_alarm >= spool_max:
        raise ConfigError(
            f"{where}.wal.spool_alarm must be smaller than spool_max, or the alarm comes only once the spool is full",
            hint="For example spool_alarm: 1GiB with spool_max: 8GiB",
        )
    wal = WalConfig(
        mode=mode,
        spool_dir=Path(spool),
        spool_max_bytes=spool_max,
        spool_alarm_bytes=spool_alarm,
        upload_concurrency=w.integer("upload_concurrency", 4, minimum=1, maximum=32),
        heartbeat_interval=w.integer("heartbeat_interval", 10, minimum=1, maximum=3600),
        partial_interval=w.integer("partial_interval", 5, minimum=1, maximum=3600),
        slot=w.text("slot", f"restorable_{db_id}" if mode == "stream" else None),
    )
    drill_schedule = _schedule(f, "drill_schedule", "0 5 * * 0")
    w.check_unknown()
    f.check_unknown()
    return PhysicalConfig(
        enabled,
        schedule,
        replication_conn_id,
        wal,
        window,
        wal_wait,
        monitor,
        Path(staging) if staging else None,
        drill_schedule,
    )


def _monitor(data: Any, where: str, env: Mapping[str, str]) -> MonitorConfig:
    if data is None:
        return MonitorConfig()
    m = _Fields(data, where, env)
    schedule = _schedule(m, "schedule", MonitorConfig.schedule)
    if schedule is None:
        raise ConfigError(
            f"{where}.schedule: the monitor must run on a schedule",
            hint='Use a cron expression such as "*/5 * * * *" (the default)',
        )
    monitor = MonitorConfig(
        schedule=schedule,
        rpo_objective=_positive_duration(m, "rpo_objective", "5m"),
        max_queue_files=m.integer("max_queue_files", MonitorConfig.max_queue_files, minimum=1),
        max_base_backup_age=_positive_duration(m, "max_base_backup_age", "26h"),
    )
    m.check_unknown()
    return monitor
