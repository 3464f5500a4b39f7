"""The static age provider (the default): every backup to ``encryption.recipients``, opened by the
identity connection's key. What Restorable did before key providers existed, unchanged."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from restorable.keys import BackupKeys

if TYPE_CHECKING:
    from restorable.repository.layout import Layout
    from restorable.repository.manifest import BackupManifest
    from restorable.services import Services
    from restorable.storage.protocol import Store


class StaticAgeProvider:
    name = "age"

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
        recipients = tuple(self.services.config.encryption.recipients)
        return BackupKeys(recipients, {"format": "age", "provider": self.name, "recipients": list(recipients)})

    def identity_for(self, store: Store, manifest: BackupManifest) -> str:
        return self.services.identity()
