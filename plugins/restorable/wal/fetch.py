"""``restorable wal-fetch DB WALFILE DEST``: PostgreSQL's ``restore_command``.

Exit codes are the contract with PostgreSQL (see ``commands/wal.py``): 0 written (and checked
against its sha256), 1 ONLY when the archive has no such file, 126 on anything else. PostgreSQL
reads any exit from 1 to 125 as "no more WAL" and ends recovery there, silently early, while an
exit above 125 stops recovery loudly (FATAL); so a transient S3 error must never look like 1.

Speed: PostgreSQL runs one restore_command per file, and a Python process costs ~0.6 s: that
alone caps replay near 25 MB/s. So the fetch starts a resident prefetcher (``prefetch.py``) that
keeps the next segments of the timeline in a private cache directory (default ``<dest
dir>/restorable-prefetch``, i.e. inside ``pg_wal``, which base backups do not copy), each renamed
into place only after its sha256 matched; and ``wal-fetch.sh``, the restore_command shipped beside
this module, moves a cached segment to DEST without starting Python at all, falling back to this
command for anything not cached.

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
            # Before the move: a prefetcher that saw the segment gone would fetch it once more.
            note_wanted(cache_dir, wal_file, size if kind_of(wal_file) == "segment" else None)  # type: ignore[arg-type]
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


WANTED_FILE = ".wanted"


def note_wanted(cache_dir: Path, wal_file: str, size: int | None = None) -> None:
    """Tell the prefetcher where recovery is (``wal-fetch.sh`` writes the same file, name only)."""
    tmp = cache_dir / f"{WANTED_FILE}.{os.getpid()}"
    tmp.write_text(f"{wal_file} {size}\n" if size else f"{wal_file}\n")
    os.replace(tmp, cache_dir / WANTED_FILE)


def read_wanted(cache_dir: Path) -> tuple[str, int | None] | None:
    try:
        fields = (cache_dir / WANTED_FILE).read_text().split()
    except (FileNotFoundError, OSError):
        return None
    if not fields or not WAL_FILE_RE.fullmatch(fields[0]):
        return None
    size = int(fields[1]) if len(fields) > 1 and fields[1].isdigit() else None
    return fields[0], size


def start_prefetcher(config_path: str | None, database_id: str, cache_dir: Path) -> bool:
    """Start the resident prefetcher of ``cache_dir`` unless one runs already (see ``prefetch``)."""
    cache_dir.mkdir(mode=0o700, exist_ok=True)
    lock = lock_cache(cache_dir)
    if lock is None:
        return False  # running: it follows .wanted
    os.close(lock)  # the child takes it again first thing; losing that race only means one runs
    argv = [sys.executable, "-m", "restorable.wal.prefetch", str(cache_dir), database_id]
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


def stop_prefetchers(directory: Path, timeout: float = 3.0) -> int:
    """End every prefetcher whose cache lies under ``directory`` (a restored copy being removed: one
    still writing into it would keep the removal from finishing). Returns how many were signalled."""
    import signal
    import time

    root = str(directory.resolve())
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        args = [a.decode("utf-8", "replace") for a in argv]
        if "restorable.wal.prefetch" in args and any(a.startswith(root + "/") for a in args):
            try:
                os.kill(int(entry.name), signal.SIGTERM)
                found.append(int(entry.name))
            except (ProcessLookupError, PermissionError):
                continue
    deadline = time.monotonic() + timeout
    while found and time.monotonic() < deadline:
        found = [pid for pid in found if Path(f"/proc/{pid}").exists() and _not_zombie(pid)]
        time.sleep(0.05)
    return len(found)


def _not_zombie(pid: int) -> bool:
    try:
        return " Z " not in Path(f"/proc/{pid}/stat").read_text().split(")", 1)[1][:4]
    except OSError:
        return False
