"""The object format of one archived binlog file, written by the binlog archiver and read by restores.

Body: the file's bytes → zstd → age (the WAL archive's code: ``wal.objects.encode_wal_file``),
one object per file at ``Layout.binlog_key``. A closed file is written once with a conditional PUT
(If-None-Match) and read back; the live file's snapshot (``<file>.partial``) is overwritten each
time and holds only whole events. User metadata, read by ``verify-binlog`` and restores without
downloading a body:

- ``restorable-sha256`` / ``restorable-size``: the plain file's (a restore checks them after decrypting);
- ``restorable-format``: ``restorable.binlog/1``;
- ``restorable-gtids``: per domain the first and last sequence number in the file (``0:10-16,1:3-3``);
- ``restorable-times``: the first and last event timestamps (UTC epoch seconds, ``first-last``);
- ``restorable-holes``: sequence numbers missing *inside* the file (empty when none).
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass, field
from typing import Any

from restorable.binlog.events import BinlogSummary, Summarizer
from restorable.exceptions import IntegrityError, NotFound, StorageError
from restorable.repository.layout import BINLOG_FILE_RE, Layout, binlog_file_of
from restorable.storage.errors import ObjectExists
from restorable.storage.protocol import Store
from restorable.stream.decode import decode_stream
from restorable.wal.objects import encode_wal_file

BINLOG_FORMAT = "restorable.binlog/1"
META_SHA256 = "restorable-sha256"
META_SIZE = "restorable-size"
META_FORMAT = "restorable-format"
META_GTIDS = "restorable-gtids"
META_TIMES = "restorable-times"
META_HOLES = "restorable-holes"

ARCHIVED = "archived"
ALREADY = "already"
CONFLICT = "conflict"


def file_number(name: str) -> tuple[str, int]:
    """(base name, number) of ``mariadb-bin.000042`` (or its ``.partial``); ValueError otherwise."""
    match = BINLOG_FILE_RE.fullmatch(name)
    if match is None:
        raise ValueError(f"{name!r} is not a binlog file name (such as mariadb-bin.000042)")
    return match["base"], int(match["number"])


def file_name(base: str, number: int, width: int = 6) -> str:
    return f"{base}.{number:0{width}d}"


def format_gtids(ranges: dict[int, tuple[int, int]]) -> str:
    return ",".join(f"{d}:{a}-{b}" for d, (a, b) in sorted(ranges.items()))


def parse_gtids(text: str | None) -> dict[int, tuple[int, int]]:
    out: dict[int, tuple[int, int]] = {}
    for item in (text or "").split(","):
        if not item.strip():
            continue
        domain, _, span = item.partition(":")
        first, _, last = span.partition("-")
        out[int(domain)] = (int(first), int(last))
    return out


@dataclass(frozen=True)
class ArchivedBinlog:
    """One archived binlog object as its metadata describes it."""

    name: str
    key: str
    version_id: str | None
    plain_sha256: str | None
    plain_size: int | None
    stored_size: int
    gtids: dict[int, tuple[int, int]] = field(default_factory=dict)
    first_time: int | None = None
    last_time: int | None = None
    holes: str = ""
    format: str | None = None

    @property
    def partial(self) -> bool:
        return self.name.endswith(".partial")

    @property
    def number(self) -> int:
        return file_number(self.name)[1]

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "key": self.key,
            "plain_size": self.plain_size,
            "gtids": format_gtids(self.gtids),
            "first_time": self.first_time,
            "last_time": self.last_time,
            "holes": self.holes,
        }


def object_metadata(data: bytes, summary: BinlogSummary) -> dict[str, str]:
    times = f"{summary.first_timestamp or 0}-{summary.last_timestamp or 0}"
    return {
        META_SHA256: hashlib.sha256(data).hexdigest(),
        META_SIZE: str(len(data)),
        META_FORMAT: BINLOG_FORMAT,
        META_GTIDS: format_gtids(summary.gtid_ranges()),
        META_TIMES: times,
        META_HOLES: ";".join(summary.holes()),
    }


def _from_head(name: str, key: str, head: dict[str, Any]) -> ArchivedBinlog:
    meta = {k.lower(): v for k, v in (head.get("Metadata") or {}).items()}
    size = meta.get(META_SIZE)
    first, _, last = (meta.get(META_TIMES) or "").partition("-")
    return ArchivedBinlog(
        name=name,
        key=key,
        version_id=head.get("VersionId") or None,
        plain_sha256=meta.get(META_SHA256),
        plain_size=int(size) if size and size.isdigit() else None,
        stored_size=int(head.get("ContentLength") or 0),
        gtids=parse_gtids(meta.get(META_GTIDS)),
        first_time=int(first) if first.isdigit() and int(first) else None,
        last_time=int(last) if last.isdigit() and int(last) else None,
        holes=meta.get(META_HOLES) or "",
        format=meta.get(META_FORMAT),
    )


def archived(store: Store, layout: Layout, database_id: str, name: str) -> ArchivedBinlog | None:
    """The archived object of ``name`` (the first version of a closed file: it is written once), or None."""
    key = layout.binlog_key(database_id, name)
    versions = store.list_versions(key)
    last_marker = max((i for i, v in enumerate(versions) if v.delete_marker), default=-1)
    alive = [v for v in versions[last_marker + 1 :] if not v.delete_marker]
    if not alive:
        return None
    chosen = alive[-1] if name.endswith(".partial") else alive[0]
    head = store.head(key, version_id=None if chosen.version_id == "null" else chosen.version_id)
    return _from_head(name, key, head) if head is not None else None


def list_archived(store: Store, layout: Layout, database_id: str) -> list[ArchivedBinlog]:
    """Every archived binlog object of the database (closed files and live snapshots), in file order."""
    found = []
    for obj in store.list_objects(layout.binlog_prefix(database_id)):
        parsed = layout.parse(obj.key)
        name = binlog_file_of(parsed.name) if parsed.database == database_id else None
        if name is None:
            continue
        item = archived(store, layout, database_id, name)
        if item is not None:
            found.append(item)
    return sorted(found, key=lambda a: (file_number(a.name)[1], a.partial))


@dataclass(frozen=True)
class UploadOutcome:
    name: str
    status: str
    key: str
    plain_size: int
    plain_sha256: str
    summary: BinlogSummary


def upload_binlog(
    store: Store,
    layout: Layout,
    database_id: str,
    name: str,
    data: bytes,
    *,
    recipients: tuple[str, ...],
    level: int = 1,
    partial: bool = False,
    lock_mode: str | None = None,
    retain_until: Any = None,
    summarizer: Summarizer | None = None,
) -> UploadOutcome:
    """Archive one closed file (``partial``: the live file's snapshot, whole events only);
    ``summarizer``: the one that read this file's earlier snapshots (only new events are read)."""
    summary = (summarizer or Summarizer()).feed(data)
    if partial:
        data = data[: summary.complete_bytes]
        name = name + ".partial"
    meta = object_metadata(data, summary)
    key = layout.binlog_key(database_id, name)
    encoded = encode_wal_file(data, recipients=recipients, level=level)
    try:
        result = store.put_bytes(
            key,
            encoded.body,
            if_none_match=not partial,
            lock_mode=None if partial else lock_mode,
            retain_until=None if partial else retain_until,
            metadata=meta,
        )
    except ObjectExists:
        found = archived(store, layout, database_id, name)
        if found is None:
            raise StorageError(f"{store.url(key)} existed and then vanished; will retry") from None
        status = ALREADY if found.plain_sha256 == meta[META_SHA256] else CONFLICT
        return UploadOutcome(name, status, key, len(data), meta[META_SHA256], summary)
    stored = store.get_bytes(key, version_id=result.version_id)
    if hashlib.sha256(stored).hexdigest() != encoded.stored_sha256:
        store.delete_object(key, result.version_id)
        raise StorageError(f"{store.url(key)} read back differently from what was written; removed, will retry")
    return UploadOutcome(name, ARCHIVED, key, len(data), meta[META_SHA256], summary)


def read_binlog(store: Store, item: ArchivedBinlog, identity: str) -> bytes:
    """The plain bytes of an archived binlog, checked against its recorded sha256 and size."""
    if item.format != BINLOG_FORMAT or not item.plain_sha256:
        raise IntegrityError(
            f"{store.url(item.key)} has no {META_SHA256} metadata of format {BINLOG_FORMAT}",
            hint="The object was not written by Restorable's binlog archiver; do not replay it",
        )
    try:
        body = store.get_bytes(item.key, version_id=item.version_id)
    except NotFound:
        raise NotFound(f"{item.name} vanished from the binlog archive ({store.url(item.key)})") from None
    out = io.BytesIO()
    try:
        digests = decode_stream(io.BytesIO(body), out, identity=identity)
    except IntegrityError as exc:
        raise IntegrityError(
            f"archived binlog {item.name} ({store.url(item.key)}) does not decode: {exc.message}",
            hint="Check that the identity matches the archive's recipients; else the object was altered or "
            "damaged, and a restore must not replay it",
        ) from None
    if digests.plain_sha256 != item.plain_sha256 or (
        item.plain_size is not None and digests.plain_bytes != item.plain_size
    ):
        raise IntegrityError(
            f"{item.name} from {store.url(item.key)} decodes to sha256 {digests.plain_sha256}; "
            f"its metadata records {item.plain_sha256}",
            hint="The archived binlog was altered; a restore must not replay it",
        )
    return out.getvalue()
