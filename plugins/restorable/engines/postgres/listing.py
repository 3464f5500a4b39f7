"""Deep verify of a pg_dump custom-format archive, without a server.

``pg_restore --list`` reads only the archive's table of contents, so the stream also goes through
``pg_restore -f /dev/null``, which reads every data block to the end (a truncated or corrupt
stream fails there). Both read the same bytes at once: one pass over the stored object.
"""

from __future__ import annotations

import logging
import os
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO

from restorable.engines.postgres import tools as pg_tools
from restorable.engines.process import StreamTail, failure_message, running
from restorable.exceptions import IntegrityError

log = logging.getLogger(__name__)


class DumpListing:
    """What ``list_archive`` yields: write the decoded dump into it; ``entries`` is set on exit."""

    def __init__(self, lister: subprocess.Popen, parser: subprocess.Popen) -> None:
        self._lister = lister
        self._parser = parser
        self._lister_open = True
        self.entries: int | None = None
        self.bytes_written = 0

    def write(self, data: bytes) -> int:
        # pg_restore --list stops reading once it has the table of contents; the full parse
        # (pg_restore -f /dev/null) reads every data block to the end.
        if self._lister_open:
            try:
                self._lister.stdin.write(data)  # type: ignore[union-attr]
            except (BrokenPipeError, ValueError):
                self._lister_open = False
        try:
            self._parser.stdin.write(data)  # type: ignore[union-attr]
        except BrokenPipeError:
            raise IntegrityError("pg_restore stopped reading the dump: it cannot parse it") from None
        self.bytes_written += len(data)
        return len(data)

    def writable(self) -> bool:
        return True


class _LineCounter:
    """Counts TOC entry lines (not ';' comments) of ``pg_restore --list`` output on a thread."""

    def __init__(self, stream: IO[bytes]) -> None:
        self.count = 0
        self._stream = stream
        self._thread = threading.Thread(target=self._run, name="pg_restore-list", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        for line in self._stream:
            if line.strip() and not line.startswith(b";"):
                self.count += 1
        self._stream.close()

    def join(self) -> None:
        self._thread.join(30)


@contextmanager
def list_archive() -> Iterator[DumpListing]:
    """A writable listing of a decoded archive; on exit, ``IntegrityError`` unless the table of
    contents and every data block parse. The listing's ``entries`` is the number of TOC entries."""
    pg_restore = pg_tools.find_pg_binary("pg_restore")
    env = pg_tools.child_env(None)  # it reads a stream and connects nowhere: no password, no secrets
    pipes = {"stdin": subprocess.PIPE, "stderr": subprocess.PIPE, "env": env}
    with (
        running([pg_restore, "--list"], stdout=subprocess.PIPE, **pipes) as lister,
        running([pg_restore, "--file", os.devnull], stdout=subprocess.DEVNULL, **pipes) as parser,
    ):
        assert lister.stdout and lister.stderr and parser.stderr
        entries = _LineCounter(lister.stdout)
        lister_tail = StreamTail(lister.stderr, "pg_restore --list")
        parser_tail = StreamTail(parser.stderr, "pg_restore --file")
        listing = DumpListing(lister, parser)
        yield listing  # an exception here stops both (``running``)
        for proc in (lister, parser):
            try:
                proc.stdin.close()  # type: ignore[union-attr]
            except BrokenPipeError:
                pass
        lister_rc, parser_rc = lister.wait(), parser.wait()
        entries.join()
        lister_tail.join()
        parser_tail.join()
    for rc, tail, tool in ((lister_rc, lister_tail, "pg_restore --list"), (parser_rc, parser_tail, "pg_restore")):
        if rc != 0:
            raise IntegrityError(
                failure_message(f"{tool} (reading the dump)", rc, tail),
                hint="The stored dump is damaged or not a pg_dump custom-format archive",
            )
    # No entries is what pg_dump writes for an empty database: the archive's header parsed and
    # its bytes are those the manifest recorded (the caller checks the sha256), so it is whole.
    listing.entries = entries.count
    log.info("dump listed entries=%d bytes=%d", entries.count, listing.bytes_written)
