"""The three storage roles, least privilege: backup writer, lifecycle manager, restore reader.

On AWS they are the IAM policy documents in ``include/iam/`` (``RESTORABLE_BUCKET`` is the
placeholder for the bucket name). The local stack makes the same roles on SeaweedFS, which has no
IAM policies on identities, in ``devstack/seaweedfs_roles.py``.

Neither role may bypass governance retention: only an operator with admin keys can.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

BACKUP_WRITER = "backup-writer"
LIFECYCLE_MANAGER = "lifecycle-manager"
RESTORE_READER = "restore-reader"
ROLES = (BACKUP_WRITER, LIFECYCLE_MANAGER, RESTORE_READER)
BUCKET_PLACEHOLDER = "RESTORABLE_BUCKET"


def iam_policy(role: str, bucket: str, *, directory: Path | None = None) -> dict[str, Any]:
    """The AWS IAM policy document of ``role`` from ``include/iam/``, with the bucket filled in."""
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}; expected one of {', '.join(ROLES)}")
    directory = directory or Path(__file__).resolve().parents[3] / "include" / "iam"
    text = (directory / f"{role}.json").read_text()
    return json.loads(text.replace(BUCKET_PLACEHOLDER, bucket))
