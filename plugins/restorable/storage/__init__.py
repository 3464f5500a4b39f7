"""Object storage: where backups and their manifests live.

``protocol.Store`` is what the core types against; ``s3`` is the production driver (one module
per concern) and ``memory.MemoryStore`` stands in for it in unit tests.
"""

from restorable.storage.errors import AccessDenied, InvalidBucketState, ObjectExists, ObjectLocked, Unsupported
from restorable.storage.s3 import MultipartWriter, S3Store, s3_client_from_connection
from restorable.storage.types import ObjectInfo, PendingUpload, UploadResult

__all__ = [
    "AccessDenied",
    "InvalidBucketState",
    "MultipartWriter",
    "ObjectExists",
    "ObjectInfo",
    "ObjectLocked",
    "PendingUpload",
    "S3Store",
    "Unsupported",
    "UploadResult",
    "s3_client_from_connection",
]
