"""Key providers: to whom a backup is encrypted, and where a restore gets the identity that opens it.

- ``age`` (``keys/age.py``, the default): the static recipients of ``encryption.recipients``; restores
  use the identity connection's age key.
- ``envelope`` (``keys/envelope.py``, with ``encryption.envelope``): a fresh age identity per backup,
  generated in memory, wrapped by the KMS and stored beside the backup as its key object; the data
  and the sealed object are encrypted to its recipient *and* to every static recipient (the offline
  break-glass keys). Restores unwrap it with the restore side's KMS right.

What a backup records about its keys goes into the manifest's ``encryption`` block: public
recipients, provider, KMS key name and version, the key object's key, version and sha256; never
an identity. The backup chain asks ``provider_for`` once per backup and ``identity_for`` per restore.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from restorable.repository.layout import Layout
    from restorable.repository.manifest import BackupManifest
    from restorable.services import Services
    from restorable.storage.protocol import Store


@dataclass(frozen=True)
class BackupKeys:
    """The keys of one backup being written: recipients for every encrypted object, the manifest's record."""

    recipients: tuple[str, ...]
    record: dict[str, Any] = field(default_factory=dict)


class KeyProvider(Protocol):
    """How one kind of key management encrypts a new backup and opens a stored one."""

    name: str

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
        """The recipients of a new backup (writing whatever key object it needs first)."""
        ...

    def identity_for(self, store: Store, manifest: BackupManifest) -> str:
        """The age identity that decrypts ``manifest``'s objects (a secret: never log or store it)."""
        ...


class Kms(Protocol):
    """A KMS key as one connection's credentials may use it (``keys/transit.py``, ``keys/aws_kms.py``).

    The identity it wraps never leaves it in the clear except to ``decrypt``'s caller, the restore side.
    """

    backend: str

    def encrypt(self, plaintext: bytes) -> str:
        """Wrap ``plaintext`` under the key's newest version; the ciphertext as text."""
        ...

    def decrypt(self, ciphertext: str) -> bytes: ...

    def rewrap(self, ciphertext: str) -> str:
        """The same plaintext under the key's newest version, without it leaving the KMS."""
        ...

    def version_of(self, ciphertext: str) -> int:
        """The key version ``ciphertext`` (made just now, or read back) is under."""
        ...

    def versions(self) -> Any:
        """``KeyVersions``: newest version, oldest still decrypting, each one's creation time."""
        ...

    def rotate_key(self) -> None: ...


def provider_for(services: Services) -> KeyProvider:
    """The provider new backups use: envelope when ``encryption.envelope`` is set, else static age."""
    if services.config.encryption.envelope is not None:
        from restorable.keys.envelope import EnvelopeProvider

        return EnvelopeProvider(services)
    from restorable.keys.age import StaticAgeProvider

    return StaticAgeProvider(services)


def identity_for(services: Services, store: Store, manifest: BackupManifest, given: str | None = None) -> str:
    """The identity a restore of ``manifest`` decrypts with: ``given`` (a break-glass key file) when there is
    one, else what the provider that wrote the backup says (whatever the config's provider is today)."""
    if given:
        return given
    if (manifest.encryption or {}).get("provider") == "envelope":
        from restorable.keys.envelope import EnvelopeProvider

        return EnvelopeProvider(services).identity_for(store, manifest)
    from restorable.keys.age import StaticAgeProvider

    return StaticAgeProvider(services).identity_for(store, manifest)
