"""Key rotation without touching the data: rewrap every backup's identity under the KMS key's newest version.

``rotate_keys`` walks every committed envelope-mode backup, and for each whose newest key object is
under an older KMS key version: rewraps the ciphertext (transit ``rewrap``: the identity never leaves
the KMS), writes the result as a new key object beside the old ones (``<backup>/keys/<ts>-v<N>.json``),
reads it back and unwraps it, and checks it yields the recipient the manifest recorded. Only then
does the backup count as rotated. The data and sealed objects are never read or written. Each run is
recorded in ``<prefix>/_keys/rotations/<ts>.json``. Afterwards the administrator may retire the old
key versions (transit ``min_decryption_version``): every backup still opens.

``key_status`` reports, per database, the KMS key versions its backups are wrapped under and how old
each version is against ``encryption.envelope.rotation_period``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from restorable.exceptions import IntegrityError, RestorableError
from restorable.keys.envelope import PROVIDER, EnvelopeProvider, KeyRecord, _envelope, key_object, kms_for
from restorable.logs import backup_log

if TYPE_CHECKING:
    from restorable.services import Services


@dataclass
class RotationReport:
    key_name: str
    latest_version: int
    rotated: list[dict[str, Any]] = field(default_factory=list)
    current: list[dict[str, Any]] = field(default_factory=list)
    failed: list[dict[str, Any]] = field(default_factory=list)
    #: Backups made with static recipients only (nothing to rewrap).
    static: int = 0
    record_key: str | None = None

    @property
    def ok(self) -> bool:
        return not self.failed

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "ok": self.ok}


def _envelope_manifests(services: Services, database_ids: list[str] | None):
    catalog = services.catalog("restore")
    for database_id in database_ids or catalog.database_ids():
        for backup_id in catalog.backup_ids(database_id):
            try:
                manifest = catalog.read_manifest(database_id, backup_id)
            except IntegrityError:
                continue  # a damaged manifest is listed by `list`/`verify`; nothing to rewrap here
            yield manifest


def rotate_keys(services: Services, database_ids: list[str] | None = None, *, rotate_kms_key: bool = False):
    """Rewrap every envelope backup's key under the newest KMS key version; see the module doc."""
    from restorable.repository.manifest import utcnow

    envelope = _envelope(services, "keys rotate rewraps envelope-mode keys")
    kms = kms_for(services, envelope.rotate_conn_id)
    if rotate_kms_key:
        # The yearly step: a new key version first (the rotate connection needs transit/keys/<key>/rotate).
        kms.rotate_key()
    latest = kms.versions().latest_version
    writer = services.catalog("backup")
    provider = EnvelopeProvider(services)
    report = RotationReport(envelope.key, latest)
    stamp = utcnow().strftime("%Y%m%dT%H%M%S%fZ")
    for manifest in _envelope_manifests(services, database_ids):
        if (manifest.encryption or {}).get("provider") != PROVIDER:
            report.static += 1
            continue
        item = {"database_id": manifest.database_id, "backup_id": manifest.backup_id}
        log = backup_log(__name__, manifest.database_id, manifest.backup_id)
        try:
            record, _identity = provider.unwrap_current(writer.store, manifest, kms)
            del _identity  # proof that the current record opens; not needed further
            if record.key_version >= latest:
                report.current.append({**item, "key_version": record.key_version})
                continue
            rewrapped = kms.rewrap(record.ciphertext)
            key = writer.layout.rewrapped_key(manifest.database_id, manifest.backup_id, stamp, latest)
            body = key_object(
                manifest.database_id,
                manifest.backup_id,
                kms.backend,
                envelope.key,
                kms.version_of(rewrapped),
                rewrapped,
                record.recipient,
            )
            writer.store.put_bytes(
                key, body, if_none_match=True, content_type="application/json", **_lock_of(manifest, utcnow())
            )
            # Proven before it counts: read back what was stored and unwrap it to this backup's recipient.
            stored = KeyRecord.parse(key, writer.store.get_bytes(key))
            _prove(kms, stored, manifest.encryption["envelope_recipient"])
            report.rotated.append(
                {**item, "from_version": record.key_version, "to_version": stored.key_version, "key": key}
            )
            log.info("backup key rewrapped", from_version=record.key_version, to_version=stored.key_version)
        except RestorableError as exc:
            log.error("backup key not rewrapped", error=exc.message)
            report.failed.append({**item, "error": exc.message})
    report.record_key = writer.layout.keys_prefix + f"rotations/{stamp}.json"
    writer.store.put_json(report.record_key, report.to_dict())
    return report


def _lock_of(manifest: Any, now: Any) -> dict[str, Any]:
    """The backup's own Object Lock for its new key object, while that lock still runs."""
    from restorable.repository.manifest import parse_iso

    lock = manifest.object_lock or {}
    if not lock.get("retain_until") or parse_iso(lock["retain_until"]) <= now:
        return {}
    return {"lock_mode": lock["mode"], "retain_until": parse_iso(lock["retain_until"])}


def _prove(kms: Any, record: KeyRecord, recipient: str) -> None:
    from restorable.stream.keys import recipient_of

    if recipient_of(kms.decrypt(record.ciphertext).decode()) != recipient:
        raise IntegrityError(
            f"rewrapped key object {record.key} does not unwrap to the backup's recipient",
            hint="Do not retire the old key version; investigate the KMS and the bucket",
        )


def key_status(services: Services, database_ids: list[str] | None = None) -> dict[str, Any]:
    """Per database: the KMS key versions in use, each one's age, and what the rotation policy says."""
    from restorable.repository.manifest import utcnow

    envelope = _envelope(services, "keys status reads the KMS key of envelope mode")
    kms = kms_for(services, envelope.rotate_conn_id)
    versions = kms.versions()
    provider = EnvelopeProvider(services)
    store = services.catalog("restore").store
    now = utcnow()
    databases: dict[str, dict[str, Any]] = {}
    for manifest in _envelope_manifests(services, database_ids):
        row = databases.setdefault(manifest.database_id, {"versions": {}, "static_backups": 0, "backups": 0})
        row["backups"] += 1
        if (manifest.encryption or {}).get("provider") != PROVIDER:
            row["static_backups"] += 1
            continue
        records = provider.records(store, manifest)
        version = records[0].key_version if records else None
        row["versions"][version] = row["versions"].get(version, 0) + 1
    period = envelope.rotation_period.total_seconds()
    latest_age = (now - versions.created[versions.latest_version]).total_seconds()
    result = {
        "key_name": versions.name,
        "latest_version": versions.latest_version,
        "min_decryption_version": versions.min_decryption_version,
        "latest_version_age_seconds": round(latest_age),
        "rotation_period_seconds": round(period),
        "key_rotation_due": latest_age > period,
        "databases": {},
    }
    for database_id, row in sorted(databases.items()):
        in_use = []
        for version, count in sorted(row["versions"].items(), key=lambda kv: kv[0] or 0):
            created = versions.created.get(version) if version is not None else None
            age = (now - created).total_seconds() if created else None
            in_use.append(
                {
                    "key_version": version,
                    "backups": count,
                    "age_seconds": round(age) if age is not None else None,
                    "due": age is None or age > period or version < versions.latest_version,
                    "retired": version is None or version < versions.min_decryption_version,
                }
            )
        result["databases"][database_id] = {
            "backups": row["backups"],
            "static_backups": row["static_backups"],
            "key_versions": in_use,
            "rewrap_needed": any(v["due"] for v in in_use),
        }
    return result
