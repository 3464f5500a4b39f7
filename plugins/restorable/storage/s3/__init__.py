"""The S3 driver, one module per concern (see ``store.py`` for the map).

``from restorable.storage.s3 import S3Store, ...`` keeps working for every name the single
module ``storage/s3.py`` used to offer.
"""

from restorable.storage.errors import ObjectExists, ObjectLocked
from restorable.storage.s3.client import s3_client_from_connection
from restorable.storage.s3.limits import (
    DEFAULT_BACKOFF_BASE,
    DEFAULT_MAX_ATTEMPTS,
    DEFAULT_MAX_IN_FLIGHT,
    DEFAULT_PART_SIZE,
    S3_MAX_COPY_SIZE,
    S3_MAX_PART_SIZE,
    S3_MAX_PARTS,
    S3_MIN_PART_SIZE,
    GiB,
    MiB,
)
from restorable.storage.s3.multipart import MultipartWriter
from restorable.storage.s3.store import S3Store
from restorable.storage.types import ObjectInfo, PendingUpload, UploadResult

__all__ = [
    "DEFAULT_BACKOFF_BASE",
    "DEFAULT_MAX_ATTEMPTS",
    "DEFAULT_MAX_IN_FLIGHT",
    "DEFAULT_PART_SIZE",
    "S3_MAX_COPY_SIZE",
    "S3_MAX_PARTS",
    "S3_MAX_PART_SIZE",
    "S3_MIN_PART_SIZE",
    "GiB",
    "MiB",
    "MultipartWriter",
    "ObjectExists",
    "ObjectInfo",
    "ObjectLocked",
    "PendingUpload",
    "S3Store",
    "UploadResult",
    "s3_client_from_connection",
]
