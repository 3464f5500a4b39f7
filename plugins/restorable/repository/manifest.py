"""The manifest: everything needed to restore a backup and to judge it, stored beside it.

It is written last; its presence in the bucket is the commit of the backup. It holds public
facts only: public keys (recipients), never identities or passwords.

Format 2 (``restorable.manifest/2``) names the backup's ``kind`` (``logical``: one dump stream;
physical base backups and archive segments come next) and lists every stored object in
``objects[]``, each with a ``role`` (``dump`` for a logical dump), so a backup made of several
objects needs no special case. Format 1 (one ``data`` block, always a logical dump) is still read:
``from_dict`` turns it into the same in-memory shape, and writers only ever write format 2.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import MISSING, asdict, dataclass, field
from dataclasses import fields as dataclass_fields
from datetime import UTC, datetime
from hashlib import sha256
from typing import Any

from restorable.exceptions import IntegrityError
from restorable.metadata import SnapshotMetadata

FORMAT = "restorable.manifest/2"
#: Format 1 as released, and as written for a while by mistake after the repository/ move.
FORMAT_1 = ("restorable.manifest/1", "restorable.repository.manifest/1")
KINDS = ("logical", "physical")
#: The role of the one object of a logical backup.
DUMP = "dump"
#: Roles of a physical base backup's objects: the data directory's tar (``pg_basebackup``'s
#: ``base.tar``, its ``backup_manifest`` inside), one tar per other tablespace, and PostgreSQL's
#: ``backup_manifest`` again as an object of its own (read without decrypting the whole base).
BASE = "base"
TABLESPACE = "tablespace"
PG_MANIFEST = "backup_manifest"


def utcnow() -> datetime:
    return datetime.now(UTC)


def iso(ts: datetime) -> str:
    return ts.astimezone(UTC).isoformat().replace("+00:00", "Z")


def parse_iso(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def new_backup_id(when: datetime, run_key: str | None = None) -> str:
    """A sortable id: UTC time, then 8 hex chars.

    With ``run_key`` (Airflow's dag_id + run_id) the id is deterministic, so a retried run
    writes to the same keys instead of making a duplicate backup.
    """
    stamp = when.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
    suffix = sha256(run_key.encode()).hexdigest()[:8] if run_key else secrets.token_hex(4)
    return f"{stamp}-{suffix}"


def stored_objects_of(raw: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The stored objects a raw manifest of either format lists, without validating the rest.

    For readers that must cope with a damaged or partial manifest (the lifecycle judges what it
    can): format 2's ``objects[]``, format 1's ``data`` block, or nothing.
    """
    if raw.get("format") in FORMAT_1 or "objects" not in raw:
        data = raw.get("data")
        return [data] if isinstance(data, Mapping) else []
    objects = raw.get("objects")
    return [o for o in objects if isinstance(o, Mapping)] if isinstance(objects, list) else []


@dataclass
class StoredObject:
    """One object in the bucket that is part of a backup, as streamed (before and after encoding)."""

    key: str
    plain_bytes: int
    stored_bytes: int
    plain_sha256: str
    stored_sha256: str
    parts: int
    part_size: int
    version_id: str | None = None
    #: What the object is within its backup (``dump`` for a logical dump).
    role: str = DUMP


@dataclass
class BackupManifest:
    backup_id: str
    database_id: str
    engine: str
    dump_format: str
    created_at: str
    finished_at: str
    objects: list[StoredObject]
    metadata: SnapshotMetadata
    compression: dict[str, Any]
    encryption: dict[str, Any]
    object_lock: dict[str, Any] | None = None
    timings: dict[str, float] = field(default_factory=dict)
    run: dict[str, Any] = field(default_factory=dict)
    source: dict[str, Any] = field(default_factory=dict)
    #: The age-encrypted object holding ``metadata.sealed`` ({"key", "sha256", "bytes", "version_id"}), if any.
    sealed: dict[str, Any] | None = None
    kind: str = "logical"
    #: A physical base backup's position: start/stop LSN, timeline, system identifier, label, tablespaces.
    physical: dict[str, Any] | None = None
    #: The WAL a physical base backup needs to be consistent: ``start_segment``, ``stop_segment``, ``timeline``.
    wal: dict[str, Any] | None = None
    format: str = FORMAT

    @property
    def created(self) -> datetime:
        return parse_iso(self.created_at)

    def object(self, role: str) -> StoredObject:
        """The one stored object with ``role``; a clear error when the manifest has none or several."""
        found = [o for o in self.objects if o.role == role]
        if len(found) != 1:
            raise IntegrityError(
                f"the manifest lists {len(found)} objects with role {role!r}, expected one",
                database=self.database_id,
                backup_id=self.backup_id,
                hint=f"A {self.kind} backup of this version has exactly one; the manifest was altered",
            )
        return found[0]

    @property
    def dump(self) -> StoredObject:
        """The dump stream of a logical backup."""
        return self.object(DUMP)

    @property
    def primary(self) -> StoredObject:
        """The object that stands for the backup in summaries: the dump, or a base backup's data tar."""
        return self.object(BASE if self.kind == "physical" else DUMP)

    @property
    def plain_bytes(self) -> int:
        return sum(o.plain_bytes for o in self.objects)

    @property
    def stored_bytes(self) -> int:
        return sum(o.stored_bytes for o in self.objects)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        # Sealed values go into their own encrypted object, never into the manifest.
        data["metadata"].pop("sealed", None)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> BackupManifest:
        """The manifest in ``data``; IntegrityError naming what is missing or malformed, never a TypeError."""
        if not isinstance(data, Mapping):
            raise IntegrityError(
                f"the manifest is not a JSON object (found {type(data).__name__})",
                hint="The manifest is damaged or was not written by Restorable",
            )
        fields = dict(data)
        found = fields.get("format")
        if found in FORMAT_1:
            # Format 1: one "data" block, always a logical dump.
            if not isinstance(fields.get("data"), Mapping):
                raise _malformed(data, "format 1 manifest has no field 'data' (an object)")
            fields["objects"] = [{**fields.pop("data"), "role": DUMP}]
            fields["kind"] = "logical"
        elif found != FORMAT:
            raise IntegrityError(
                f"manifest format {found!r} is not {FORMAT!r} (nor format 1)",
                database=data.get("database_id"),
                backup_id=data.get("backup_id"),
                hint="This manifest was written by another tool or a newer version of Restorable",
            )
        if fields.get("kind") not in KINDS:
            raise IntegrityError(
                f"manifest kind {fields.get('kind')!r} is not one this version reads ({', '.join(KINDS)})",
                database=data.get("database_id"),
                backup_id=data.get("backup_id"),
                hint="Use the version of Restorable that wrote this backup",
            )
        fields["format"] = FORMAT
        _require(data, fields, cls, "the manifest")
        if not isinstance(fields["objects"], list) or not all(isinstance(o, Mapping) for o in fields["objects"]):
            raise _malformed(data, "field 'objects' is not a list of objects")
        for index, obj in enumerate(fields["objects"]):
            _require(data, obj, StoredObject, f"objects[{index}]")
        if not isinstance(fields["metadata"], Mapping):
            raise _malformed(data, "field 'metadata' is not an object")
        _require(data, fields["metadata"], SnapshotMetadata, "metadata")
        try:
            parse_iso(fields["created_at"])
        except (TypeError, ValueError, AttributeError):
            raise _malformed(data, f"field 'created_at' is not a timestamp: {fields['created_at']!r}") from None
        fields["objects"] = [StoredObject(**o) for o in fields["objects"]]
        fields["metadata"] = SnapshotMetadata(**fields["metadata"])
        return cls(**fields)

    def summary(self) -> dict[str, Any]:
        """Small figures for XCom, Asset events and the CLI table (no schema, no counts)."""
        seconds = self.timings.get("total_seconds") or 0.0
        return {
            "backup_id": self.backup_id,
            "database_id": self.database_id,
            "engine": self.engine,
            "created_at": self.created_at,
            "kind": self.kind,
            "objects": len(self.objects),
            "plain_bytes": self.plain_bytes,
            "stored_bytes": self.stored_bytes,
            "plain_sha256": self.primary.plain_sha256,
            "stored_sha256": self.primary.stored_sha256,
            "tables": len(self.metadata.row_counts),
            "rows": sum(self.metadata.row_counts.values()),
            "seconds": round(seconds, 3),
            "mb_per_s": round(self.plain_bytes / seconds / 1e6, 1) if seconds else None,
            "key": self.primary.key,
            **(
                {"stop_lsn": self.physical.get("stop_lsn"), "timeline": self.physical.get("timeline")}
                if self.physical
                else {}
            ),
        }


def _malformed(data: Mapping[str, Any], what: str) -> IntegrityError:
    return IntegrityError(
        f"the manifest is malformed: {what}",
        database=data.get("database_id") if isinstance(data.get("database_id"), str) else None,
        backup_id=data.get("backup_id") if isinstance(data.get("backup_id"), str) else None,
        hint="The manifest is damaged or was not written by Restorable; restore another backup",
    )


def _require(data: Mapping[str, Any], fields: Mapping[str, Any], cls: type, where: str) -> None:
    """Every field ``cls`` needs is in ``fields`` and none it does not know (else IntegrityError naming it)."""
    known = {f.name: f for f in dataclass_fields(cls)}
    missing = [
        name
        for name, f in known.items()
        if name not in fields and f.default is MISSING and f.default_factory is MISSING
    ]
    if missing:
        raise _malformed(data, f"{where} has no field {', '.join(repr(m) for m in missing)}")
    unknown = sorted(set(fields) - set(known))
    if unknown:
        raise _malformed(data, f"{where} has unknown field {', '.join(repr(u) for u in unknown)}")
