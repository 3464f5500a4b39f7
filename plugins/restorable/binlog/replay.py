"""``restorable restore DB --gtid G | --time T | --position FILE:POS --target CONN --database NAME`` (MariaDB).

1. Plan, before anything is written: the target (``binlog.targets``), the newest logical backup
   before it, the archived files from that backup's binlog position on (a gap is refused), the
   target checked against the archive's metadata (beyond it: refused).
2. The files are read from the bucket into a private directory, each checked against its sha256,
   and parsed: the stop offset is computed from their own events (``find_cut``).
3. The logical backup is restored as ``restorable restore`` does (and compared with its manifest).
4. Replay: ``mariadb-binlog --start-position=<backup's position> --stop-position=<cut> --database=<source>
   [--rewrite-db=<source>-><target>] <files> | mariadb <target>``, with ``TZ=UTC``.
   ``--database`` keeps only the source database's events; as with any mariadb-binlog filter,
   statements are matched by their *default* database (``USE``), so DDL written as
   ``other_db.table`` from another default database is not replayed. Row events are matched by
   their table's database.

Interrupted or failed after step 3 began: the database this restore created is dropped.
The restoring account needs what replaying mariadb-binlog output needs: the database's rights
plus ``BINLOG REPLAY`` (MariaDB 10.5.2+; SUPER before) for the session variables it sets.
"""

from __future__ import annotations

import logging
import shutil
import subprocess
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from restorable.binlog.events import summarize
from restorable.binlog.objects import list_archived, read_binlog
from restorable.binlog.positions import backup_starts
from restorable.binlog.receiver import binlog_tool
from restorable.binlog.targets import BinlogTarget, choose_backup, files_to_replay, find_cut, refuse_beyond
from restorable.connections import ConnectionInfo
from restorable.engines.mysql.logical import MAX_ALLOWED_PACKET
from restorable.engines.mysql.tools import address, child_env, defaults_file, find_tool
from restorable.engines.process import StreamTail, running, stop_process, tool_failure
from restorable.exceptions import RestorableError, RestoreRefused
from restorable.repository.layout import Layout
from restorable.services import Services

log = logging.getLogger(__name__)


@dataclass
class BinlogRestoreReport:
    database_id: str
    backup_id: str
    target: str
    database: str
    point: str
    start: str
    stop: str
    files: list[str]
    binlog_bytes: int
    restore_seconds: float
    replay_seconds: float
    transactions_in_range: int
    differences: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def restore_to_moment(
    services: Services,
    database_id: str,
    target_point: BinlogTarget,
    *,
    target: ConnectionInfo,
    database: str,
    overwrite: bool = False,
    identity: str | None = None,
) -> BinlogRestoreReport:
    """Steps 1-4 of the module docstring."""
    from restorable.commands.restore import restore_backup
    from restorable.engines.mysql.engine import MySQLEngine

    identity = identity or services.identity()
    catalog = services.catalog("restore")
    store = catalog.store
    layout = Layout(services.config.storage.prefix)
    start = choose_backup(backup_starts(catalog, database_id), target_point, database_id)
    manifest = catalog.read_manifest(database_id, start.backup_id)
    source_db = str(manifest.source.get("database") or "")
    chain, gap = files_to_replay(list_archived(store, layout, database_id), start, database_id)
    refuse_beyond(target_point, chain, database_id, gap)
    engine = MySQLEngine()
    existed = engine.target_state(target, database) != "absent"
    work = Path(tempfile.mkdtemp(prefix=f"restorable-binlog-{database_id}-"))
    try:
        work.chmod(0o700)
        summaries, paths, total, definers = [], [], 0, False
        for item in chain:
            data = read_binlog(store, item, identity)
            name = item.name.removesuffix(".partial")
            path = work / name
            path.write_bytes(data)
            summaries.append((name, summarize(data)))
            paths.append(path)
            total += len(data)
            definers = definers or b"DEFINER=" in data  # a C scan: the filter runs only when needed
            # Stop reading once the cut is known to be in this file (later files are not needed).
            try:
                index, offset = find_cut(target_point, summaries, start)
                break
            except RestoreRefused:
                continue
        else:
            index, offset = find_cut(target_point, summaries, start)  # raises, naming the target
        in_range = sum(
            1
            for i, (_n, s) in enumerate(summaries[: index + 1])
            for t in s.transactions
            if (i > 0 or t.start >= start.binlog_position) and (i < index or t.end <= offset)
        )
        log.info(
            "binlog restore planned database=%s backup=%s files=%d cut=%s:%d",
            database_id,
            start.backup_id,
            index + 1,
            summaries[index][0],
            offset,
        )
        t0 = time.monotonic()
        report = restore_backup(
            services,
            database_id,
            start.backup_id,
            target=target,
            database=database,
            overwrite=overwrite,
            identity=identity,
        )
        restore_seconds = time.monotonic() - t0
        try:
            if not report.ok:
                raise RestorableError(
                    f"the restored backup {start.backup_id} differs from its manifest: {'; '.join(report.differences)}",
                    database=database_id,
                    backup_id=start.backup_id,
                )
            t1 = time.monotonic()
            replay(target, database, source_db, paths[: index + 1], start.binlog_position, offset, definers=definers)
            replay_seconds = time.monotonic() - t1
        except BaseException as exc:
            if not existed:
                _drop(engine, target, database, exc)
            raise
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return BinlogRestoreReport(
        database_id=database_id,
        backup_id=start.backup_id,
        target=target.describe(),
        database=database,
        point=target_point.describe(),
        start=f"{start.binlog_file}:{start.binlog_position}",
        stop=f"{summaries[index][0]}:{offset}",
        files=[n for n, _ in summaries[: index + 1]],
        binlog_bytes=total,
        restore_seconds=round(restore_seconds, 3),
        replay_seconds=round(replay_seconds, 3),
        transactions_in_range=in_range,
    )


