"""Storage classes: moving an object to another class by copying it onto itself.

CopyObject takes at most 5 GiB; larger objects are copied range by range with UploadPartCopy,
so the bytes never pass through this process.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from typing import Any

from restorable.exceptions import NotFound
from restorable.storage.s3.limits import S3_MAX_PART_SIZE, S3_MAX_PARTS

log = logging.getLogger(__name__)


class StorageClassMixin:
    """``S3Store``'s storage-class transition (the store provides ``client``, ``bucket``, ``_call``, ``head``)."""

    client: Any
    bucket: str
    min_part_size: int
    copy_part_threshold: int
    _call: Callable[..., Any]
    url: Callable[[str], str]
    head: Callable[..., dict[str, Any] | None]
    abort_multipart_upload: Callable[[str, str], None]

    def copy_storage_class(self, key: str, storage_class: str) -> str | None:
        """Move an object to another storage class by copying it onto itself; return the new version id.

        Retention and legal hold are carried over to the new version. On a versioned bucket the
        old version remains (under its own lock, if any) until lifecycle deletes it.
        """
        head = self.head(key)
        if head is None:
            raise NotFound(f"{self.url(key)} does not exist (copy to {storage_class})")
        source = {"Bucket": self.bucket, "Key": key}
        if head.get("VersionId"):
            source["VersionId"] = head["VersionId"]
        lock: dict[str, Any] = {}
        if head.get("ObjectLockMode") and head.get("ObjectLockRetainUntilDate"):
            lock["ObjectLockMode"] = head["ObjectLockMode"]
            lock["ObjectLockRetainUntilDate"] = head["ObjectLockRetainUntilDate"]
        if head.get("ObjectLockLegalHoldStatus") == "ON":
            lock["ObjectLockLegalHoldStatus"] = "ON"
        size = int(head.get("ContentLength", 0))
        if size <= self.copy_part_threshold:
            response = self._call(
                "CopyObject",
                key,
                lambda: self.client.copy_object(
                    Bucket=self.bucket,
                    Key=key,
                    CopySource=source,
                    StorageClass=storage_class,
                    MetadataDirective="COPY",
                    **lock,
                ),
            )
            version_id = response.get("VersionId")
        else:
            version_id = self._multipart_copy(key, source, head, storage_class, lock)
        log.info("s3 storage class changed bucket=%s key=%s storage_class=%s", self.bucket, key, storage_class)
        return version_id

    def _multipart_copy(
        self, key: str, source: dict[str, Any], head: dict[str, Any], storage_class: str, lock: dict[str, Any]
    ) -> str | None:
        size = int(head["ContentLength"])
        part = max(self.min_part_size, min(S3_MAX_PART_SIZE, self.copy_part_threshold), -(-size // S3_MAX_PARTS))
        created = self._call(
            "CreateMultipartUpload",
            key,
            lambda: self.client.create_multipart_upload(
                Bucket=self.bucket,
                Key=key,
                StorageClass=storage_class,
                ContentType=head.get("ContentType") or "application/octet-stream",
                Metadata=head.get("Metadata") or {},
                **lock,
            ),
        )
        upload_id = created["UploadId"]
        try:
            parts = []
            for number, start in enumerate(range(0, size, part), start=1):
                end = min(size, start + part) - 1
                response = self._call(
                    "UploadPartCopy",
                    key,
                    lambda n=number, s=start, e=end: self.client.upload_part_copy(
                        Bucket=self.bucket,
                        Key=key,
                        UploadId=upload_id,
                        PartNumber=n,
                        CopySource=source,
                        CopySourceRange=f"bytes={s}-{e}",
                    ),
                )
                parts.append({"PartNumber": number, "ETag": response["CopyPartResult"]["ETag"]})
            done = self._call(
                "CompleteMultipartUpload",
                key,
                lambda: self.client.complete_multipart_upload(
                    Bucket=self.bucket, Key=key, UploadId=upload_id, MultipartUpload={"Parts": parts}
                ),
            )
        except BaseException:
            with contextlib.suppress(Exception):
                self.abort_multipart_upload(key, upload_id)
            raise
        return done.get("VersionId")
