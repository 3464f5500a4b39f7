"""``storage.copies``: the second (third, ...) copy of every backup, in another bucket or region (3-2-1).

::

    storage:
      conn_id: restorable_s3
      bucket: backups
      copies:
        - name: eu_west                       # [a-z][a-z0-9_]*: `--from eu_west`, task copy__eu_west
          conn_id: restorable_s3_eu           # writes the copy (put, list, read back; no delete)
          bucket: backups-eu
          prefix: restorable                  # default: the primary's prefix
          object_lock: {mode: GOVERNANCE, days: 30}   # the destination's own retention (none when absent)
          storage_class: STANDARD_IA          # default: the bucket's default class
          restore_conn_id: restorable_s3_eu_reader    # optional, like storage.restore_conn_id
          lifecycle_conn_id: restorable_s3_eu_lifecycle

Parsed with the config's own field reader (``config._Fields``), so its mistakes read like the rest:
the file, the copy and the field, and what to write instead.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from restorable.config import LOCK_MODES, _Fields
from restorable.exceptions import ConfigError

#: A copy's name is used in task ids and on the command line.
COPY_NAME_RE = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
_BUCKET_RE = re.compile(r"^[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9]$")
#: S3's storage classes for objects written directly (not the archive tiers a restore cannot read at once).
STORAGE_CLASSES = (
    "STANDARD",
    "STANDARD_IA",
    "ONEZONE_IA",
    "INTELLIGENT_TIERING",
    "GLACIER_IR",
    "REDUCED_REDUNDANCY",
)


@dataclass(frozen=True)
class CopyDestination:
    """One destination of ``storage.copies``: a bucket (and prefix) that holds a full copy of each backup."""

    name: str
    conn_id: str
    bucket: str
    prefix: str
    lock_mode: str | None = None
    lock_days: int | None = None
    storage_class: str | None = None
    restore_conn_id: str | None = None
    lifecycle_conn_id: str | None = None

    def describe(self) -> str:
        return f"{self.name} (s3://{self.bucket}/{self.prefix})"


def parse_copies(
    data: Any, where: str, env: Mapping[str, str], *, primary: tuple[str, str, str]
) -> tuple[CopyDestination, ...]:
    """The destinations in ``data`` (a list); ``primary`` is (conn_id, bucket, prefix) of the primary storage."""
    if data is None:
        return ()
    if not isinstance(data, list):
        raise ConfigError(
            f"{where}: expected a list of destinations, found {type(data).__name__}",
            hint="Write copies: [{name: eu_west, conn_id: ..., bucket: ...}]",
        )
    copies: list[CopyDestination] = []
    for index, entry in enumerate(data):
        name = entry.get("name") if isinstance(entry, Mapping) else None
        label = f"{where}[{name}]" if isinstance(name, str) and name else f"{where}[{index}]"
        copy = _destination(entry, label, env, primary_prefix=primary[2])
        if any(c.name == copy.name for c in copies):
            raise ConfigError(f"{label}.name: {copy.name!r} is used twice; each copy needs its own name")
        place = (copy.bucket, copy.prefix)
        # Another connection may reach another provider, where the same bucket name is another
        # bucket: ``restorable copy`` checks the endpoint itself before writing anything.
        if (copy.conn_id, *place) == primary:
            raise ConfigError(
                f"{label}: bucket {copy.bucket!r} with prefix {copy.prefix!r} is the primary storage itself",
                hint="A copy must live in another bucket (another region or provider), or at least another prefix",
            )
        clash = next((c for c in copies if (c.bucket, c.prefix) == place), None)
        if clash is not None:
            raise ConfigError(
                f"{label}: bucket {copy.bucket!r} with prefix {copy.prefix!r} is already copy {clash.name!r}"
            )
        copies.append(copy)
    return tuple(copies)


def _destination(data: Any, where: str, env: Mapping[str, str], *, primary_prefix: str) -> CopyDestination:
    f = _Fields(data, where, env)
    name = f.text("name", required=True)
    if not COPY_NAME_RE.match(name):
        raise ConfigError(
            f"{where}.name: {name!r} is not a copy name",
            hint="Use lower-case letters, digits and _ (at most 40), starting with a letter: eu_west",
        )
    bucket = f.text("bucket", required=True)
    if not _BUCKET_RE.match(bucket):
        raise ConfigError(f"{where}.bucket: {bucket!r} is not a valid S3 bucket name")
    lock_mode = lock_days = None
    lock = f.raw("object_lock", None)
    if lock is not None:
        lf = _Fields(lock, f"{where}.object_lock", env)
        lock_mode = str(lf.text("mode", "GOVERNANCE")).upper()
        if lock_mode not in LOCK_MODES:
            raise ConfigError(f"{where}.object_lock.mode: {lock_mode!r} must be GOVERNANCE or COMPLIANCE")
        lock_days = lf.integer("days", 0, minimum=1)
        lf.check_unknown()
    storage_class = f.text("storage_class", None)
    if storage_class is not None and storage_class.upper() not in STORAGE_CLASSES:
        raise ConfigError(
            f"{where}.storage_class: {storage_class!r} is not a storage class a copy can be written in",
            hint=f"Use one of {', '.join(STORAGE_CLASSES)} (archive classes cannot be restored from at once)",
        )
    copy = CopyDestination(
        name=name,
        conn_id=f.text("conn_id", required=True),
        bucket=bucket,
        prefix=f.text("prefix", primary_prefix).strip("/"),
        lock_mode=lock_mode,
        lock_days=lock_days,
        storage_class=storage_class.upper() if storage_class else None,
        restore_conn_id=f.text("restore_conn_id", None),
        lifecycle_conn_id=f.text("lifecycle_conn_id", None),
    )
    f.check_unknown()
    return copy
