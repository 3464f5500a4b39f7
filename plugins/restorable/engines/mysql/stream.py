"""Streaming passes over a SQL dump, line by line, in bounded memory.

A dump's lines can be huge (one extended INSERT, or one row's hex blob, can be hundreds of MB),
so nothing here holds a whole line: each line's first bytes (``HEAD``) are looked at and the rest
passes through. ``--hex-blob`` makes row data ASCII and the dump escapes newlines inside strings,
so a line that starts a statement really is the start of one.

- :class:`DefinerRewriter` sits between the decoded backup and the restore client: it rewrites
  ``DEFINER=`user`@`host``` clauses naming accounts the restore server lacks to
  ``DEFINER=CURRENT_USER``, points ``ALTER DATABASE `<source>``` lines (the dump emits them around
  routines created under another database collation) at the target database, and drops
  MariaDB's sandbox line for MySQL's client, which cannot read it.
- :class:`DumpStructureCheck` checks a dump's shape without a server (``list_dump``).
- :class:`PrefixedReader` replays bytes already read from a child's stdout, then the rest.
"""

from __future__ import annotations

import io
import os
import re
from collections.abc import Callable
from typing import IO

from restorable.exceptions import IntegrityError, ToolError

#: How much of a line's start is inspected; DEFINER clauses sit in the first few hundred bytes.
HEAD = 4096

SANDBOX_PREFIX = b"/*M!999999\\- enable the sandbox mode"
#: Lines that carry a DEFINER clause in mysqldump/mariadb-dump output (view, trigger, event,
#: routine), and the ALTER DATABASE lines of switch_db_collation().
_CANDIDATES = (
    b"/*!50013 DEFINER=",
    b"/*!50003 CREATE*/ /*!50017 DEFINER=",
    b"/*!50106 CREATE*/ /*!50117 DEFINER=",
    b"CREATE DEFINER=",
    # Binlog replay (``mariadb-binlog`` output): views are logged as the server normalised them.
    b"CREATE ALGORITHM=",
    b"CREATE OR REPLACE ALGORITHM=",
    b"ALTER DATABASE `",
    SANDBOX_PREFIX,
)
_DEFINER = re.compile(rb"DEFINER=`((?:[^`]|``)*)`(?:@`((?:[^`]|``)*)`)?")
_ALTER_DATABASE = re.compile(rb"^ALTER DATABASE `(?:[^`]|``)*`")


def _could_be_candidate(head: bytes) -> bool:
    return any(c.startswith(head) if len(head) < len(c) else head.startswith(c) for c in _CANDIDATES)


class LineSplitter:
    """Splits a byte stream into lines without holding them.

    For each line, ``on_head(head, line_number)`` sees its first ``head_size`` bytes (or fewer, as
    soon as they cannot be a DEFINER line) and returns what to forward instead; ``passthrough``
    receives the forwarded bytes. ``on_line(head, tail, line_number)`` (if given) is called at the
    end of each line with its head and last ``tail_size`` bytes, newline stripped.
    """

    def __init__(
        self,
        on_head: Callable[[bytes, int], bytes] | None = None,
        passthrough: Callable[[bytes], None] | None = None,
        *,
        head_size: int = HEAD,
        tail_size: int = 0,
        on_line: Callable[[bytes, bytes, int], None] | None = None,
    ) -> None:
        self._on_head = on_head
        self._out = passthrough
        self._on_line = on_line
        self._head_size = head_size
        self._tail_size = tail_size
        self._head = bytearray()
        self._tail = bytearray()
        self._in_body = False  # the head has been handled; the rest of the line streams through
        self.line_number = 0

    def _flush_head(self) -> None:
        head = bytes(self._head)
        if self._on_head is not None:
            head = self._on_head(head, self.line_number)
        if self._out is not None and head:
            self._out(head)
        if self._tail_size:
            self._tail = bytearray(self._head[-self._tail_size :])
        self._in_body = True

    def _end_line(self) -> None:
        if self._on_line is not None:
            self._on_line(bytes(self._head).rstrip(b"\n"), bytes(self._tail).rstrip(b"\n"), self.line_number)
        self._head.clear()
        self._tail.clear()
        self._in_body = False
        self.line_number += 1

    def feed(self, data: bytes) -> None:
        pos, size = 0, len(data)
        while pos < size:
            if self._in_body:
                nl = data.find(b"\n", pos)
                end = size if nl < 0 else nl + 1
                if self._out is not None:
                    self._out(data[pos:end])
                if self._tail_size:
                    self._tail += data[max(pos, end - self._tail_size) : end]
                    del self._tail[: -self._tail_size]
                pos = end
                if nl >= 0:
                    self._end_line()
                continue
            room = self._head_size - len(self._head)
            nl = data.find(b"\n", pos, pos + room)
            if nl >= 0:
                self._head += data[pos : nl + 1]
                pos = nl + 1
                self._flush_head()
                self._end_line()
                continue
            take = min(size - pos, room)
            self._head += data[pos : pos + take]
            pos += take
            # Ordinary lines (row data) are decided on their first bytes, not held for 4 KiB.
            if len(self._head) >= self._head_size or (
                self._on_head is not None and not _could_be_candidate(bytes(self._head[:48]))
            ):
                self._flush_head()

    def close(self) -> None:
        """Ends the final line when the input did not end with a newline."""
        if self._head or self._in_body:
            if not self._in_body:
                self._flush_head()
            self._end_line()


