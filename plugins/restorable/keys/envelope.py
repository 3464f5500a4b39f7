"""Envelope mode: a fresh age identity per backup, wrapped by the KMS, stored beside the backup.

The identity is generated in memory and lives there only: the backup keeps its public recipient
(for the data, the sealed object and the manifest) and hands the secret to the KMS to wrap with the
encrypt right, the only KMS right the backup side holds. The wrapped identity is the backup's key
object (``<backup>/key.json``, named by the layout), written before any data; the manifest records
its key, version and sha256, the KMS key's name and version, and the recipient it must unwrap to.

Rotation (``keys/rotation.py``) never rewrites that object: it adds ``<backup>/keys/<ts>-v<N>.json``,
the same identity rewrapped under a newer KMS key version, so a bucket under Object Lock keeps every
version and the newest record wins. Whichever record is unwrapped, the identity it yields must belong
to the recipient the manifest recorded: a planted key object cannot substitute another key.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from restorable.exceptions import IntegrityError, KeyServiceError, NotFound
from restorable.keys import BackupKeys
from restorable.logs import backup_log

if TYPE_CHECKING:
    from restorable.config_keys import EnvelopeConfig
    from restorable.keys import Kms
    from restorable.repository.layout import Layout
    from restorable.repository.manifest import BackupManifest
    from restorable.services import Services
    from restorable.storage.protocol import Store

KEY_FORMAT = "restorable.key/1"
PROVIDER = "envelope"


def kms_for(services: Services, conn_id: str) -> Kms:
    """The KMS key of ``encryption.envelope`` as the connection ``conn_id``'s credentials may use it."""
    envelope = _envelope(services)
    if envelope.kms == "aws_kms":
        from restorable.keys.aws_kms import AwsKms

        return AwsKms(services.resolve(conn_id), key=envelope.key)
    from restorable.keys.transit import TransitKms

    return TransitKms(services.resolve(conn_id), mount=envelope.mount, key=envelope.key)


def _envelope(services: Services, needed_for: str = "this backup was made in envelope mode") -> EnvelopeConfig:
    envelope = services.config.encryption.envelope
    if envelope is None:
        from restorable.exceptions import ConfigError

        raise ConfigError(
            f"{services.config.path}: {needed_for}, but encryption.envelope is not configured",
            hint="Add encryption.envelope (kms, key and its connections); a restore can also take a break-glass "
            "identity file (--identity-file)",
        )
    return envelope


@dataclass(frozen=True)
class KeyRecord:
    """One stored key object (the backup's own or a rotation's), parsed."""

    key: str
    kms: str
    key_name: str
    key_version: int
    ciphertext: str
    recipient: str
    data: dict[str, Any]

    @classmethod
    def parse(cls, key: str, raw: bytes) -> KeyRecord:
        try:
            data = json.loads(raw)
            if data.get("format") != KEY_FORMAT:
                raise ValueError(f"format {data.get('format')!r}")
            return cls(
                key,
                data["kms"],
                data["key_name"],
                int(data["key_version"]),
                data["ciphertext"],
                data["recipient"],
                data,
            )
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise IntegrityError(
                f"key object {key} is damaged: {exc}",
                hint="Restore with a break-glass identity (--identity-file), or from another backup",
            ) from None


def key_object(
    database_id: str, backup_id: str, kms: str, key_name: str, key_version: int, ciphertext: str, recipient: str
) -> bytes:
    """The bytes of a key object: KMS ciphertext and public facts only."""
    from restorable.repository.manifest import iso, utcnow

    record = {
        "format": KEY_FORMAT,
        "database_id": database_id,
        "backup_id": backup_id,
        "kms": kms,
        "key_name": key_name,
        "key_version": key_version,
        "ciphertext": ciphertext,
        "recipient": recipient,
        "wrapped_at": iso(utcnow()),
    }
    return json.dumps(record, sort_keys=True, indent=1).encode()


