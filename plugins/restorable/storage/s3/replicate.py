"""Server-side copy from another bucket on the same endpoint: the bytes never pass through this process.

Used by ``restorable copy`` (``storage.copies``) when the destination lives on the primary's endpoint
and the destination's credentials may read the primary (else the caller streams the object). Objects
up to 5 GiB take one CopyObject; larger ones are copied range by range with UploadPartCopy.

Some stores ignore Object Lock arguments on CopyObject (SeaweedFS 3.x keeps no retention on the new
version), so the caller reads the retention back and sets it when it is missing.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any

from restorable.storage.s3.limits import S3_MAX_PART_SIZE, S3_MAX_PARTS
from restorable.storage.s3.object_lock import lock_args
from restorable.storage.types import UploadResult

log = logging.getLogger(__name__)


def endpoint_of(client: Any) -> tuple[str, str]:
    """(endpoint URL, region) a boto3 client talks to: two stores with the same one can copy server-side."""
    meta = getattr(client, "meta", None)
    return (str(getattr(meta, "endpoint_url", "") or "").rstrip("/"), str(getattr(meta, "region_name", "") or ""))


class ServerSideCopyMixin:
    """``S3Store.copy_from`` (the store provides ``client``, ``bucket``, ``_call``, ``abort_multipart_upload``)."""

    client: Any
    bucket: str
    min_part_size: int
    copy_part_threshold: int
    _call: Callable[..., Any]
    abort_multipart_upload: Callable[[str, str], None]

    def same_endpoint(self, other: Any) -> bool:
        """Whether ``other`` (another store) is served by this store's endpoint."""
        client = getattr(other, "client", None)
        return client is not None and endpoint_of(client) == endpoint_of(self.client)

    def copy_from(
        self,
        source_bucket: str,
        source_key: str,
        key: str,
        *,
        size: int,
        version_id: str | None = None,
        lock_mode: str | None = None,
        retain_until: datetime | None = None,
        storage_class: str | None = None,
    ) -> UploadResult:
        """Copy ``source_bucket/source_key`` (that version) to ``key`` here, with this side's lock and class."""
        source: dict[str, Any] = {"Bucket": source_bucket, "Key": source_key}
        if version_id and version_id != "null":
            source["VersionId"] = version_id
        extra: dict[str, Any] = {**lock_args(lock_mode, retain_until)}
        if storage_class:
            extra["StorageClass"] = storage_class
        if size <= self.copy_part_threshold:
            response = self._call(
                "CopyObject",
                key,
                lambda: self.client.copy_object(
                    Bucket=self.bucket, Key=key, CopySource=source, MetadataDirective="COPY", **extra
                ),
            )
            etag, parts = (response.get("CopyObjectResult") or {}).get("ETag", ""), 1
            version = response.get("VersionId")
        else:
            etag, parts, version = self._copy_in_parts(key, source, size, extra)
        log.info("s3 server-side copy from=%s/%s to=%s/%s bytes=%d", source_bucket, source_key, self.bucket, key, size)
        return UploadResult(key, size, parts, etag, version, "")

    def _copy_in_parts(
        self, key: str, source: dict[str, Any], size: int, extra: dict[str, Any]
    ) -> tuple[str, int, Any]:
        part = max(self.min_part_size, min(S3_MAX_PART_SIZE, self.copy_part_threshold), -(-size // S3_MAX_PARTS))
        created = self._call(
            "CreateMultipartUpload",
            key,
            lambda: self.client.create_multipart_upload(Bucket=self.bucket, Key=key, **extra),
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
        return done.get("ETag", ""), len(parts), done.get("VersionId")
