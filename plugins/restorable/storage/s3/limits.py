"""S3's size limits and Restorable's defaults for talking to it."""

from __future__ import annotations

MiB = 1 << 20
GiB = 1 << 30
#: S3's limits: every part but the last is at least 5 MiB, at most 5 GiB, and 10,000 parts.
S3_MIN_PART_SIZE = 5 * MiB
S3_MAX_PART_SIZE = 5 * GiB
S3_MAX_PARTS = 10_000
#: CopyObject copies at most 5 GiB in one request; larger objects are copied in parts.
S3_MAX_COPY_SIZE = 5 * GiB

DEFAULT_PART_SIZE = 16 * MiB
DEFAULT_MAX_IN_FLIGHT = 4
DEFAULT_MAX_ATTEMPTS = 5
DEFAULT_BACKOFF_BASE = 0.5