class DefinerRewriter(io.RawIOBase):
    """A writable stream that forwards a dump to ``sink`` with DEFINERs made restorable.

    ``accounts`` is the set of ``(user, host)`` on the restore server (roles have host ``""``);
    ``None`` means unknown, and every DEFINER is rewritten. ``rewritten`` counts what was done per
    original account (``"'user'@'host'"``).
    """

    def __init__(
        self,
        sink: IO[bytes],
        *,
        accounts: set[tuple[str, str]] | None,
        target_database: str,
        drop_sandbox_line: bool,
        on_broken_pipe: Callable[[], Exception],
    ) -> None:
        super().__init__()
        self._sink = sink
        self._accounts = accounts
        self._target = ("`" + target_database.replace("`", "``") + "`").encode()
        self._drop_sandbox = drop_sandbox_line
        self._on_broken_pipe = on_broken_pipe
        self.rewritten: dict[str, int] = {}
        self.kept: dict[str, int] = {}
        self.bytes_in = 0
        self._splitter = LineSplitter(self._rewrite_head, self._forward)

    def writable(self) -> bool:
        return True

    @property
    def definers_rewritten(self) -> dict[str, int]:
        """Original DEFINER account -> how many objects were switched to CURRENT_USER."""
        return dict(self.rewritten)

    def _forward(self, data: bytes) -> None:
        try:
            self._sink.write(data)
        except BrokenPipeError:
            raise self._on_broken_pipe() from None

    def _rewrite_head(self, head: bytes, line_number: int) -> bytes:
        if not _could_be_candidate(head[:48]):
            return head
        if head.startswith(SANDBOX_PREFIX):
            return b"" if (self._drop_sandbox and line_number == 0) else head
        if head.startswith(b"ALTER DATABASE `"):
            return _ALTER_DATABASE.sub(lambda m: b"ALTER DATABASE " + self._target, head, count=1)
        match = _DEFINER.search(head)
        if match is None:
            return head
        user = match.group(1).replace(b"``", b"`").decode("utf-8", "replace")
        host = (match.group(2) or b"").replace(b"``", b"`").decode("utf-8", "replace")
        account = f"'{user}'@'{host}'" if match.group(2) is not None else f"'{user}'"
        if self._accounts is not None and (user, host) in self._accounts:
            self.kept[account] = self.kept.get(account, 0) + 1
            return head
        self.rewritten[account] = self.rewritten.get(account, 0) + 1
        return head[: match.start()] + b"DEFINER=CURRENT_USER" + head[match.end() :]

    def write(self, data: bytes) -> int:  # type: ignore[override]
        self.bytes_in += len(data)
        self._splitter.feed(bytes(data))
        return len(data)

    def finish(self) -> None:
        """Flush the last partial line (the caller then closes the sink)."""
        self._splitter.close()