def _drop(engine: Any, target: ConnectionInfo, database: str, exc: BaseException) -> None:
    try:
        engine.drop_database(target, database)
    except RestorableError as drop:
        log.warning("could not drop the half-restored database database=%s error=%s", database, drop.message)
        return
    if isinstance(exc, RestorableError):
        exc.message += f"; the database {database!r} this restore created was dropped"


def replay_argv(tool: str, source_db: str, database: str, files: list[Path], start: int, stop: int) -> list[str]:
    argv = [tool, f"--start-position={start}", f"--stop-position={stop}"]
    if source_db:
        argv.append(f"--database={source_db}")
        if source_db != database:
            argv.append(f"--rewrite-db={source_db}->{database}")
    return argv + [str(p) for p in files]


def _accounts(target: ConnectionInfo) -> set[tuple[str, str]] | None:
    from restorable.engines.mysql.logical import MySQLDumpBackup
    from restorable.engines.mysql.tools import connect

    db = connect(target, None)
    try:
        with db.cursor() as cur:
            return MySQLDumpBackup._accounts(cur)
    finally:
        db.close()


def replay(
    target: ConnectionInfo,
    database: str,
    source_db: str,
    files: list[Path],
    start: int,
    stop: int,
    *,
    definers: bool = True,
) -> None:
    """``mariadb-binlog ... | mariadb`` into ``database`` (see the module docstring); ToolError on failure.

    With ``definers`` the SQL passes through the logical restore's DEFINER filter on its way
    (``engines.mysql.stream``): a view, routine or trigger created after the backup names a DEFINER
    the target may lack, and is made restorable the same way as one in the dump. The filter is a
    Python pump (replay measured ~0.7x of the direct pipe with it), so it runs only when the files
    hold a DEFINER clause at all (``restore_to_moment`` looks).
    """
    from restorable.engines.mysql.stream import DefinerRewriter

    client = find_tool("client", "mariadb")
    env = {**child_env(), "TZ": "UTC"}
    argv = replay_argv(binlog_tool(client.flavour), source_db, database, files, start, stop)
    accounts = _accounts(target) if definers else None
    hint = "The target database is partly replayed and was dropped if this restore created it"
    with defaults_file(target) as cnf:
        client_argv = [
            client.path,
            f"--defaults-extra-file={cnf.path}",
            "--binary-mode",
            "--batch",
            MAX_ALLOWED_PACKET,
            database,
        ]
        pipe = {"stdout": subprocess.PIPE, "stderr": subprocess.PIPE, "stdin": subprocess.DEVNULL}
        with running(argv, **pipe, env=env) as reader:
            reader_tail = StreamTail(reader.stderr, "mariadb-binlog")
            source = subprocess.PIPE if definers else reader.stdout
            sink = {"stdin": source, "stdout": subprocess.DEVNULL, "stderr": subprocess.PIPE}
            with running(client_argv, **sink, env=env, pass_fds=cnf.pass_fds) as writer:
                writer_tail = StreamTail(writer.stderr, client.name)
                if not definers:
                    reader.stdout.close()  # the client holds it: mariadb-binlog sees EPIPE if the client dies

                def broken() -> Exception:
                    writer.wait()
                    writer_tail.join(5)
                    return tool_failure(
                        f"{client.name} replay into {database!r} on {address(target)}",
                        writer.returncode,
                        writer_tail,
                        database=database,
                        hint=hint,
                    )

                rewriter = (
                    DefinerRewriter(
                        writer.stdin,
                        accounts=accounts,
                        target_database=database,
                        drop_sandbox_line=False,
                        on_broken_pipe=broken,
                    )
                    if definers
                    else None
                )
                try:
                    if rewriter is not None:
                        while chunk := reader.stdout.read(1 << 16):
                            rewriter.write(chunk)
                        rewriter.finish()
                        try:
                            writer.stdin.close()
                        except BrokenPipeError:
                            raise broken() from None
                    written = writer.wait()
                    read = reader.wait()
                except BaseException:
                    stop_process(reader)
                    stop_process(writer)
                    raise
                finally:
                    reader_tail.join(5)
                    writer_tail.join(5)
    if read != 0:
        raise tool_failure("mariadb-binlog (replay)", read, reader_tail, database=database, hint=hint)
    if written != 0:
        raise broken()
    if rewriter is not None and rewriter.rewritten:
        log.info(
            "binlog replay definers rewritten to CURRENT_USER database=%s accounts=%s",
            database,
            ",".join(f"{a}x{n}" for a, n in sorted(rewriter.rewritten.items())),
        )
    log.info("binlog replayed database=%s files=%d stop=%d", database, len(files), stop)
