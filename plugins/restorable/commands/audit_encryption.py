"""``restorable audit-encryption DB|--all``: list every object under the prefix that is not age ciphertext.

Tools have shipped "encrypted" backups whose bytes were plaintext; this reads the first bytes of every
object (no key needed, see ``stream/header.py``) instead of trusting any config or manifest. What the
layout calls metadata is plaintext JSON by design and is counted apart: manifests, summaries, leases,
verification records, monitor state, and wrapped keys (KMS ciphertext, not age). Everything else, the
data, sealed and WAL objects and anything the layout does not know, must start with the age header.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from restorable.exceptions import IntegrityError
from restorable.repository.layout import MONITOR, KeyKind
from restorable.stream.header import HEADER_READ, read_header

if TYPE_CHECKING:
    from restorable.services import Services

#: Plaintext by design: what lists, judges and locks backups, and KMS-wrapped keys.
METADATA_KINDS = frozenset(
    {KeyKind.MANIFEST, KeyKind.SUMMARY, KeyKind.LEASE, KeyKind.VERIFICATION, KeyKind.WRAPPED_KEY, KeyKind.KEY}
)


@dataclass
class EncryptionAudit:
    prefix: str
    scanned: int = 0
    ciphertext: int = 0
    metadata: int = 0
    not_encrypted: list[dict[str, str]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.not_encrypted

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "ok": self.ok}


def audit_encryption(services: Services, database_id: str | None) -> EncryptionAudit:
    """Scan ``<prefix>/<db>/`` (or the whole prefix with ``database_id=None``)."""
    catalog = services.catalog("restore")
    layout, store = catalog.layout, catalog.store
    prefix = layout.database_prefix(database_id) if database_id else layout.root
    audit = EncryptionAudit(prefix)
    for obj in store.list_objects(prefix):
        audit.scanned += 1
        parsed = layout.parse(obj.key)
        is_monitor = parsed.database is not None and obj.key.startswith(
            f"{layout.database_prefix(parsed.database)}{MONITOR}/"
        )
        if parsed.kind in METADATA_KINDS or is_monitor:
            audit.metadata += 1
            continue
        body = store.open_read(obj.key)
        try:
            head = body.read(HEADER_READ)
        finally:
            body.close()
        header = read_header(head)
        if header.is_age and not header.problem and not header.other:
            audit.ciphertext += 1
            continue
        problem = header.problem or f"has age stanzas of type {', '.join(header.other)}"
        audit.not_encrypted.append({"key": obj.key, "kind": parsed.kind.value, "problem": problem})
    return audit


def audit_failure(audit: EncryptionAudit) -> IntegrityError | None:
    if audit.ok:
        return None
    return IntegrityError(
        f"{len(audit.not_encrypted)} object(s) under {audit.prefix or 'the bucket root'} are not age ciphertext: "
        + ", ".join(item["key"] for item in audit.not_encrypted[:20]),
        hint="Find out who wrote them (a plaintext copy of a backup is a leak); remove them, and rotate what they hold",
    )
