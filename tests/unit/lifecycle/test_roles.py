"""The least-privilege IAM documents of include/iam/, with the bucket filled in."""

from __future__ import annotations

import json

from restorable.lifecycle.roles import BACKUP_WRITER, LIFECYCLE_MANAGER, RESTORE_READER, iam_policy


def test_iam_documents_name_the_bucket_and_grant_least_privilege():
    def actions(doc, effect):
        return {a for s in doc["Statement"] if s["Effect"] == effect for a in s["Action"]}

    writer = iam_policy(BACKUP_WRITER, "acme-backups")
    lifecycle = iam_policy(LIFECYCLE_MANAGER, "acme-backups")
    reader = iam_policy(RESTORE_READER, "acme-backups")
    for doc in (writer, lifecycle, reader):
        resources = json.dumps([s["Resource"] for s in doc["Statement"]])
        assert "RESTORABLE_BUCKET" not in resources and "arn:aws:s3:::acme-backups" in resources
    assert not {"s3:DeleteObject", "s3:DeleteObjectVersion"} & actions(writer, "Allow")
    assert {"s3:DeleteObject", "s3:DeleteObjectVersion", "s3:BypassGovernanceRetention"} <= actions(writer, "Deny")
    assert {"s3:DeleteObject", "s3:DeleteObjectVersion", "s3:PutObjectLegalHold"} <= actions(lifecycle, "Allow")
    assert "s3:BypassGovernanceRetention" in actions(lifecycle, "Deny")
    assert actions(reader, "Allow") == {"s3:GetObject", "s3:ListBucket"}
