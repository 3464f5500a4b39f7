"""Each duty runs with its own least-privilege S3 identity, and each identity is enough.

SeaweedFS is started with the three roles of include/iam/ (backup writer, lifecycle manager,
restore reader); the config names one connection per duty. Backup, verify, restore, drill
evidence and lifecycle enforcement all succeed with only their own rights, and the writer's
and reader's rights really are limited.
"""

from __future__ import annotations

import json
from datetime import timedelta

import botocore.exceptions
import pytest

from devstack.chain import make_chain
from devstack.seaweedfs import SeaweedS3
from devstack.seaweedfs_roles import seaweedfs_bucket_policy, seaweedfs_identities
from restorable.commands.backup import run_backup
from restorable.commands.restore import restore_backup
from restorable.commands.verify import verify_backup
from restorable.lifecycle.apply import enforce, scan_bucket
from restorable.lifecycle.policy import policy_from_config
from restorable.lifecycle.roles import BACKUP_WRITER, LIFECYCLE_MANAGER, RESTORE_READER
from restorable.repository.manifest import utcnow

pytestmark = pytest.mark.integration
BUCKET = "least-privilege"


@pytest.fixture
def roles_s3(tmp_path):
    server = SeaweedS3(tmp_path / "seaweedfs", identities=seaweedfs_identities(bucket=BUCKET))
    server.start()
    try:
        server.create_bucket(BUCKET, object_lock=True, versioning=True)
        server.client().put_bucket_policy(Bucket=BUCKET, Policy=json.dumps(seaweedfs_bucket_policy(BUCKET)))
        yield server
    finally:
        server.stop()


def test_every_duty_works_with_its_own_identity_only(tmp_path, roles_s3, pg_sample, pg_target_server):
    chain = make_chain(
        tmp_path,
        source=pg_sample,
        engine="postgres",
        bucket=BUCKET,
        s3=roles_s3.identity_connection(BACKUP_WRITER),
        lifecycle_s3=roles_s3.identity_connection(LIFECYCLE_MANAGER),
        restore_s3=roles_s3.identity_connection(RESTORE_READER),
        target=pg_target_server.connection("postgres"),
    )
    first = run_backup(chain.services, "shop")
    second = run_backup(chain.services, "shop")
    assert verify_backup(chain.services, "shop", second.backup_id)["record_key"]  # read as reader, recorded as writer
    report = restore_backup(chain.services, "shop", second.backup_id, target=chain.target, database="least_priv")
    assert report.ok

    writer = chain.services.store("backup")
    reader = chain.services.store("restore")
    with pytest.raises(botocore.exceptions.ClientError):
        writer.client.delete_object(Bucket=BUCKET, Key=first.dump.key)
    with pytest.raises(botocore.exceptions.ClientError):
        reader.client.put_object(Bucket=BUCKET, Key="restorable/shop/x", Body=b"x")

    # The lifecycle manager removes the older backup under keep_last 1 (no lock configured here).
    lifecycle = chain.services.store("lifecycle")
    policy = policy_from_config({"keep_last": 1, "min_verified": 1}, where="test")
    result = enforce(
        lifecycle,
        scan_bucket(lifecycle, "restorable"),
        {"shop": policy},
        utcnow() + timedelta(days=1),
        dry_run=False,
        orphan_min_age=timedelta(days=1),
    )
    assert [o.backup_id for o in result.deleted] == [first.backup_id], result.to_dict()
    assert chain.services.catalog("restore").backup_ids("shop") == [second.backup_id]
    pg_target_server.drop_database("least_priv")
