"""The ``Store`` protocol: every operation the core performs on object storage.

The core (catalog, commands, lifecycle) types its ``store`` against this protocol, never a
concrete driver, so an in-memory store can stand in for S3 in unit tests. ``S3Store`` is the
production implementation and ``MemoryStore`` the in-memory one; the protocol is
runtime-checkable so a test can assert that a store provides every operation.

Failures are driver-neutral: ``NotFound``, ``StorageError`` and the kinds in
``restorable.storage.errors`` (``ObjectExists``, ``ObjectLocked``, ``AccessDenied``,
``Unsupported``, ``InvalidBucketState``).
"""

from __future__ import annotations

import io
from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from datetime import datetime
from typing import Any, Protocol, runtime_checkable

from restorable.storage.types import ObjectInfo, PendingUpload, UploadResult, VersionInfo


@runtime_checkable
class UploadWriter(Protocol):
    """What ``Store.multipart_upload`` yields: a binary sink whose ``result`` is set on a clean exit."""

    result: UploadResult | None
    bytes_written: int

    def write(self, data: bytes | bytearray | memoryview) -> int: ...

    def flush(self) -> None: ...


@runtime_checkable
class Store(Protocol):
    """One bucket of object storage, as the core uses it."""

    bucket: str

    def url(self, key: str) -> str: ...

    def part_size_for(self, part_number: int) -> int: ...

    def multipart_upload(
        self,
        key: str,
        *,
        lock_mode: str | None = None,
        retain_until: datetime | None = None,
        content_type: str = "application/octet-stream",
        metadata: Mapping[str, str] | None = None,
        storage_class: str | None = None,
    ) -> AbstractContextManager[UploadWriter]: ...

    def put_bytes(
        self,
        key: str,
        data: bytes,
        *,
        if_none_match: bool = False,
        lock_mode: str | None = None,
        retain_until: datetime | None = None,
        content_type: str | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> UploadResult: ...

    def put_json(self, key: str, obj: Any, **kwargs: Any) -> UploadResult: ...

    def get_bytes(self, key: str, *, version_id: str | None = None) -> bytes: ...

    def get_json(self, key: str, *, version_id: str | None = None) -> Any: ...

    def open_read(self, key: str, *, version_id: str | None = None) -> io.RawIOBase: ...

    def head(self, key: str, *, version_id: str | None = None, checksum: bool = True) -> dict[str, Any] | None: ...

    def exists(self, key: str) -> bool: ...

    def list_objects(self, prefix: str = "") -> Iterator[ObjectInfo]: ...

    def list_versions(self, key: str) -> list[VersionInfo]: ...

    def delete_object(self, key: str, version_id: str | None = None) -> dict[str, Any]: ...

    def delete_all_versions(self, key: str) -> int: ...

    def list_multipart_uploads(self, prefix: str = "") -> list[PendingUpload]: ...

    def abort_multipart_upload(self, key: str, upload_id: str) -> None: ...

    def set_legal_hold(self, key: str, on: bool, *, version_id: str | None = None) -> None: ...

    def get_legal_hold(self, key: str, *, version_id: str | None = None) -> bool: ...

    def set_retention(
        self, key: str, mode: str, until: datetime, *, version_id: str | None = None, bypass_governance: bool = False
    ) -> None: ...

    def get_retention(self, key: str, *, version_id: str | None = None) -> tuple[str, datetime] | None: ...

    def copy_storage_class(self, key: str, storage_class: str) -> str | None: ...

    # -- bucket-level settings (the bucket audit) -----------------------------------------
    def head_bucket(self) -> None: ...

    def get_bucket_versioning(self) -> dict[str, Any]: ...

    def put_bucket_versioning(self, status: str) -> None: ...

    def get_object_lock_configuration(self) -> dict[str, Any] | None: ...

    def put_object_lock_configuration(self, configuration: Mapping[str, Any]) -> None: ...

    def get_bucket_encryption(self) -> dict[str, Any] | None: ...

    def put_bucket_encryption(self, configuration: Mapping[str, Any]) -> None: ...

    def get_bucket_lifecycle_rules(self) -> list[dict[str, Any]] | None: ...

    def put_bucket_lifecycle_rules(self, rules: Sequence[Mapping[str, Any]]) -> None: ...
