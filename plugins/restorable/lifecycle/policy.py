"""Retention policy: what a database's backups keep, move and delete, parsed from config.

A policy is read from one database's ``retention`` mapping in ``include/restorable.yaml``::

    retention:
      keep_last: 3            # the 3 newest backups
      keep_daily: 7           # GFS, restic/borg semantics: newest backup of each of the
      keep_weekly: 4          #   last N days / ISO weeks / months / years that have a backup
      keep_monthly: 12
      keep_yearly: 2
      keep_within: 2d         # every backup younger than this (restic --keep-within)
      max_age: 400d           # nothing older is kept by a keep rule
      min_age: 1d             # nothing younger is ever deleted
      min_verified: 1         # the N newest verified backups are always kept
      tiers:                  # each value is the age at which that tier ENDS
        hot: 30d              #   0-30d    STANDARD
        warm: 90d             #   30-90d   STANDARD_IA
        cold: 365d            #   90-365d  GLACIER_IR
        deleteExpired: true   #   past 365d: deleted (unless protected)
        storage_classes: {hot: STANDARD, warm: STANDARD_IA, cold: GLACIER_IR}
      object_lock: {mode: GOVERNANCE, days: 30}

A policy with no keep rule at all (no keep_last, keep_<period> or keep_within) keeps every
backup until ``max_age`` or the last tier's end: "delete after 400 days" needs nothing else.
Periods (days, weeks, ...) are taken in UTC.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from restorable.exceptions import ConfigError

#: Storage class per tier when the config names none. STANDARD_IA and GLACIER_IR are both
#: readable at once (no restore request, unlike GLACIER/DEEP_ARCHIVE), so a restore drill or
#: an incident restore never waits hours for a thaw; they only cost more per read.
DEFAULT_STORAGE_CLASSES: dict[str, str] = {"hot": "STANDARD", "warm": "STANDARD_IA", "cold": "GLACIER_IR"}
TIER_NAMES: tuple[str, ...] = ("hot", "warm", "cold")
LOCK_MODES = ("GOVERNANCE", "COMPLIANCE")

_DURATION = re.compile(r"^\s*(\d+)\s*([smhdw])\s*$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
_GFS_FIELDS = ("keep_daily", "keep_weekly", "keep_monthly", "keep_yearly")
_FIELDS = (
    "keep_last",
    *_GFS_FIELDS,
    "keep_within",
    "max_age",
    "min_age",
    "min_verified",
    "tiers",
    "object_lock",
)


def parse_duration(text: str, *, where: str = "duration") -> timedelta:
    """``"30d"``, ``"12h"``, ``"2w"``, ``"45m"``, ``"90s"`` -> timedelta (one number, one unit)."""
    if isinstance(text, bool) or not isinstance(text, str):
        raise ConfigError(
            f"{where}: {text!r} is not a duration",
            hint='Write a number and a unit as a string, e.g. "30d", "12h", "2w" (units: s m h d w)',
        )
    match = _DURATION.match(text)
    if not match:
        raise ConfigError(
            f"{where}: {text!r} is not a duration",
            hint='Write a number and a unit, e.g. "30d", "12h", "2w" (units: s m h d w)',
        )
    return timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})


def format_duration(value: timedelta) -> str:
    """The inverse of ``parse_duration`` for the largest unit that divides exactly."""
    seconds = int(value.total_seconds())
    for unit, size in (("w", 604800), ("d", 86400), ("h", 3600), ("m", 60)):
        if seconds and seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


@dataclass(frozen=True)
class Tier:
    name: str  # hot / warm / cold
    ends_at: timedelta  # age at which a backup leaves this tier
    storage_class: str


@dataclass(frozen=True)
class TierPolicy:
    """Storage tiers in order; a backup moves forward (hot -> warm -> cold) only, never back."""

    tiers: tuple[Tier, ...]
    delete_expired: bool = False

    @property
    def expires_at(self) -> timedelta:
        """Age past the last tier: deleted when ``delete_expired``, else it stays in the last tier."""
        return self.tiers[-1].ends_at

    def tier_for_age(self, age: timedelta) -> Tier:
        for tier in self.tiers:
            if age < tier.ends_at:
                return tier
        return self.tiers[-1]

    def rank(self, storage_class: str | None) -> int | None:
        """Position of a storage class in the tier order, None if it is not one of ours.

        A missing class is S3's default, STANDARD.
        """
        storage_class = storage_class or "STANDARD"
        for index, tier in enumerate(self.tiers):
            if tier.storage_class == storage_class:
                return index
        return None


@dataclass(frozen=True)
class ObjectLockPolicy:
    mode: str  # GOVERNANCE or COMPLIANCE
    days: int


@dataclass(frozen=True)
class RetentionPolicy:
    keep_last: int = 0
    keep_daily: int = 0
    keep_weekly: int = 0
    keep_monthly: int = 0
    keep_yearly: int = 0
    keep_within: timedelta | None = None
    max_age: timedelta | None = None
    min_age: timedelta | None = None
    min_verified: int = 1
    tiers: TierPolicy | None = None
    object_lock: ObjectLockPolicy | None = None
    #: Where the policy came from, for messages ("include/restorable.yaml: databases[shop].retention").
    source: str = field(default="retention", compare=False)
    #: ``physical.pitr_window``: base backups (and their WAL) that keep every moment of it reachable.
    pitr_window: timedelta | None = None

    @property
    def has_keep_rule(self) -> bool:
        return bool(
            self.keep_last
            or self.keep_daily
            or self.keep_weekly
            or self.keep_monthly
            or self.keep_yearly
            or self.keep_within
        )

    @property
    def expiry(self) -> timedelta | None:
        """Age past which tier expiry deletes a backup (None: tiers never delete)."""
        if self.tiers and self.tiers.delete_expired:
            return self.tiers.expires_at
        return None


def _int_field(mapping: Mapping[str, Any], name: str, where: str, *, minimum: int, default: int) -> int:
    value = mapping.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"{where}.{name}: {value!r} is not a whole number", hint=f"Write e.g. {name}: 7")
    if value < minimum:
        raise ConfigError(f"{where}.{name}: {value} is below the minimum of {minimum}")
    return value


def _duration_field(mapping: Mapping[str, Any], name: str, where: str) -> timedelta | None:
    if mapping.get(name) is None:
        return None
    value = parse_duration(mapping[name], where=f"{where}.{name}")
    if value <= timedelta(0):
        raise ConfigError(f"{where}.{name}: must be longer than zero", hint='Write e.g. "30d"')
    return value


def _tiers_from_config(raw: Any, where: str) -> TierPolicy:
    if not isinstance(raw, Mapping):
        raise ConfigError(
            f"{where}: expected a mapping of tier -> age, got {type(raw).__name__}",
            hint='Write e.g. tiers: {hot: "30d", warm: "90d", cold: "365d", deleteExpired: true}',
        )
    allowed = {*TIER_NAMES, "deleteExpired", "delete_expired", "storage_classes"}
    unknown = sorted(set(raw) - allowed)
    if unknown:
        raise ConfigError(
            f"{where}: unknown key(s) {', '.join(map(str, unknown))}",
            hint=f"Allowed: {', '.join(sorted(allowed))}",
        )
    classes_raw = raw.get("storage_classes") or {}
    if not isinstance(classes_raw, Mapping) or set(classes_raw) - set(TIER_NAMES):
        raise ConfigError(
            f"{where}.storage_classes: expected a mapping with keys among hot, warm, cold",
            hint="Write e.g. storage_classes: {warm: STANDARD_IA, cold: GLACIER_IR}",
        )
    classes = {**DEFAULT_STORAGE_CLASSES, **classes_raw}
    for name, value in classes.items():
        if not isinstance(value, str) or not value:
            raise ConfigError(f"{where}.storage_classes.{name}: {value!r} is not a storage class name")
    tiers: list[Tier] = []
    for name in TIER_NAMES:
        if raw.get(name) is None:
            continue
        ends_at = parse_duration(raw[name], where=f"{where}.{name}")
        if tiers and ends_at <= tiers[-1].ends_at:
            raise ConfigError(
                f"{where}.{name}: {raw[name]} must be longer than {tiers[-1].name} ({raw[tiers[-1].name]})",
                hint="Each tier's value is the age at which it ends, so they grow: hot < warm < cold",
            )
        if ends_at <= timedelta(0):
            raise ConfigError(f"{where}.{name}: must be longer than zero")
        tiers.append(Tier(name, ends_at, classes[name]))
    if not tiers:
        raise ConfigError(f"{where}: names no tier", hint="Give at least one of hot, warm, cold with an age")
    used = [t.storage_class for t in tiers]
    if len(set(used)) != len(used):
        raise ConfigError(
            f"{where}.storage_classes: two tiers use the same storage class ({', '.join(used)})",
            hint="Each tier needs its own class, or transitions could not tell the tiers apart",
        )
    delete_expired = raw.get("deleteExpired", raw.get("delete_expired", False))
    if not isinstance(delete_expired, bool):
        raise ConfigError(f"{where}.deleteExpired: {delete_expired!r} is not true or false")
    return TierPolicy(tuple(tiers), delete_expired)


def _object_lock_from_config(raw: Any, where: str) -> ObjectLockPolicy:
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{where}: expected a mapping", hint="Write e.g. object_lock: {mode: GOVERNANCE, days: 30}")
    unknown = sorted(set(raw) - {"mode", "days"})
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {', '.join(map(str, unknown))}", hint="Allowed: mode, days")
    mode = raw.get("mode", "GOVERNANCE")
    if not isinstance(mode, str) or mode.upper() not in LOCK_MODES:
        raise ConfigError(
            f"{where}.mode: {mode!r} is not an Object Lock mode",
            hint="Use GOVERNANCE (an admin with s3:BypassGovernanceRetention can lift it) or COMPLIANCE "
            "(nobody can, not even the account root)",
        )
    if "days" not in raw:
        raise ConfigError(f"{where}.days: missing", hint="Write e.g. days: 30")
    days = _int_field(raw, "days", where, minimum=1, default=0)
    return ObjectLockPolicy(mode.upper(), days)


def policy_from_config(mapping: Mapping[str, Any] | None, *, where: str) -> RetentionPolicy:
    """Validate one ``retention`` mapping; every error names ``where`` and the field.

    ``where`` locates the mapping, e.g. ``"include/restorable.yaml: databases[shop].retention"``.
    """
    if mapping is None:
        mapping = {}
    if not isinstance(mapping, Mapping):
        raise ConfigError(f"{where}: expected a mapping, got {type(mapping).__name__}")
    unknown = sorted(str(k) for k in set(mapping) - set(_FIELDS))
    if unknown:
        raise ConfigError(f"{where}: unknown field(s) {', '.join(unknown)}", hint=f"Allowed: {', '.join(_FIELDS)}")
    counts = {name: _int_field(mapping, name, where, minimum=0, default=0) for name in ("keep_last", *_GFS_FIELDS)}
    min_verified = _int_field(mapping, "min_verified", where, minimum=1, default=1)
    keep_within = _duration_field(mapping, "keep_within", where)
    max_age = _duration_field(mapping, "max_age", where)
    min_age = _duration_field(mapping, "min_age", where)
    if max_age is not None and min_age is not None and min_age >= max_age:
        raise ConfigError(
            f"{where}.min_age: {mapping['min_age']} is not shorter than max_age {mapping['max_age']}",
            hint="min_age protects young backups from deletion, max_age deletes old ones: min_age < max_age",
        )
    tiers = _tiers_from_config(mapping["tiers"], f"{where}.tiers") if mapping.get("tiers") is not None else None
    if tiers and tiers.delete_expired and min_age is not None and min_age >= tiers.expires_at:
        raise ConfigError(
            f"{where}.min_age: {mapping['min_age']} is not shorter than the last tier's end "
            f"({format_duration(tiers.expires_at)}) with deleteExpired",
        )
    lock = (
        _object_lock_from_config(mapping["object_lock"], f"{where}.object_lock")
        if mapping.get("object_lock") is not None
        else None
    )
    return RetentionPolicy(
        **counts,
        keep_within=keep_within,
        max_age=max_age,
        min_age=min_age,
        min_verified=min_verified,
        tiers=tiers,
        object_lock=lock,
        source=where,
    )