class EnvelopeProvider:
    name = PROVIDER

    def __init__(self, services: Services) -> None:
        self.services = services

    def keys_for_backup(
        self,
        store: Store,
        layout: Layout,
        database_id: str,
        backup_id: str,
        *,
        lock_mode: str | None,
        retain_until: datetime | None,
    ) -> BackupKeys:
        from restorable.stream.keys import generate_identity

        envelope = _envelope(self.services)
        kms = kms_for(self.services, envelope.encrypt_conn_id)
        identity, recipient = generate_identity()
        ciphertext = kms.encrypt(identity.encode())
        del identity  # from here on only the KMS can give it back
        key = layout.wrapped_key(database_id, backup_id)
        version = kms.version_of(ciphertext)
        body = key_object(database_id, backup_id, kms.backend, envelope.key, version, ciphertext, recipient)
        written = store.put_bytes(
            key, body, lock_mode=lock_mode, retain_until=retain_until, content_type="application/json"
        )
        record = KeyRecord.parse(key, body)
        static = list(self.services.config.encryption.recipients)
        backup_log(__name__, database_id, backup_id).info(
            "backup key wrapped", kms=kms.backend, key_name=envelope.key, key_version=record.key_version
        )
        return BackupKeys(
            (recipient, *static),
            {
                "format": "age",
                "provider": PROVIDER,
                # Every recipient each encrypted object has: the backup's own first, then the break-glass keys.
                "recipients": [recipient, *static],
                "envelope_recipient": recipient,
                "kms": kms.backend,
                "key_name": envelope.key,
                "key_version": record.key_version,
                "key_object": {
                    "key": key,
                    "version_id": written.version_id if written.version_id not in (None, "null") else None,
                    "sha256": hashlib.sha256(body).hexdigest(),
                    "bytes": len(body),
                },
            },
        )

    # -- restore side -------------------------------------------------------------------------
    def identity_for(self, store: Store, manifest: BackupManifest) -> str:
        """Unwrap the newest key object of ``manifest`` with the restore side's decrypt right."""
        envelope = _envelope(self.services)
        return self.unwrap_current(store, manifest, kms_for(self.services, envelope.decrypt_conn_id))[1]

    def unwrap_current(self, store: Store, manifest: BackupManifest, kms: Kms) -> tuple[KeyRecord, str]:
        """(the record that unwrapped, the identity): the newest rotation's first, the backup's own last.

        A record whose KMS version was retired (``min_decryption_version``) or that does not yield
        the manifest's recipient is passed over for the next older one; when none unwraps, the
        newest one's error is raised.
        """
        from restorable.stream.keys import recipient_of

        first_error: Exception | None = None
        for record in self.records(store, manifest):
            try:
                identity = kms.decrypt(record.ciphertext).decode()
                if recipient_of(identity) != manifest.encryption.get("envelope_recipient"):
                    raise IntegrityError(
                        f"key object {record.key} unwraps to an identity that is not this backup's "
                        f"(recipient {manifest.encryption.get('envelope_recipient')})",
                        database=manifest.database_id,
                        backup_id=manifest.backup_id,
                        hint="The key object was replaced; restore with a break-glass identity or from another backup",
                    )
                return record, identity
            except (KeyServiceError, IntegrityError) as exc:
                if isinstance(exc, KeyServiceError) and "permission denied" in exc.message:
                    raise  # this token may not decrypt at all: an older record will not help
                first_error = first_error or exc
        if first_error is None:
            raise IntegrityError(
                f"backup {manifest.backup_id} has no key object",
                database=manifest.database_id,
                backup_id=manifest.backup_id,
                hint="Restore with a break-glass identity (--identity-file)",
            )
        raise first_error

    def records(self, store: Store, manifest: BackupManifest) -> list[KeyRecord]:
        """The key objects of ``manifest``, newest first: rotations by their stamp, then the backup's own."""
        from restorable.repository.layout import Layout

        layout = Layout(self.services.config.storage.prefix)
        rotated = sorted(
            (o.key for o in store.list_objects(layout.rewrapped_prefix(manifest.database_id, manifest.backup_id))),
            reverse=True,
        )
        found = []
        for key in rotated:
            try:
                found.append(KeyRecord.parse(key, store.get_bytes(key)))
            except (IntegrityError, NotFound) as exc:
                # A damaged (or planted) rotation record must not stop the restore: older ones follow.
                backup_log(__name__, manifest.database_id, manifest.backup_id).warning(
                    "key object skipped", key=key, error=getattr(exc, "message", str(exc))
                )
        own = manifest.encryption.get("key_object") or {}
        try:
            raw = store.get_bytes(own["key"], version_id=own.get("version_id"))
        except NotFound:
            raw = None
        if raw is not None:
            if hashlib.sha256(raw).hexdigest() != own.get("sha256"):
                raise IntegrityError(
                    f"key object {own['key']} differs from the sha256 its manifest recorded",
                    database=manifest.database_id,
                    backup_id=manifest.backup_id,
                    hint="The key object was altered; restore with a break-glass identity or from another backup",
                )
            found.append(KeyRecord.parse(own["key"], raw))
        return found
