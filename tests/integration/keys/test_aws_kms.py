"""Envelope mode with the AWS KMS backend, against moto's server: the API wiring only.

moto implements Encrypt/Decrypt/ReEncrypt (real AES-GCM), RotateKeyOnDemand and ListKeyRotations, but no
key policy or IAM (any credentials may do anything: the encrypt-only backup role is proven against
OpenBao in test_envelope.py), no real rotation (a new backing key, the old ones kept) and no
persistence. What this shows: a backup wrapped through boto3, restored by unwrapping it, and a rotation
that rewraps its key under the newest backing key, counted as key version 2.
"""

from __future__ import annotations

import json

import pytest

from devstack.chain import make_chain
from restorable.commands.backup import run_backup
from restorable.commands.restore import restore_backup
from restorable.keys.rotation import key_status, rotate_keys

pytestmark = pytest.mark.integration


def test_aws_kms_envelope_round_trip_and_rotation(tmp_path, pg_sample, pg_target_server, seaweed, bucket, moto_kms):
    alias = f"alias/restorable-{bucket[-8:]}"
    key_id = moto_kms.create_key(alias)
    kms = {duty: moto_kms.connection(f"restorable_kms_{duty}") for duty in ("encrypt", "decrypt", "rotate")}
    chain = make_chain(
        tmp_path,
        source=pg_sample,
        engine="postgres",
        s3=seaweed.connection(),
        bucket=bucket,
        target=pg_target_server.connection("postgres"),
        kms=kms,
        kms_backend="aws_kms",
        kms_key=alias,
    )
    manifest = run_backup(chain.services, "shop")
    enc = manifest.encryption
    assert (enc["provider"], enc["kms"], enc["key_name"], enc["key_version"]) == ("envelope", "aws_kms", alias, 1)
    wrapped = json.loads(chain.services.store().get_bytes(enc["key_object"]["key"]))
    assert wrapped["ciphertext"].startswith("aws-kms:") and "AGE-SECRET" not in json.dumps(wrapped)

    moto_kms.client().rotate_key_on_demand(KeyId=key_id)
    assert key_status(chain.services)["databases"]["shop"]["rewrap_needed"]
    report = rotate_keys(chain.services)
    assert [(r["from_version"], r["to_version"]) for r in report.rotated] == [(1, 2)] and report.ok
    shop = key_status(chain.services)["databases"]["shop"]
    assert [(v["key_version"], v["backups"]) for v in shop["key_versions"]] == [(2, 1)]

    into = "aws_kms_restored"
    restored = restore_backup(chain.services, "shop", manifest.backup_id, target=chain.target, database=into)
    assert restored.ok, restored.differences
