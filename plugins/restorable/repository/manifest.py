"""The manifest: everything needed to restore a backup and to judge it, stored beside it.

It is written last; its presence in the bucket is the commit of the backup. It holds public
facts only: public keys (recipients), never identities or passwords.
"""

from __future__ import annotations

import secrets
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from hashlib import sha256
from typing import Any

from restorable.exceptions import IntegrityError
from restorable.metadata import SnapshotMetadata

FORMAT = "restorable.repository.manifest/1"


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


@dataclass
class StoredObject:
    key: str
    plain_bytes: int
    stored_bytes: int
    plain_sha256: str
    stored_sha256: str
    parts: int
    part_size: int
    version_id: str | None = None


@dataclass
class BackupManifest:
    backup_id: str
    database_id: str
    engine: str
    dump_format: str
    created_at: str
    finished_at: str
    data: StoredObject
    metadata: SnapshotMetadata
    compression: dict[str, Any]
    encryption: dict[str, Any]
    object_lock: dict[str, Any] | None = None
    timings: dict[str, float] = field(default_factory=dict)
    run: dict[str, Any] = field(default_factory=dict)
    source: dict[str, Any] = field(default_factory=dict)
    #: The age-encrypted object holding ``metadata.sealed`` ({"key", "sha256", "bytes"}), if any.
    sealed: dict[str, Any] | None = None
    format: str = FORMAT

    @property
    def created(self) -> datetime:
        return parse_iso(self.created_at)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        # Sealed values go into their own encrypted object, never into the manifest.
        data["metadata"].pop("sealed", None)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> BackupManifest:
        if data.get("format") != FORMAT:
            raise IntegrityError(
                f"manifest format {data.get('format')!r} is not {FORMAT!r}",
                database=data.get("database_id"),
                backup_id=data.get("backup_id"),
                hint="This manifest was written by another tool or version",
            )
        fields = dict(data)
        fields["data"] = StoredObject(**data["data"])
        fields["metadata"] = SnapshotMetadata(**data["metadata"])
        return cls(**fields)

    def summary(self) -> dict[str, Any]:
        """Small figures for XCom, Asset events and the CLI table (no schema, no counts)."""
        seconds = self.timings.get("total_seconds") or 0.0
        return {
            "backup_id": self.backup_id,
            "database_id": self.database_id,
            "engine": self.engine,
            "created_at": self.created_at,
            "plain_bytes": self.data.plain_bytes,
            "stored_bytes": self.data.stored_bytes,
            "plain_sha256": self.data.plain_sha256,
            "stored_sha256": self.data.stored_sha256,
            "tables": len(self.metadata.row_counts),
            "rows": sum(self.metadata.row_counts.values()),
            "seconds": round(seconds, 3),
            "mb_per_s": round(self.data.plain_bytes / seconds / 1e6, 1) if seconds else None,
            "key": self.data.key,
        }
