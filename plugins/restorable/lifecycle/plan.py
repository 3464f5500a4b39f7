"""Decide, for every backup of a database, keep / transition / delete: a pure function.

``plan`` reads nothing and writes nothing; the same backups, policy and ``now`` always give the
same decisions in the same order (database, then newest first). ``restorable.lifecycle.apply``
carries them out.

How a decision is reached, for each database:

1. Keep rules pick backups: ``keep_within``, ``keep_last``, then GFS (``keep_daily`` ... ``keep_yearly``)
   with restic/borg semantics: walking newest to oldest, the newest backup of each of the last N
   days (weeks, months, years) *that have a backup* is kept. Rules are independent; a backup
   picked by several carries every reason. Only complete backups no older than ``max_age``
   and not past the last tier's end (with ``deleteExpired``) are candidates. A policy with no
   keep rule keeps every candidate.
2. Guards keep backups whatever the rules say: the newest verified backup, the
   ``min_verified`` newest verified ones, unverified backups newer than the newest verified one
   (their verification may be running; with no verified backup at all, every unverified one),
   backups younger than ``min_age``, and incomplete ones (a person should look at those).
3. What is left would be deleted, unless it is under legal hold or Object Lock
   (``retain_until > now``): then it is kept and says so.
4. Kept, unprotected backups move forward through the tiers by age (hot -> warm -> cold), never
   back. A backup under lock or hold is not moved: in a versioned bucket the copy would sit
   beside the locked version, which cannot be removed, so it would only double the bill.

Why these rules cannot undo each other: every rule's choice is stable when backups it did not
choose are removed, so applying a plan's deletes and planning again (same ``now``) deletes nothing.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, Literal

from restorable.lifecycle.policy import RetentionPolicy, format_duration

Action = Literal["keep", "transition", "delete"]
RetainedBy = Literal["object_lock", "legal_hold"]


@dataclass(frozen=True)
class BackupSummary:
    """What the lifecycle needs to know of one backup (built from its manifest and objects)."""

    backup_id: str
    database: str
    created_at: datetime
    verified: bool = False
    size: int = 0
    storage_class: str | None = None
    retain_until: datetime | None = None
    legal_hold: bool = False
    complete: bool = True
    #: Key prefix of the backup's objects (``<prefix>/<db>/<backup_id>/``), when known.
    key_prefix: str | None = field(default=None, compare=False)
    #: ``logical`` (a dump) or ``physical`` (a base backup): each kind is planned on its own.
    kind: str = "logical"
    #: A base backup's first WAL segment: the archive from it on is what the backup needs.
    wal_start: str | None = None
    #: A MariaDB dump's binlog file (its snapshot's position): the binlog archive from it on is what it needs.
    binlog_start: str | None = None

    def __post_init__(self) -> None:
        if self.created_at.tzinfo is None:
            raise ValueError(f"backup {self.backup_id}: created_at must be timezone-aware")
        if self.retain_until is not None and self.retain_until.tzinfo is None:
            raise ValueError(f"backup {self.backup_id}: retain_until must be timezone-aware")

    def to_dict(self) -> dict[str, Any]:
        return {
            "backup_id": self.backup_id,
            "database": self.database,
            "created_at": _iso(self.created_at),
            "verified": self.verified,
            "size": self.size,
            "storage_class": self.storage_class,
            "retain_until": _iso(self.retain_until) if self.retain_until else None,
            "legal_hold": self.legal_hold,
            "complete": self.complete,
        }


@dataclass(frozen=True)
class Decision:
    backup_id: str
    action: Action
    reason: str
    target_storage_class: str | None = None
    database: str = ""
    #: Set when only a protection keeps a backup the policy would delete.
    retained_by: RetainedBy | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "database": self.database,
            "backup_id": self.backup_id,
            "action": self.action,
            "reason": self.reason,
            "target_storage_class": self.target_storage_class,
            "retained_by": self.retained_by,
        }


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


# Period keys, in UTC; the key doubles as the human-readable part of the reason.
_PERIODS: tuple[tuple[str, str, Callable[[datetime], str]], ...] = (
    ("keep_daily", "daily", lambda t: t.strftime("%Y-%m-%d")),
    ("keep_weekly", "weekly", lambda t: t.strftime("%G-W%V")),
    ("keep_monthly", "monthly", lambda t: t.strftime("%Y-%m")),
    ("keep_yearly", "yearly", lambda t: t.strftime("%Y")),
)


def _newest_first(backups: Iterable[BackupSummary]) -> list[BackupSummary]:
    return sorted(backups, key=lambda b: (b.created_at, b.backup_id), reverse=True)


def _rule_reasons(candidates: list[BackupSummary], policy: RetentionPolicy, now: datetime) -> dict[str, list[str]]:
    """Which keep rules pick which candidates (candidates newest first)."""
    reasons: dict[str, list[str]] = defaultdict(list)
    if not policy.has_keep_rule:
        if policy.max_age is not None:
            why = f"policy keeps every backup until max_age {format_duration(policy.max_age)}"
        elif policy.expiry is not None:
            why = f"policy keeps every backup until the last tier ends ({format_duration(policy.expiry)})"
        else:
            why = "policy has no keep rule (keeps every backup)"
        for backup in candidates:
            reasons[backup.backup_id].append(why)
        return reasons
    if policy.keep_within is not None:
        window = format_duration(policy.keep_within)
        for backup in candidates:
            if now - backup.created_at < policy.keep_within:
                reasons[backup.backup_id].append(f"within {window} (keep_within)")
    for backup in candidates[: policy.keep_last]:
        reasons[backup.backup_id].append(f"one of the last {policy.keep_last} (keep_last)")
    for field_name, label, period_of in _PERIODS:
        remaining = getattr(policy, field_name)
        last_period = None
        for backup in candidates:
            if remaining <= 0:
                break
            period = period_of(backup.created_at.astimezone(UTC))
            if period != last_period:
                reasons[backup.backup_id].append(f"{label} {period}")
                last_period = period
                remaining -= 1
    return reasons


def _guard_reasons(backups: list[BackupSummary], policy: RetentionPolicy, now: datetime) -> dict[str, list[str]]:
    """Backups kept whatever the rules say (backups newest first)."""
    reasons: dict[str, list[str]] = defaultdict(list)
    complete = [b for b in backups if b.complete]
    verified = [b for b in complete if b.verified]
    if verified:
        reasons[verified[0].backup_id].append("newest verified backup")
        if policy.min_verified > 1:
            for backup in verified[1 : policy.min_verified]:
                reasons[backup.backup_id].append(
                    f"one of the {policy.min_verified} newest verified backups (min_verified)"
                )
        newest_verified = (verified[0].created_at, verified[0].backup_id)
        for backup in complete:
            if not backup.verified and (backup.created_at, backup.backup_id) > newest_verified:
                reasons[backup.backup_id].append("not verified yet, newer than the newest verified backup")
    else:
        for backup in complete:
            reasons[backup.backup_id].append("not verified yet, and no backup of this database is verified")
    if policy.pitr_window is not None:
        # Every moment of the window must stay reachable: the base backups (or MariaDB dumps with a
        # binlog position) made inside it, and the newest one before its start (replay from it
        # reaches the window's first moment).
        start = now - policy.pitr_window
        window = format_duration(policy.pitr_window)
        startable = [b for b in complete if b.kind == "physical" or b.binlog_start]
        what = {b.backup_id: "base backup" if b.kind == "physical" else "binlog-replayable dump" for b in startable}
        for backup in startable:
            if backup.created_at >= start:
                reasons[backup.backup_id].append(f"{what[backup.backup_id]} inside the pitr_window {window}")
        before = [b for b in startable if b.created_at < start]
        if before:
            reasons[before[0].backup_id].append(f"{what[before[0].backup_id]} the pitr_window {window} starts from")
    for backup in backups:
        if not backup.complete:
            reasons[backup.backup_id].append("incomplete (data or manifest missing): never deleted automatically")
        if policy.min_age is not None and now - backup.created_at < policy.min_age:
            reasons[backup.backup_id].append(f"younger than min_age {format_duration(policy.min_age)}")
    return reasons


def _delete_reason(backup: BackupSummary, policy: RetentionPolicy, now: datetime) -> str:
    age = now - backup.created_at
    if policy.expiry is not None and age >= policy.expiry:
        last = policy.tiers.tiers[-1]  # type: ignore[union-attr]
        return f"past the end of the {last.name} tier ({format_duration(last.ends_at)}) with deleteExpired"
    if policy.max_age is not None and age > policy.max_age:
        return f"older than max_age {format_duration(policy.max_age)} ({age.days}d old)"
    return "outside every retention window"


def _is_candidate(backup: BackupSummary, policy: RetentionPolicy, now: datetime) -> bool:
    age = now - backup.created_at
    if not backup.complete:
        return False
    if policy.max_age is not None and age > policy.max_age:
        return False
    return not (policy.expiry is not None and age >= policy.expiry)


def _locked(backup: BackupSummary, now: datetime) -> bool:
    return backup.retain_until is not None and backup.retain_until > now


def _plan_database(backups: list[BackupSummary], policy: RetentionPolicy, now: datetime) -> list[Decision]:
    candidates = [b for b in backups if _is_candidate(b, policy, now)]
    rules = _rule_reasons(candidates, policy, now)
    guards = _guard_reasons(backups, policy, now)
    decisions = []
    for backup in backups:
        why = rules.get(backup.backup_id, []) + guards.get(backup.backup_id, [])
        locked = _locked(backup, now)
        if not why:
            otherwise = _delete_reason(backup, policy, now)
            if backup.legal_hold:
                reason = f"kept: under legal hold (otherwise deleted: {otherwise})"
                decisions.append(Decision(backup.backup_id, "keep", reason, None, backup.database, "legal_hold"))
            elif locked:
                reason = f"retained until {_iso(backup.retain_until)} by Object Lock (otherwise deleted: {otherwise})"
                decisions.append(Decision(backup.backup_id, "keep", reason, None, backup.database, "object_lock"))
            else:
                decisions.append(Decision(backup.backup_id, "delete", f"deleted: {otherwise}", None, backup.database))
            continue
        if backup.legal_hold:
            why.append("under legal hold")
        if locked:
            why.append(f"retained until {_iso(backup.retain_until)} by Object Lock")
        reason = "kept: " + "; ".join(why)
        action, target, note = _transition(backup, policy, now, protected=locked or backup.legal_hold)
        if note:
            reason = f"{reason}; {note}"
        decisions.append(Decision(backup.backup_id, action, reason, target, backup.database))
    return decisions


def _transition(
    backup: BackupSummary, policy: RetentionPolicy, now: datetime, *, protected: bool
) -> tuple[Action, str | None, str | None]:
    """Forward-only tier move of a kept backup: (action, target class, note for the reason)."""
    if policy.tiers is None or not backup.complete:
        return "keep", None, None
    tiers = policy.tiers
    current = tiers.rank(backup.storage_class)
    if current is None:
        return "keep", None, f"storage class {backup.storage_class} is not a configured tier: left as is"
    age = now - backup.created_at
    target = tiers.tier_for_age(age)
    target_rank = tiers.tiers.index(target)
    if target_rank <= current:
        return "keep", None, None
    left = tiers.tiers[target_rank - 1]
    if protected:
        return (
            "keep",
            None,
            f"move to the {target.name} tier ({target.storage_class}) waits for the protection to end",
        )
    note = (
        f"to the {target.name} tier ({target.storage_class}): {age.days}d old, "
        f"the {left.name} tier ends at {format_duration(left.ends_at)}"
    )
    return "transition", target.storage_class, note


def plan(backups: Iterable[BackupSummary], policy: RetentionPolicy, now: datetime) -> list[Decision]:
    """One decision per backup, ordered by database then newest first. Pure and deterministic."""
    if now.tzinfo is None:
        raise ValueError("plan(): now must be timezone-aware")
    by_database: dict[tuple[str, str], list[BackupSummary]] = defaultdict(list)
    for backup in backups:
        # Dumps and base backups are planned apart: keep_last 7 keeps 7 of each, and the newest
        # verified dump does not stand in for the newest verified base backup.
        by_database[(backup.database, backup.kind)].append(backup)
    decisions: list[Decision] = []
    for database, kind in sorted(by_database):
        group = by_database[(database, kind)]
        # The window applies to what replay starts from: base backups, and dumps with a binlog position.
        startable = kind == "physical" or any(b.binlog_start for b in group)
        group_policy = policy if startable else replace(policy, pitr_window=None)
        decisions.extend(_plan_database(_newest_first(group), group_policy, now))
    return decisions


def summarise(decisions: Iterable[Decision]) -> dict[str, int]:
    """Counts per action, for logs: {"keep": 9, "transition": 2, "delete": 3}."""
    counts = {"keep": 0, "transition": 0, "delete": 0}
    for decision in decisions:
        counts[decision.action] += 1
    return counts


__all__ = ["BackupSummary", "Decision", "plan", "summarise"]
