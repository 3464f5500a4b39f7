"""The spool directory: where PostgreSQL (or ``pg_receivewal``) leaves WAL files for the archiver.

PostgreSQL's archive step writes each file there under a temporary name, fsyncs it and renames
it into place (``basic_archive`` does; so does ``spool-archive.sh``, shipped beside this module),
so a file under a WAL name is complete. Other names are ignored: ``.tmp.*`` files of an archive
step in progress (or of one that crashed: swept after an hour), the archiver's own state file.

Bounds: ``spool-archive.sh`` refuses a file that would take the spool past ``spool_max_bytes``
(PostgreSQL then keeps the segment in pg_wal and retries), so a dead bucket fills the spool up
to its bound and no further; ``basic_archive`` has no such check.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

from restorable.repository.layout import WAL_FILE_RE
from restorable.wal.names import archive_order

#: The archiver's state file (read by ``wal-status``); a dot name so nothing mistakes it for WAL.
STATE_FILE = ".restorable-wal-state.json"
#: The shell archive step shipped with the package (see docs/wal-archiver.md).
ARCHIVE_SCRIPT = Path(__file__).with_name("spool-archive.sh")
_STALE_TMP_SECONDS = 3600


@dataclass(frozen=True)
class SpoolFile:
    name: str
    path: Path
    size: int
    mtime: float


class Spool:
    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)

    @property
    def state_path(self) -> Path:
        return self.directory / STATE_FILE

    def files(self, *, include_partial: bool = False) -> list[SpoolFile]:
        """The complete WAL files waiting, in archive order (history files first)."""
        found = []
        try:
            entries = list(os.scandir(self.directory))
        except FileNotFoundError:
            return []
        for entry in entries:
            if not WAL_FILE_RE.fullmatch(entry.name):
                continue
            if entry.name.endswith(".partial") and not include_partial:
                continue
            try:
                st = entry.stat()
            except FileNotFoundError:
                continue  # uploaded and removed meanwhile
            found.append(SpoolFile(entry.name, Path(entry.path), st.st_size, st.st_mtime))
        found.sort(key=lambda f: archive_order(f.name))
        return found

    def total_bytes(self) -> int:
        """Every byte in the spool, temporary files included: what the disk bound is about."""
        total = 0
        for entry in os.scandir(self.directory):
            try:
                if entry.is_file(follow_symlinks=False):
                    total += entry.stat().st_size
            except FileNotFoundError:
                continue
        return total

    def sweep_stale_temporaries(self, now: float | None = None) -> list[str]:
        """Remove ``.tmp.*`` files an archive step left an hour ago or more (it crashed mid-copy)."""
        now = time.time() if now is None else now
        removed = []
        for entry in os.scandir(self.directory):
            if entry.name.startswith(".tmp.") and entry.is_file(follow_symlinks=False):
                try:
                    if now - entry.stat().st_mtime > _STALE_TMP_SECONDS:
                        os.unlink(entry.path)
                        removed.append(entry.name)
                except FileNotFoundError:
                    continue
        return removed

    def remove(self, name: str, *, uploaded_mtime: float | None = None, uploaded_size: int | None = None) -> bool:
        """Delete an uploaded file, and make the delete durable (a crash must not resurrect it
        as a file to upload again: harmless, but it would be counted twice).

        With the mtime and size the upload read, a file replaced meanwhile is kept (False): what
        is in the spool now was never uploaded, and the next pass looks at it again."""
        path = self.directory / name
        if uploaded_mtime is not None:
            try:
                st = path.stat()
            except FileNotFoundError:
                return True
            if st.st_mtime != uploaded_mtime or (uploaded_size is not None and st.st_size != uploaded_size):
                return False
        os.unlink(path)
        fd = os.open(self.directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        return True


def archive_command(spool_dir: Path, spool_max_bytes: int) -> str:
    """The ``archive_command`` line for postgresql.conf that fills ``spool_dir`` within its bound."""
    return f"'{ARCHIVE_SCRIPT} %p %f {spool_dir} {spool_max_bytes}'"