class DumpStructureCheck(io.RawIOBase):
    """Structural check of a mysqldump/mariadb-dump stream, without a server.

    Checks: the header (``-- MariaDB dump``/``-- MySQL dump``, after MariaDB's sandbox line), that
    every statement ends before the stream does (DELIMITER changes followed), that ``LOCK
    TABLES``/``UNLOCK TABLES`` and ``DISABLE KEYS``/``ENABLE KEYS`` pair up, that the delimiter is
    back to ``;``, and the ``-- Dump completed`` trailer as the last line.
    """

    def __init__(self) -> None:
        super().__init__()
        self.tables: list[str] = []
        self.insert_lines = 0
        self.bytes = 0
        self._problems: list[str] = []
        self._header_seen = False
        self._delimiter = b";"
        self._in_statement = False
        self._locked: bytes | None = None
        self._keys_disabled: bytes | None = None
        self._last_nonempty = b""
        self._splitter = LineSplitter(head_size=512, tail_size=64, on_line=self._line)

    def writable(self) -> bool:
        return True

    def write(self, data: bytes) -> int:  # type: ignore[override]
        self.bytes += len(data)
        self._splitter.feed(bytes(data))
        return len(data)

    def _problem(self, text: str, line: int) -> None:
        if len(self._problems) < 10:
            self._problems.append(f"line {line + 1}: {text}")

    def _line(self, head: bytes, tail: bytes, number: int) -> None:
        stripped_tail = tail.rstrip()
        if head.strip():
            self._last_nonempty = head
        if not self._header_seen:
            if number == 0 and head.startswith(SANDBOX_PREFIX):
                return
            if head.startswith((b"-- MariaDB dump", b"-- MySQL dump")):
                self._header_seen = True
                return
            self._problem("no mysqldump/mariadb-dump header", number)
            self._header_seen = True  # report once
            return
        if not self._in_statement:
            if not head.strip() or head.startswith(b"--"):
                return
            if head.startswith(b"DELIMITER "):
                self._delimiter = head[len(b"DELIMITER ") :].strip() or b";"
                return
            self._in_statement = True
            self._statement_start(head, number)
        if stripped_tail.endswith(self._delimiter):
            self._in_statement = False

    def _statement_start(self, head: bytes, number: int) -> None:
        if head.startswith(b"CREATE TABLE `"):
            name = head[len(b"CREATE TABLE `") :].split(b"`", 1)[0]
            self.tables.append(name.decode("utf-8", "replace"))
        elif head.startswith(b"INSERT INTO `"):
            self.insert_lines += 1
        elif head.startswith(b"LOCK TABLES `"):
            if self._locked is not None:
                self._problem("LOCK TABLES while another table is still locked", number)
            self._locked = head
        elif head.startswith(b"UNLOCK TABLES"):
            if self._locked is None:
                self._problem("UNLOCK TABLES without LOCK TABLES", number)
            self._locked = None
        elif b"DISABLE KEYS" in head[:300] and head.startswith(b"/*!40000 ALTER TABLE"):
            if self._keys_disabled is not None:
                self._problem("DISABLE KEYS twice", number)
            self._keys_disabled = head
        elif b"ENABLE KEYS" in head[:300] and head.startswith(b"/*!40000 ALTER TABLE"):
            if self._keys_disabled is None:
                self._problem("ENABLE KEYS without DISABLE KEYS", number)
            self._keys_disabled = None

    def problems(self) -> list[str]:
        """Everything wrong with the stream so far (call after the last write)."""
        self._splitter.close()
        last = self._splitter.line_number
        out = list(self._problems)
        if self.bytes == 0:
            return ["the dump is empty"]
        if not self._header_seen:
            out.append("no mysqldump/mariadb-dump header")
        if self._in_statement:
            out.append(f"line {last}: the stream ends inside a statement (truncated?)")
        if self._delimiter != b";":
            out.append(f"the stream ends with DELIMITER {self._delimiter.decode(errors='replace')} still set")
        if self._locked is not None:
            out.append("LOCK TABLES without UNLOCK TABLES at the end")
        if self._keys_disabled is not None:
            out.append("DISABLE KEYS without ENABLE KEYS at the end")
        if not self._last_nonempty.startswith(b"-- Dump completed"):
            out.append("no '-- Dump completed' trailer: the dump did not finish")
        return out

    def verify(self) -> None:
        problems = self.problems()
        if problems:
            raise IntegrityError(
                "the SQL dump is malformed: " + "; ".join(problems),
                hint="The stored object is damaged or incomplete; restore an earlier backup",
            )


class PrefixedReader(io.RawIOBase):
    """Bytes already taken from a pipe (``prefix``), then the pipe itself; remembers the tail."""

    def __init__(self, prefix: bytes, fd: int) -> None:
        super().__init__()
        self._prefix = memoryview(prefix)
        self._fd = fd
        self.tail = bytes(prefix[-256:])
        self.bytes_read = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:  # type: ignore[override]
        if self._prefix:
            n = min(len(buffer), len(self._prefix))
            buffer[:n] = self._prefix[:n]
            self._prefix = self._prefix[n:]
        else:
            try:
                chunk = os.read(self._fd, len(buffer))
            except OSError as exc:
                raise ToolError(f"reading the dump's output failed: {exc}") from None
            n = len(chunk)
            buffer[:n] = chunk
            if n:
                self.tail = (self.tail + chunk)[-256:]
        self.bytes_read += n
        return n
