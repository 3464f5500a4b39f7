"""The ``binlog`` block of a MariaDB/MySQL database entry: continuous binlog archiving for PITR.

::

    binlog:
      spool_dir: /var/lib/restorable/binlog/shop   # mariadb-binlog writes here; closed files are uploaded
      replication_conn_id: shop_repl               # REPLICATION SLAVE + REPLICATION CLIENT (default: conn_id)
      heartbeat_interval: 10                       # seconds between heartbeat rows (0: none)
      live_interval: 5                             # seconds between snapshots of the live file (0: none)
      replica_server_id: 4000000001                # the id mariadb-binlog presents to the server
      pitr_window: 7d                              # every moment of this window stays recoverable
      drill_schedule: "0 5 * * 0"                  # pitr_drill__<db> ("": by hand only)
      monitor: {schedule: "*/5 * * * *", rpo_objective: 5m, max_queue_files: 4, max_base_backup_age: 26h}

Parsed with the config's own field reader (``config._Fields``), so its mistakes read alike.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from restorable.config import MonitorConfig, _Fields, _schedule
from restorable.exceptions import ConfigError

#: The heartbeat table, created in the source database itself: its rows are replayed with the
#: database's own events, which is what lets a drill prove a restore stopped exactly at its target.
HEARTBEAT_TABLE = "restorable_heartbeat"


@dataclass(frozen=True)
class BinlogConfig:
    spool_dir: Path
    replication_conn_id: str
    heartbeat_interval: int = 10
    live_interval: int = 5
    #: mariadb-binlog's ``--stop-never-slave-server-id``: unique among the server's replicas.
    replica_server_id: int = 4000000001
    pitr_window: timedelta = timedelta(days=7)
    heartbeat_table: str = HEARTBEAT_TABLE
    #: ``monitor__<db>``'s schedule and objectives (``max_queue_files``: closed files waiting in the
    #: spool; ``max_base_backup_age``: the newest logical backup with a binlog position).
    monitor: MonitorConfig = field(default_factory=lambda: MonitorConfig(max_queue_files=4))
    drill_schedule: str | None = "0 5 * * 0"


def parse_binlog(data: Any, where: str, env: Mapping[str, str], engine: str, conn_id: str) -> BinlogConfig | None:
    if data is None:
        return None
    if engine != "mysql":
        raise ConfigError(
            f"{where}: binlog archiving is for MariaDB/MySQL; this entry's engine is {engine!r}",
            hint="Remove the binlog block (PostgreSQL archives WAL: the physical block)",
        )
    from restorable.config_physical import _monitor
    from restorable.lifecycle.policy import parse_duration

    f = _Fields(data, where, env)
    spool = f.text("spool_dir", required=True)
    if not os.path.isabs(spool):
        raise ConfigError(f"{where}.spool_dir: {spool!r} is not an absolute path", hint="Give an absolute directory")
    window = parse_duration(f.text("pitr_window", "7d"), where=f"{where}.pitr_window")
    config = BinlogConfig(
        spool_dir=Path(spool),
        replication_conn_id=f.text("replication_conn_id", conn_id),
        heartbeat_interval=f.integer("heartbeat_interval", 10, minimum=0, maximum=3600),
        live_interval=f.integer("live_interval", 5, minimum=0, maximum=3600),
        replica_server_id=f.integer("replica_server_id", 4000000001, minimum=1, maximum=4294967295),
        pitr_window=window,
        heartbeat_table=f.text("heartbeat_table", HEARTBEAT_TABLE),
        monitor=_monitor(f.raw("monitor", None), f"{where}.monitor", env)
        if f.raw("monitor", None) is not None
        else MonitorConfig(max_queue_files=4),
        drill_schedule=_schedule(f, "drill_schedule", "0 5 * * 0"),
    )
    f.check_unknown()
    return config
