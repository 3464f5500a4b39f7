"""The reporting period and the runs scheduled in it.

A period is half-open, ``[start, end)``. A date given alone for its end means the whole of that day
(``--from 2026-11-01 --to 2026-11-30`` is November). Scheduled runs are the cron occurrences in the
period, in UTC, which is how the DAG factory schedules them (``CronTriggerTimetable(expr, timezone="UTC")``:
a run's logical date is its scheduled time).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from restorable.exceptions import ConfigError

_DATE_ONLY = re.compile(r"^\d{4}-\d{2}-\d{2}$")
#: Airflow's cron presets, which croniter spells differently or not at all.
_PRESETS = {
    "@hourly": "0 * * * *",
    "@daily": "0 0 * * *",
    "@weekly": "0 0 * * 0",
    "@monthly": "0 0 1 * *",
    "@yearly": "0 0 1 1 *",
}


@dataclass(frozen=True)
class Period:
    start: datetime
    end: datetime

    def __contains__(self, when: datetime) -> bool:
        return self.start <= when < self.end

    @property
    def label(self) -> str:
        return f"{self.start:%Y-%m-%d %H:%M} UTC to {self.end:%Y-%m-%d %H:%M} UTC (end excluded)"


def parse_moment(text: str, *, end: bool, what: str) -> datetime:
    """An ISO date or timestamp (UTC unless it says otherwise); a date alone ends after its day."""
    try:
        when = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ConfigError(
            f"{what}: {text!r} is not a date", hint="Write it like 2026-11-01 or 2026-11-01T00:00Z"
        ) from None
    when = when if when.tzinfo else when.replace(tzinfo=UTC)
    if end and _DATE_ONLY.match(text.strip()):
        when += timedelta(days=1)
    return when.astimezone(UTC)


def period_of(start: str, end: str) -> Period:
    period = Period(parse_moment(start, end=False, what="--from"), parse_moment(end, end=True, what="--to"))
    if period.end <= period.start:
        raise ConfigError(f"the period {start} to {end} is empty", hint="--to must come after --from")
    return period


def previous_month(now: datetime) -> Period:
    """The calendar month before ``now`` (what the monthly ``report__all`` reports)."""
    first = now.astimezone(UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    return Period((first - timedelta(days=1)).replace(day=1), first)


def scheduled_runs(schedule: str | None, period: Period) -> list[datetime]:
    """The cron occurrences of ``schedule`` in ``period`` (none for a manual-only schedule)."""
    if not schedule or schedule == "@once":
        return []
    from croniter import croniter

    expr = _PRESETS.get(schedule, schedule)
    # croniter's next occurrence is strictly after its start: begin just before the period.
    runs = croniter(expr, period.start - timedelta(seconds=1))
    found = []
    while (when := runs.get_next(datetime)) < period.end:
        found.append(when.astimezone(UTC))
    return found


def run_slot(runs: list[datetime], when: datetime) -> datetime | None:
    """The scheduled run ``when`` belongs to: the last one at or before it (None: before the first)."""
    slot = None
    for run in runs:
        if run > when:
            break
        slot = run
    return slot
