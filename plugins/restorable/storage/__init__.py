"""Object storage: where backups and their manifests live."""

from restorable.storage.s3 import (
    MultipartWriter,
    ObjectExists,
    ObjectInfo,
    ObjectLocked,
    PendingUpload,
    S3Store,
    UploadResult,
    s3_client_from_connection,
)

__all__ = [
    "MultipartWriter",
    "ObjectExists",
    "ObjectInfo",
    "ObjectLocked",
    "PendingUpload",
    "S3Store",
    "UploadResult",
    "s3_client_from_connection",
]
