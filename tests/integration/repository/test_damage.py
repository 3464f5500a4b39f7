"""The catalog under damage, through the CLI against a real bucket (issue 17).

Each test damages what a real backup of the sample database left in the bucket — its manifest,
its data object, the objects it lists, the version it recorded — and asserts what ``list``,
``verify``, ``restore latest`` and the drill's pick make of it: detected, named in one line, exit
code 6 (integrity), never a traceback, and the other backups unaffected.
"""

from __future__ import annotations

import json

import pytest

from restorable.commands.backup import run_backup
from restorable.commands.drill import pick_backup
from restorable.commands.restore import restore_backup
from restorable.commands.verify import verify_backup

pytestmark = pytest.mark.integration


def no_traceback(result) -> None:
    assert "Traceback" not in result.stderr and "Traceback" not in result.stdout, result.stderr


def listed(chain) -> dict[str, dict]:
    result = chain.run_cli("--json", "list", "shop")
    assert result.returncode == 0, result.stderr
    return {row["backup_id"]: row for row in json.loads(result.stdout)}


def damaged_variants(good: bytes) -> dict[str, tuple[bytes, str]]:
    """Ways a manifest gets damaged, and a word the reason must contain."""
    data = json.loads(good)
    missing = {k: v for k, v in data.items() if k != "objects"}
    future = {**data, "format": "restorable.manifest/9"}
    return {
        "truncated": (good[: len(good) // 2], "not valid JSON"),
        "invalid_json": (b"{" + good, "not valid JSON"),
        "missing_field": (json.dumps(missing).encode(), "objects"),
        "future_format": (json.dumps(future).encode(), "restorable.manifest/9"),
    }


def test_a_damaged_manifest_is_reported_and_latest_is_the_newest_intact_backup(pg_cli_chain):
    chain = pg_cli_chain
    store = chain.services.store()
    old = run_backup(chain.services, "shop")
    verify_backup(chain.services, "shop", old.backup_id)
    new = run_backup(chain.services, "shop")
    key = chain.services.catalog().layout.manifest_key("shop", new.backup_id)
    good = store.get_bytes(key)

    for name, (data, word) in damaged_variants(good).items():
        store.put_bytes(key, data)  # a new version of the manifest

        rows = listed(chain)
        assert rows[old.backup_id]["verified"], name
        assert rows[new.backup_id]["damaged"] and word in rows[new.backup_id]["damaged"], (name, rows)
        verified = chain.run_cli("verify", "shop", new.backup_id)
        no_traceback(verified)
        assert verified.returncode == 6, (name, verified.stderr)
        assert key in verified.stderr and word in verified.stderr, (name, verified.stderr)

    # The last damage (a future format) as people see it, and "latest" as the other commands pick it.
    text = chain.run_cli("list", "shop")
    no_traceback(text)
    assert "DAMAGED" in text.stdout and "restorable.manifest/9" in text.stdout, text.stdout
    latest = chain.run_cli("--json", "verify", "shop", "latest")
    assert latest.returncode == 0, latest.stderr
    assert json.loads(latest.stdout)["backup_id"] == old.backup_id
    picked = pick_backup(chain.services, "shop", scratch="drill_shop_damage")
    assert picked.manifest.backup_id == old.backup_id
    restored = chain.run_cli("--json", "restore", "shop", "latest", "--target", "tgt", "--database", "after_damage")
    no_traceback(restored)
    assert restored.returncode == 0, restored.stderr
    assert json.loads(restored.stdout)["backup_id"] == old.backup_id


def test_a_backup_whose_data_object_is_gone_is_skipped_and_its_verification_fails(pg_cli_chain):
    chain = pg_cli_chain
    store = chain.services.store()
    old = run_backup(chain.services, "shop")
    new = run_backup(chain.services, "shop")
    verify_backup(chain.services, "shop", new.backup_id)
    store.delete_object(new.dump.key)

    latest = chain.run_cli("--json", "verify", "shop", "latest")
    assert latest.returncode == 0, latest.stderr
    assert json.loads(latest.stdout)["backup_id"] == old.backup_id
    assert "skipped" in latest.stderr and new.backup_id in latest.stderr

    gone = chain.run_cli("verify", "shop", new.backup_id)
    no_traceback(gone)
    assert gone.returncode == 6 and new.dump.key in gone.stderr, gone.stderr
    row = listed(chain)[new.backup_id]
    assert not row["verified"] and row["last_check"] == "checksum:FAILED"


def test_objects_copied_from_another_backup_or_database_fail_verify(pg_cli_chain):
    chain = pg_cli_chain
    store = chain.services.store()
    layout = chain.services.catalog().layout
    first = run_backup(chain.services, "shop")
    second = run_backup(chain.services, "shop")

    # The second backup's manifest now lists the first one's data block (bytes and sha256 match).
    key = layout.manifest_key("shop", second.backup_id)
    data = store.get_json(key)
    data["objects"] = store.get_json(layout.manifest_key("shop", first.backup_id))["objects"]
    store.put_json(key, data)
    # Another database's manifest pointing at shop's data block.
    crm = {**store.get_json(layout.manifest_key("shop", first.backup_id)), "database_id": "crm"}
    store.put_json(layout.manifest_key("crm", first.backup_id), crm)

    for database, backup_id in (("shop", second.backup_id), ("crm", first.backup_id)):
        for deep in ((), ("--deep",)):
            result = chain.run_cli("verify", database, backup_id, *deep)
            no_traceback(result)
            assert result.returncode == 6, (database, deep, result.stderr)
            assert first.dump.key in result.stderr and "not under" in result.stderr, result.stderr


def test_a_newer_version_or_a_delete_marker_over_the_recorded_one_is_tampering(pg_cli_chain):
    chain = pg_cli_chain
    store = chain.services.store()
    backup = run_backup(chain.services, "shop")
    assert backup.dump.version_id
    assert chain.run_cli("verify", "shop", backup.backup_id).returncode == 0
    assert listed(chain)[backup.backup_id]["verified"]

    store.put_bytes(backup.dump.key, b"not the dump")  # written over the recorded version
    tampered = chain.run_cli("verify", "shop", backup.backup_id)
    no_traceback(tampered)
    assert tampered.returncode == 6 and "newer version" in tampered.stderr, tampered.stderr
    assert not listed(chain)[backup.backup_id]["verified"]

    # The restore reads the version the manifest recorded, not the one written over it.
    report = restore_backup(chain.services, "shop", backup.backup_id, target=chain.target, database="pinned")
    assert report.ok and report.stored_sha256 == backup.dump.stored_sha256

    store.delete_object(backup.dump.key)
    marker = chain.run_cli("verify", "shop", backup.backup_id)
    no_traceback(marker)
    assert marker.returncode == 6 and "delete marker" in marker.stderr, marker.stderr
