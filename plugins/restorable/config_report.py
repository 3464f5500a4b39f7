"""The top-level ``report`` block: the objectives the audit evidence report measures against.

The objectives are the auditor's yardstick, so they are written down in the config rather than in the
report's code: ``backup_success`` (share of scheduled backups committed and verified, default 99.5 %),
``drill_pass`` (share of drills that passed, default 100 %), ``rto`` (the longest restore a drill may
measure, default 1h) and the monthly ``schedule`` of ``report__all``. The RPO objectives are the
ones already configured: ``metrics.max_backup_age`` for logical backups and
``physical.monitor.rpo_objective`` for point-in-time recovery.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from restorable.config import _Fields, _schedule
from restorable.exceptions import ConfigError


@dataclass(frozen=True)
class ReportConfig:
    backup_success_objective: float = 0.995
    drill_pass_objective: float = 1.0
    rto_objective: timedelta = timedelta(hours=1)
    #: ``report__all``: the first of each month, for the month before.
    schedule: str = "0 6 1 * *"


def _ratio(fields: _Fields, key: str, default: float) -> float:
    value = fields.raw(key, default * 100)
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value <= 100:
        raise ConfigError(f"{fields._name(key)}: {value!r} is not a percentage", hint="Write it like 99.5 (percent)")
    return float(value) / 100


def parse_report(data: Any, where: str, env: Mapping[str, str]) -> ReportConfig:
    if data is None:
        return ReportConfig()
    from restorable.lifecycle.policy import parse_duration

    f = _Fields(data, where, env)
    defaults = ReportConfig()
    rto = parse_duration(f.text("rto", "1h"), where=f"{where}.rto")
    if rto <= timedelta(0):
        raise ConfigError(f"{where}.rto: must be longer than zero", hint='For example "1h"')
    config = ReportConfig(
        backup_success_objective=_ratio(f, "backup_success", defaults.backup_success_objective),
        drill_pass_objective=_ratio(f, "drill_pass", defaults.drill_pass_objective),
        rto_objective=rto,
        schedule=_schedule(f, "schedule", defaults.schedule) or defaults.schedule,
    )
    f.check_unknown()
    return config
