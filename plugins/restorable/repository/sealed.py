"""The sealed object: values a restore needs that must not sit in the plaintext manifest.

``SnapshotMetadata.sealed`` (database settings, which can hold a secret such as
``app.jwt_secret``) is stored age-encrypted to the backup's recipients as
``<backup>/sealed.json.age``, before the manifest; the manifest records its key, sha256, size and
(in a versioned bucket) the version written, which is the one every read asks for.
Written by the backup, re-read by verify, decrypted by restores: all three go through here.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from restorable.exceptions import DecryptionError, IntegrityError
from restorable.repository.manifest import BackupManifest

if TYPE_CHECKING:
    from restorable.storage.protocol import Store


def write_sealed(
    store: Store,
    key: str,
    values: dict[str, Any],
    recipients: Sequence[str],
    *,
    lock_mode: str | None,
    retain_until: datetime | None,
) -> dict[str, Any] | None:
    """Store ``values`` age-encrypted to ``recipients``; return what the manifest records (None: nothing to seal)."""
    if not values:
        return None
    import pyrage

    from restorable.stream.keys import parse_recipients

    stored = pyrage.encrypt(json.dumps(values, sort_keys=True).encode(), parse_recipients(recipients))
    written = store.put_bytes(key, stored, lock_mode=lock_mode, retain_until=retain_until)
    record = {"key": key, "sha256": hashlib.sha256(stored).hexdigest(), "bytes": len(stored)}
    if written.version_id not in (None, "null"):
        record["version_id"] = written.version_id
    return record


def read_sealed(store: Store, manifest: BackupManifest) -> tuple[bytes, str]:
    """The stored sealed object of ``manifest`` (the version it recorded) and its sha256."""
    sealed = manifest.sealed or {}
    stored = store.get_bytes(sealed["key"], version_id=sealed.get("version_id"))
    return stored, hashlib.sha256(stored).hexdigest()


def open_sealed(store: Store, manifest: BackupManifest, identity: str) -> dict[str, Any]:
    """The values the backup kept out of its manifest, checked against it and decrypted."""
    import pyrage

    from restorable.stream.keys import parse_identity

    sealed = manifest.sealed or {}
    stored, found = read_sealed(store, manifest)
    if found != sealed.get("sha256"):
        raise IntegrityError(
            f"{sealed['key']} has sha256 {found}, the manifest says {sealed.get('sha256')}",
            database=manifest.database_id,
            backup_id=manifest.backup_id,
            hint="The sealed settings were altered; restore another backup or apply the settings by hand",
        )
    try:
        return json.loads(pyrage.decrypt(stored, [parse_identity(identity)]))
    except pyrage.DecryptError as exc:
        raise DecryptionError(
            f"cannot decrypt {sealed['key']} with the identity given: {exc}",
            database=manifest.database_id,
            backup_id=manifest.backup_id,
            hint="Use the age identity whose recipient the backup was encrypted to",
        ) from None
