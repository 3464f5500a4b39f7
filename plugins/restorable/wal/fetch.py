"""``restorable wal-fetch DB WALFILE DEST``: PostgreSQL's ``restore_command``.

Exit codes are the contract with PostgreSQL (see ``commands/wal.py``): 0 written (and checked
against its sha256), 1 ONLY when the archive has no such file, 126 on anything else. PostgreSQL
reads any exit from 1 to 125 as "no more WAL" and ends recovery there, silently early, while an
exit above 125 stops recovery loudly (FATAL); so a transient S3 error must never look like 1.

Speed: every call is a new process (PostgreSQL runs one per file), so after serving a segment
the fetch starts a detached prefetcher for the next few segments of the same timeline, into a
private cache directory (default ``<dest dir>/restorable-prefetch``, i.e. inside ``pg_wal``,
which base backups do not copy). A cached file is only renamed into place after its sha256 was
checked, and the next fetch just moves it to DEST.

The last segment: ``pg_receivewal`` (stream mode) leaves the segment being written as
``<segment>.partial``; when the segment itself is not archived, its ``.partial`` is served.
"""

from __future__ import annotations

import fcntl
import logging
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from restorable.exceptions import ConfigError, NotFound
from restorable.repository.layout import WAL_FILE_RE, Layout
from restorable.storage.protocol import Store
from restorable.wal.names import kind_of, parse_segment, segments_per_xlogid
from restorable.wal.objects import read_wal_file

log = logging.getLogger(__name__)

PREFETCH_DEFAULT = 4
CACHE_DIR_NAME = "restorable-prefetch"


@dataclass(frozen=True)
class FetchResult:
    wal_file: str
    dest: str
    size: int
    source: str  # "bucket", "cache" or "partial"


def check_wal_file_name(wal_file: str) -> None:
    if not WAL_FILE_RE.fullmatch(wal_file):
        raise ConfigError(
            f"{wal_file!r} is not a WAL file name",
            hint="restore_command passes %f (the file name) then %p (the destination path)",
        )


def default_cache_dir(dest: Path) -> Path:
    return dest.resolve().parent / CACHE_DIR_NAME


def write_atomically(path: Path, data: bytes) -> None:
    """Write ``path`` through a temporary name, so a half-written file never has the real name."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def fetch_wal(
    store: Store,
    layout: Layout,
    identity: str,
    database_id: str,
    wal_file: str,
    dest: Path,
    *,
    cache_dir: Path | None = None,
) -> FetchResult:
    """Write ``wal_file`` to ``dest`` from the cache or the bucket; NotFound when it is archived nowhere."""
    check_wal_file_name(wal_file)
    cached = cache_dir / wal_file if cache_dir is not None else None
    if cached is not None and cached.is_file():
        size = cached.stat().st_size
        try:
            os.replace(cached, dest)
            return FetchResult(wal_file, str(dest), size, "cache")
        except OSError:  # another filesystem: fall back to the bucket
            pass
    source = "bucket"
    try:
        data = read_wal_file(store, layout, identity, database_id, wal_file)
    except NotFound:
        if kind_of(wal_file) != "segment":
            raise
        try:
            data = read_wal_file(store, layout, identity, database_id, wal_file + ".partial")
        except NotFound:
            raise NotFound(f"{wal_file} is not in the WAL archive of {database_id} (nor its .partial)") from None
        source = "partial"
    write_atomically(dest, data)
    return FetchResult(wal_file, str(dest), len(data), source)


def next_segments(wal_file: str, size: int, count: int) -> list[str]:
    """The names of the ``count`` segments after ``wal_file`` (a segment of ``size`` bytes), or []."""
    if kind_of(wal_file) != "segment" or count <= 0:
        return []
    try:
        segments_per_xlogid(size)
    except ValueError:
        return []  # not a whole segment: no arithmetic from it
    segment = parse_segment(wal_file, size)
    names = []
    for _ in range(count):
        segment = segment.next()
        names.append(segment.name(size))
    return names


def start_prefetch(config_path: str | None, database_id: str, names: list[str], cache_dir: Path) -> bool:
    """Start a detached prefetcher for ``names`` unless they are cached or one is running already
    (a Python process costs ~0.6 s of CPU: one per segment would halve replay on two cores)."""
    if not names:
        return False
    cache_dir.mkdir(mode=0o700, exist_ok=True)
    if all((cache_dir / name).exists() for name in names):
        return False
    lock = lock_cache(cache_dir)
    if lock is None:
        return False  # a prefetcher is at work; the next fetch asks again
    os.close(lock)  # the child takes it again first thing; losing that race only skips one prefetch
    argv = [sys.executable, "-m", "restorable.wal.prefetch", str(cache_dir), database_id, *names]
    if config_path:
        argv[3:3] = ["--config", config_path]
    subprocess.Popen(
        argv,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
        close_fds=True,
    )
    return True


def lock_cache(cache_dir: Path) -> int | None:
    """An exclusive lock on the cache directory (a descriptor to close), or None when it is taken."""
    fd = os.open(cache_dir / ".lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return fd


def prefetch(store: Store, layout: Layout, identity: str, database_id: str, names: list[str], cache_dir: Path) -> int:
    """Download ``names`` into ``cache_dir`` (checked), stopping at the first one not archived.

    The caller holds ``lock_cache(cache_dir)``. Cached segments older than ``names[0]`` on its
    timeline were not asked for (recovery moved past them) and are removed.
    """
    first = names[0]
    for entry in os.scandir(cache_dir):
        if WAL_FILE_RE.fullmatch(entry.name) and entry.name[:8] == first[:8] and entry.name < first:
            os.unlink(entry.path)
    fetched = 0
    for name in names:
        target = cache_dir / name
        if target.exists():
            continue
        try:
            data = read_wal_file(store, layout, identity, database_id, name)
        except NotFound:
            break
        write_atomically(target, data)
        fetched += 1
    return fetched
