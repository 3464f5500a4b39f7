"""What a point-in-time restore aims at, and which base backup can reach it.

The ways a hand-made PITR silently returns the wrong rows are refused here, before a byte is
read: a time without a zone (whose clock?), a target before the chosen base backup's end
(PostgreSQL ignores it and stops at the backup's end), a target before every base backup, and a
target past the newest archived commit (recovery would end early, or FATAL after ``pg_ctl -w``
already returned 0).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from restorable.exceptions import ConfigError, NotFound, RestoreRefused
from restorable.repository.manifest import iso, parse_iso
from restorable.wal.names import format_lsn, parse_lsn

KINDS = ("time", "lsn", "xid", "name", "immediate", "end")


@dataclass(frozen=True)
class RecoveryTarget:
    """``kind`` is one of :data:`KINDS`; ``immediate`` is the base backup's own end, ``end`` all archived WAL."""

    kind: str
    value: str | None = None

    @property
    def time(self) -> datetime | None:
        return parse_iso(self.value) if self.kind == "time" and self.value else None

    @property
    def lsn(self) -> int | None:
        return parse_lsn(self.value) if self.kind == "lsn" and self.value else None

    def settings(self) -> dict[str, str]:
        """The ``recovery_target*`` settings (inclusive: the target's own transaction is in)."""
        if self.kind == "end":
            return {}
        if self.kind == "immediate":
            return {"recovery_target": "immediate"}
        value = self.value or ""
        if self.kind == "time":
            # An explicit offset: PostgreSQL would read a bare time in the restored server's zone.
            value = self.time.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f+00")  # type: ignore[union-attr]
        return {f"recovery_target_{self.kind}": value, "recovery_target_inclusive": "on"}

    def describe(self) -> str:
        return {"end": "the end of the archive", "immediate": "the base backup's end"}.get(
            self.kind, f"{self.kind} {self.value}"
        )


def parse_target(
    *, time: str | None, lsn: str | None, xid: str | None, name: str | None, immediate: bool
) -> RecoveryTarget:
    """The one target given on the command line (none: the end of the archive)."""
    given = [(k, v) for k, v in (("time", time), ("lsn", lsn), ("xid", xid), ("name", name)) if v is not None]
    if immediate:
        given.append(("immediate", None))
    if len(given) > 1:
        raise ConfigError(
            f"give one recovery target, not {len(given)} ({', '.join(k for k, _ in given)})",
            hint="--time, --lsn, --xid, --name or --immediate",
        )
    if not given:
        return RecoveryTarget("end")
    kind, value = given[0]
    if kind == "time":
        try:
            when = datetime.fromisoformat(value.replace("Z", "+00:00"))  # type: ignore[union-attr]
        except ValueError:
            raise ConfigError(
                f"--time {value!r} is not an ISO 8601 time", hint="For example 2026-12-03T14:05:00Z"
            ) from None
        if when.tzinfo is None:
            raise ConfigError(
                f"--time {value!r} has no UTC offset: whose clock is it?",
                hint="Add Z (UTC) or an offset, e.g. 2026-12-03T14:05:00Z or 2026-12-03T15:05:00+01:00",
            )
        return RecoveryTarget("time", iso(when))
    if kind == "lsn":
        try:
            return RecoveryTarget("lsn", format_lsn(parse_lsn(value)))  # type: ignore[arg-type]
        except ValueError as exc:
            raise ConfigError(f"--lsn: {exc}", hint="An LSN as PostgreSQL prints it, e.g. 0/3000148") from None
    if kind == "xid":
        if not value.isdigit():  # type: ignore[union-attr]
            raise ConfigError(f"--xid {value!r} is not a transaction id", hint="A number, as txid_current() gives")
        return RecoveryTarget("xid", value)
    if kind == "name":
        if not value or len(value.encode()) > 63:  # type: ignore[union-attr]
            raise ConfigError(f"--name {value!r} is not a restore point name (1 to 63 bytes)")
        return RecoveryTarget("name", value)
    return RecoveryTarget("immediate")


def reaches(physical: dict[str, Any], target: RecoveryTarget) -> bool | None:
    """Can a base backup (its manifest's ``physical`` block) reach ``target``? None: cannot be told
    before replay (an xid or a restore point name)."""
    if target.kind in ("end", "immediate"):
        return True
    if target.kind == "time":
        return parse_iso(physical["stop_time"]) <= target.time  # type: ignore[operator]
    if target.kind == "lsn":
        return parse_lsn(physical["stop_lsn"]) <= target.lsn  # type: ignore[operator]
    return None


def choose_base(bases: list[Any], target: RecoveryTarget, database_id: str, base_id: str | None = None) -> Any:
    """The newest base backup (manifests, oldest first) that ended before ``target``; ``base_id`` forces one.

    Refused: a target before every base backup's end, and a forced base that ends after the target.
    """
    if not bases:
        raise NotFound(
            f"no physical base backup of {database_id} in the bucket",
            database=database_id,
            hint=f"Take one: restorable base-backup {database_id} (with the WAL archiver running)",
        )
    if base_id is not None:
        chosen = [m for m in bases if m.backup_id == base_id]
        if not chosen:
            raise NotFound(f"base backup {base_id} of {database_id} is not in the bucket", database=database_id)
        if reaches(chosen[0].physical, target) is False:
            raise RestoreRefused(
                f"{target.describe()} is before base backup {base_id} ended ({_end(chosen[0])}): "
                "PostgreSQL would ignore the target and stop at the backup's end",
                database=database_id,
                hint="Choose an older base backup (--base), or leave --base out to let Restorable pick",
            )
        return chosen[0]
    able = [m for m in bases if reaches(m.physical, target) is not False]
    if not able:
        oldest = bases[0]
        raise RestoreRefused(
            f"{target.describe()} is before the oldest base backup of {database_id} ended "
            f"({oldest.backup_id} at {_end(oldest)}): no base backup can reach it",
            database=database_id,
            hint="Pick a later target, or restore a logical backup from before it",
        )
    return able[-1]


def _end(manifest: Any) -> str:
    return f"{manifest.physical.get('stop_time')}, LSN {manifest.physical.get('stop_lsn')}"
