"""MariaDB point-in-time recovery's operators: the binlog monitor and the point-in-time drill.

The rules are in the core (``commands.binlog_monitor``, ``binlog.drill``); the alerting and breach
bookkeeping are the WAL monitor operator's.
"""

from __future__ import annotations

from functools import partial
from typing import Any

from restorable.airflow.operators.base import RestorableOperator
from restorable.airflow.operators.physical import WalMonitorOperator


class BinlogMonitorOperator(WalMonitorOperator):
    """Measure the binlog archive against ``binlog.monitor``; alert once per breach; record the figures."""

    monitored = "binlog"

    def _monitor(self) -> tuple[Any, Any]:
        from restorable.commands.binlog_monitor import STATE_FORMAT, STATE_NAME, evaluate
        from restorable.commands.wal_monitor import record

        return evaluate, partial(record, name=STATE_NAME, state_format=STATE_FORMAT)


class BinlogPitrDrillOperator(RestorableOperator):
    """Restore the newest logical backup plus binlogs to a second between two heartbeats, prove
    exactness, record the evidence (``binlog.drill.run_binlog_drill``); fails on any mismatch."""

    template_fields = ("database_id", "target_time")
    ui_color = "#e3dcf5"

    def __init__(self, *, target_time: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.target_time = target_time

    def execute(self, context: Any) -> dict[str, Any]:
        from restorable.binlog.drill import run_binlog_drill
        from restorable.metrics import pitr_drill_figures
        from restorable.physical.targets import parse_target

        wanted = None
        if self.target_time and str(self.target_time).strip() not in ("", "None"):
            wanted = parse_target(time=str(self.target_time), lsn=None, xid=None, name=None, immediate=False).time
        with self.observed(context, "pitr_drill") as run:
            result = run_binlog_drill(
                self.services, self.database_id, identity=self.services.identity(), target_time=wanted
            )
            run.figures.update(pitr_drill_figures(result.figures, result.ok))
        self.log.info(
            "binlog pitr drill passed database=%s backup=%s target=%s rto_seconds=%s evidence=%s",
            self.database_id,
            result.backup_id,
            result.target,
            result.figures.get("rto_seconds"),
            result.evidence_key,
        )
        return result.to_dict()
