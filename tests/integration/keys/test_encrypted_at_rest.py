"""Encrypted at rest, proven from the stored bytes: ``audit-encryption`` and ``verify`` read every object's age header.

"Encrypted" backups whose bytes were plaintext have shipped elsewhere; these tests plant plaintext where
ciphertext belongs and expect it found, by a key-less scan and by a checksum-only verify.
"""

from __future__ import annotations

import json

import pytest

from restorable.commands.audit_encryption import audit_encryption
from restorable.commands.backup import run_backup
from restorable.commands.verify import verify_backup
from restorable.exceptions import IntegrityError

pytestmark = pytest.mark.integration


def test_audit_finds_a_plaintext_object_planted_in_the_prefix(pg_cli_chain):
    chain = pg_cli_chain
    manifest = run_backup(chain.services, "shop")
    clean = chain.run_cli("audit-encryption", "--all", "--json")
    assert clean.returncode == 0, clean.stderr
    audit = json.loads(clean.stdout)
    # data and sealed are age; manifest, summary and verification records are metadata.
    assert audit["not_encrypted"] == [] and audit["ciphertext"] >= 1 and audit["metadata"] >= 2

    store = chain.services.store()
    layout = chain.services.catalog().layout
    planted = {
        f"{layout.database_prefix('shop')}exports/customers.csv": b"id,email\n1,alice@example.com\n",
        # Named like ciphertext, inside the backup: the name is no proof.
        f"{layout.backup_prefix('shop', manifest.backup_id)}data.copy.zst.age": b"PGDMP\x01\x0e\x00" + b"\x00" * 64,
    }
    for key, body in planted.items():
        store.put_bytes(key, body)
    found = chain.run_cli("audit-encryption", "shop", "--json")
    assert found.returncode == 6, found.stderr
    listed = {item["key"]: item for item in json.loads(found.stdout)["not_encrypted"]}
    assert set(listed) == set(planted)
    assert all("does not start with the age header" in item["problem"] for item in listed.values())
    assert "not age ciphertext" in found.stderr and "data.copy.zst.age" in found.stderr
    assert audit_encryption(chain.services, None).not_encrypted  # the whole prefix sees them too


def test_verify_fails_a_data_object_replaced_by_a_plaintext_dump_of_the_right_size(pg_cli_chain, seaweed, bucket):
    chain = pg_cli_chain
    manifest = run_backup(chain.services, "shop")
    passed = verify_backup(chain.services, "shop", manifest.backup_id)
    # What the header showed is recorded: one X25519 stanza, the chain's one recipient.
    header = passed["objects"][0]["age_header"]
    assert passed["ok"] and header == {"age": True, "x25519_stanzas": 1, "other_stanzas": []}
    # The same number of bytes, but a plain pg_dump archive: what a backup "encrypted" by mistake holds.
    plain = (b"PGDMP" + b"\x00" * manifest.dump.stored_bytes)[: manifest.dump.stored_bytes]
    client = seaweed.client()
    version = client.put_object(Bucket=bucket, Key=manifest.dump.key, Body=plain)["VersionId"]
    store = chain.services.store()
    manifest_key = chain.services.catalog().layout.manifest_key("shop", manifest.backup_id)
    data = store.get_json(manifest_key)
    data["objects"][0]["version_id"] = version  # the recorded version itself is the plaintext one
    store.put_json(manifest_key, data)

    with pytest.raises(IntegrityError) as info:
        verify_backup(chain.services, "shop", manifest.backup_id)
    message = str(info.value)
    assert f"stored object {manifest.dump.key} is not age ciphertext" in message
    record = chain.services.catalog().verifications("shop", manifest.backup_id)[-1]
    assert record["ok"] is False and any("not age ciphertext" in p for p in record["problems"])
