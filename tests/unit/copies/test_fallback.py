"""``with_fallback``: which failures of the primary a verified copy may stand in for, and which not."""

from __future__ import annotations

import pytest

from restorable.commands.copy import copy_backup
from restorable.copies import copy_services
from restorable.copies.fallback import with_fallback
from restorable.exceptions import DecryptionError, IntegrityError, NotFound, RestoreRefused, StorageError
from tests.unit.copies.test_copy_backup import commit_verified, services


def reader(primary_error=None):
    """An action that fails on the primary with ``primary_error`` and reads the manifest elsewhere."""

    def action(s, backup_id):
        if s.config.storage.bucket == "backups" and primary_error is not None:
            raise primary_error
        return s.config.storage.bucket, s.catalog().read_manifest("shop", backup_id).backup_id

    return action


def test_the_primary_first_then_the_first_copy_holding_the_backup_verified():
    s = services()
    manifest = commit_verified(s)
    copy_backup(s, "shop", names=["us"])  # eu holds nothing
    assert with_fallback(s, "shop", "latest", reader()) == (("backups", manifest.backup_id), None, None)

    down = StorageError("S3 ListObjectsV2 on s3://backups failed after 2 attempts: connection refused")
    result, copy, reason = with_fallback(s, "shop", "latest", reader(down))
    assert result == ("backups-us", manifest.backup_id) and copy == "us"
    assert reason.startswith("the primary storage is unreachable or refused: S3 ListObjectsV2")

    # A checksum failure names the backup: the copy of that very backup is used.
    flipped = IntegrityError("stored object sha256 differs", backup_id=manifest.backup_id)
    assert with_fallback(s, "shop", "latest", reader(flipped))[0] == ("backups-us", manifest.backup_id)
    gone = NotFound(f"no backup {manifest.backup_id} of shop in the bucket")
    assert with_fallback(s, "shop", manifest.backup_id, reader(gone))[1] == "us"


@pytest.mark.parametrize(
    "error",
    [DecryptionError("the age identity given does not match"), RestoreRefused("database 'x' is not empty")],
)
def test_failures_a_copy_cannot_cure_are_raised_as_they_are(error):
    s = services()
    commit_verified(s)
    copy_backup(s, "shop")
    with pytest.raises(type(error)) as raised:
        with_fallback(s, "shop", "latest", reader(error))
    assert raised.value is error and "copy" not in raised.value.message


def test_an_unverified_copy_is_never_used():
    s = services()
    manifest = commit_verified(s)
    copy_backup(s, "shop", names=["eu"])
    copy_services(s, "eu").catalog().record("shop", manifest.backup_id, "checksum", {"ok": False})
    with pytest.raises(StorageError) as raised:
        with_fallback(s, "shop", "latest", reader(StorageError("connection refused")))
    assert raised.value.message.endswith("no configured copy holds a verified copy of it to fall back to")
