"""Backups whose manifest is format 1 (written before manifest format 2) still list, verify and restore.

The backup is a real one of the sample database; its manifest is then rewritten in the bucket in
the exact shape the format-1 code wrote (one ``data`` block, no ``kind``, no roles), as a bucket
filled by an older release holds it.
"""

from __future__ import annotations

import json

import pytest

from restorable.commands.backup import run_backup
from restorable.commands.restore import restore_backup
from restorable.commands.verify import verify_backup
from restorable.lifecycle.apply import scan_bucket

pytestmark = pytest.mark.integration


def as_format_1(written: dict) -> dict:
    old = {k: v for k, v in written.items() if k not in ("objects", "kind")}
    (dump,) = written["objects"]
    old["data"] = {k: v for k, v in dump.items() if k != "role"}
    old["format"] = "restorable.manifest/1"
    return old


def test_a_format_1_backup_lists_verifies_restores_and_counts_for_the_lifecycle(pg_cli_chain):
    chain = pg_cli_chain
    catalog = chain.services.catalog("backup")
    manifest = run_backup(chain.services, "shop")
    key = catalog.layout.manifest_key("shop", manifest.backup_id)
    catalog.store.put_json(key, as_format_1(catalog.store.get_json(key)))  # a new version of the manifest
    stored = catalog.store.get_json(key)
    assert stored["format"] == "restorable.manifest/1" and "objects" not in stored

    listed = chain.run_cli("--json", "list", "shop")
    assert listed.returncode == 0, listed.stderr
    assert [b["backup_id"] for b in json.loads(listed.stdout)] == [manifest.backup_id]

    checksum = verify_backup(chain.services, "shop", manifest.backup_id)
    deep = verify_backup(chain.services, "shop", manifest.backup_id, deep=True)
    assert checksum["ok"] and deep["ok"] and deep["found_plain_sha256"] == stored["data"]["plain_sha256"]

    report = restore_backup(chain.services, "shop", manifest.backup_id, target=chain.target, database="from_format_1")
    assert report.ok and report.found_rows == report.expected_rows > 0

    (summary,) = scan_bucket(catalog.store, chain.services.config.storage.prefix).backups["shop"]
    assert summary.complete and summary.verified and summary.size == stored["data"]["stored_bytes"]
    # Reading never rewrites: the manifest in the bucket is still the format-1 one.
    assert catalog.store.get_json(key)["format"] == "restorable.manifest/1"
