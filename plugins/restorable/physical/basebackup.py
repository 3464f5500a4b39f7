"""``pg_basebackup`` as a stream: the cluster's files as one tar on stdout, and where it sits in WAL.

``pg_basebackup -D - -Ft -X none -c fast --manifest-checksums=SHA256`` writes the data directory as
a tar to stdout and appends PostgreSQL's ``backup_manifest`` to it. ``-X none``: the WAL comes from
the archive, which is the point of the exercise (a base backup is only restorable with the WAL
from its start to its stop segment, and the command that takes it waits until that WAL is in the
bucket before it commits). ``-c fast``: a spread checkpoint can keep the backup waiting minutes.

``pg_basebackup`` refuses to write more than one tablespace to stdout: a cluster with tablespaces
is staged instead (``-D <private dir> -Ft``: ``base.tar``, one ``<oid>.tar`` per tablespace and the
``backup_manifest``), which needs local disk for the whole cluster, then each tar is streamed from
there; the staging directory is removed on every exit path.
"""

from __future__ import annotations

import json
import logging
import subprocess
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from restorable.connections import ConnectionInfo
from restorable.engines.postgres import tools as pg_tools
from restorable.engines.postgres.engine import PostgresEngine
from restorable.engines.process import StreamTail, running, stop_process, tool_failure
from restorable.exceptions import ConfigError, IntegrityError
from restorable.interrupt import held
from restorable.physical.tartap import TarTap
from restorable.wal.names import format_lsn, parse_lsn, segment_of_lsn

log = logging.getLogger(__name__)

BACKUP_LABEL = "backup_label"
BACKUP_MANIFEST = "backup_manifest"


@dataclass
class ServerFacts:
    """What the manifest records of the cluster, read before the backup starts."""

    server_version: str
    server_version_num: int
    system_identifier: str
    timeline: int
    segment_size: int
    data_checksums: bool
    tablespaces: list[dict[str, Any]] = field(default_factory=list)
    settings: dict[str, str | None] = field(default_factory=dict)


def read_server_facts(conn: ConnectionInfo) -> ServerFacts:
    """Version, system identifier, timeline, segment size, tablespaces and the archive settings."""
    with pg_tools.connect(conn, PostgresEngine.database_of(conn)) as pg:
        facts = PostgresEngine.server_facts(pg)
        system_identifier, timeline = pg.execute(
            "SELECT s.system_identifier::text, c.timeline_id FROM pg_control_system() s, pg_control_checkpoint() c"
        ).fetchone()
        segment_size = int(pg.execute("SELECT setting FROM pg_settings WHERE name = 'wal_segment_size'").fetchone()[0])
        checksums = pg.execute("SHOW data_checksums").fetchone()[0] == "on"
        tablespaces = [
            {"oid": oid, "name": name, "location": location}
            for oid, name, location in pg.execute(
                "SELECT oid, spcname, pg_tablespace_location(oid) FROM pg_tablespace "
                "WHERE spcname NOT IN ('pg_default', 'pg_global') ORDER BY oid"
            )
        ]
        settings = {
            name: pg.execute("SELECT current_setting(%s, true)", (name,)).fetchone()[0]
            for name in ("wal_level", "archive_mode", "archive_command", "archive_library", "max_wal_senders")
        }
        rolreplication = pg.execute("SELECT rolreplication OR rolsuper FROM pg_roles WHERE rolname = current_user")
        settings["replication_role"] = "on" if rolreplication.fetchone()[0] else "off"
    return ServerFacts(
        facts["server_version"],
        facts["server_version_num"],
        system_identifier,
        int(timeline),
        segment_size,
        checksums,
        tablespaces,
        settings,
    )


def physical_problems(facts: ServerFacts) -> list[str]:
    """What stops a base backup that the WAL archive can make restorable, each with what to set."""
    s = facts.settings
    problems = []
    if s.get("wal_level") not in ("replica", "logical"):
        problems.append(f"wal_level is {s.get('wal_level')!r}: set wal_level = replica (needs a restart)")
    if s.get("archive_mode") not in ("on", "always"):
        problems.append(
            f"archive_mode is {s.get('archive_mode')!r}: set archive_mode = on and archive_command to "
            "spool-archive.sh (docs/wal-archiver.md), then restart"
        )
    if s.get("max_wal_senders") in ("0", None):
        problems.append("max_wal_senders is 0: set it to at least 2 (pg_basebackup uses a WAL sender)")
    if s.get("replication_role") != "on":
        problems.append(
            "the connection's role lacks REPLICATION: ALTER ROLE <role> REPLICATION, or name a "
            "replication_conn_id in the database's physical block"
        )
    return problems


@dataclass
class WalRange:
    """The WAL a base backup needs: from its start LSN to its stop LSN, on one timeline."""

    timeline: int
    start_lsn: int
    stop_lsn: int
    segment_size: int

    @property
    def start_segment(self) -> str:
        return segment_of_lsn(self.timeline, self.start_lsn, self.segment_size).name(self.segment_size)

    @property
    def stop_segment(self) -> str:
        # The stop LSN is the end of the last record needed: when it sits on a segment boundary the
        # segment before holds it.
        return segment_of_lsn(self.timeline, max(self.start_lsn, self.stop_lsn - 1), self.segment_size).name(
            self.segment_size
        )

    def segments(self) -> list[str]:
        first = segment_of_lsn(self.timeline, self.start_lsn, self.segment_size)
        last = segment_of_lsn(self.timeline, max(self.start_lsn, self.stop_lsn - 1), self.segment_size)
        return [type(first)(self.timeline, n).name(self.segment_size) for n in range(first.number, last.number + 1)]

    def to_dict(self) -> dict[str, Any]:
        return {
            "timeline": self.timeline,
            "start_lsn": format_lsn(self.start_lsn),
            "stop_lsn": format_lsn(self.stop_lsn),
            "start_segment": self.start_segment,
            "stop_segment": self.stop_segment,
            "segment_size": self.segment_size,
        }


def wal_range_of(pg_manifest: bytes, segment_size: int) -> WalRange:
    """The WAL range PostgreSQL's ``backup_manifest`` records (``WAL-Ranges``: one, on the backup's timeline)."""
    try:
        ranges = json.loads(pg_manifest)["WAL-Ranges"]
        first = ranges[0]
        return WalRange(
            int(first["Timeline"]), parse_lsn(first["Start-LSN"]), parse_lsn(first["End-LSN"]), segment_size
        )
    except (ValueError, KeyError, IndexError, TypeError) as exc:
        raise IntegrityError(
            f"pg_basebackup's backup_manifest has no usable WAL-Ranges: {exc}",
            hint="The base backup is not stored; check the pg_basebackup version (15 or newer writes manifests)",
        ) from None


def parse_backup_label(text: str) -> dict[str, str]:
    """``backup_label``'s ``KEY: value`` lines (START WAL LOCATION, START TIME, LABEL, ...)."""
    fields = {}
    for line in text.splitlines():
        key, sep, value = line.partition(": ")
        if sep:
            fields[key.strip()] = value.strip()
    return fields


class RunningBaseBackup:
    """A running ``pg_basebackup``; ``stdout`` is a :class:`TarTap` over its tar.

    ``parts()`` gives what to store: ``(role, tablespace oid, reader)``, here the one data tar.
    """

    def parts(self) -> list[tuple[str, int | None, Any]]:
        return [("base", None, self.stdout)]

    def __init__(self, proc: subprocess.Popen, database: str) -> None:
        assert proc.stdout is not None and proc.stderr is not None
        self.proc = proc
        self.database = database
        self.stdout = TarTap(proc.stdout, frozenset({BACKUP_LABEL, BACKUP_MANIFEST}))
        self.stderr_tail = StreamTail(proc.stderr, "pg_basebackup")

    def finish(self) -> None:
        returncode = self.proc.wait()
        self.stderr_tail.join()
        if returncode != 0:
            raise tool_failure(
                "pg_basebackup",
                returncode,
                self.stderr_tail,
                database=self.database,
                hint="The base backup is incomplete and is not stored; fix the cause and run it again",
            )
        if BACKUP_MANIFEST not in self.stdout.members or BACKUP_LABEL not in self.stdout.members:
            raise IntegrityError(
                "pg_basebackup's tar ended without backup_label or backup_manifest",
                database=self.database,
                hint="The base backup is not stored; run it again (and check pg_basebackup's version)",
            )

    @property
    def pg_manifest(self) -> bytes:
        return self.stdout.members[BACKUP_MANIFEST]

    @property
    def backup_label(self) -> dict[str, str]:
        return parse_backup_label(self.stdout.members[BACKUP_LABEL].decode("utf-8", "replace"))

    def close(self) -> None:
        stop_process(self.proc)
        self.stderr_tail.join(5)
        if not self.proc.stdout.closed:
            self.proc.stdout.close()


def _replication_args(conn: ConnectionInfo) -> list[str]:
    """``-h -p -U`` (and ``-d`` when SSL extras make a conninfo: pg_basebackup ignores its dbname)."""
    args = pg_tools.connection_args(conn, "postgres")
    if args[-2:] == ["-d", "postgres"]:
        return args[:-2]
    return args


def _checked_tool(conn: ConnectionInfo, facts: ServerFacts) -> tuple[str, str]:
    """The ``pg_basebackup`` that fits the server, once the server can give a restorable base backup."""
    if problems := physical_problems(facts):
        raise ConfigError(
            "the server cannot give a restorable base backup: " + "; ".join(problems),
            database=conn.schema,
            hint="Fix the settings named, then run the base backup again",
        )
    return PostgresEngine.client_tool(
        "pg_basebackup", {"server_version": facts.server_version, "server_version_num": facts.server_version_num}
    )


@contextmanager
def run_pg_basebackup(conn: ConnectionInfo, facts: ServerFacts, label: str) -> Iterator[RunningBaseBackup]:
    """``pg_basebackup`` streaming its tar; stopped (and its password gone) when the block ends."""
    tool, version = _checked_tool(conn, facts)
    with ExitStack() as stack:
        passfile = stack.enter_context(pg_tools.password_file(conn))
        args = [
            tool,
            "--pgdata=-",
            "--format=tar",
            "--wal-method=none",
            "--checkpoint=fast",
            "--manifest-checksums=SHA256",
            f"--label={label}",
            "--no-password",
            *_replication_args(conn),
        ]
        with held():  # a stop signal waits until the tool is under the stack's guard
            proc = subprocess.Popen(
                args,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                env=pg_tools.child_env(passfile),
                pass_fds=pg_tools.pass_fds(passfile),
            )
            running = RunningBaseBackup(proc, conn.schema or "")
            stack.callback(running.close)
        log.info("pg_basebackup started server=%s version=%s pid=%s", pg_tools.address(conn, ""), version, proc.pid)
        running.tool_version = version  # type: ignore[attr-defined]
        yield running


class StagedBaseBackup:
    """A finished ``pg_basebackup -D <staging> -Ft``: ``base.tar``, ``<oid>.tar`` files, ``backup_manifest``."""

    def __init__(self, staging: Path, facts: ServerFacts, database: str) -> None:
        self.staging = staging
        self.facts = facts
        self.database = database
        self._open: list[Any] = []

    def parts(self) -> list[tuple[str, int | None, Any]]:
        found = [("base", None, self.staging / "base.tar")]
        found += [("tablespace", int(t["oid"]), self.staging / f"{t['oid']}.tar") for t in self.facts.tablespaces]
        missing = [str(path) for _, _, path in found if not path.is_file()]
        if missing:
            raise IntegrityError(
                f"pg_basebackup wrote no {', '.join(missing)}",
                database=self.database,
                hint="The base backup is not stored; a tablespace was created or dropped during it: run it again",
            )
        parts = []
        for role, oid, path in found:
            fh = open(path, "rb")  # noqa: SIM115 - closed in close()
            self._open.append(fh)
            parts.append((role, oid, fh))
        return parts

    def finish(self) -> None:
        """Already finished (the staging run waits for pg_basebackup)."""

    @property
    def pg_manifest(self) -> bytes:
        return (self.staging / BACKUP_MANIFEST).read_bytes()

    @property
    def backup_label(self) -> dict[str, str]:
        import tarfile

        with tarfile.open(self.staging / "base.tar") as tar:
            member = tar.extractfile(BACKUP_LABEL)
            if member is None:
                raise IntegrityError("base.tar has no backup_label", database=self.database)
            return parse_backup_label(member.read().decode("utf-8", "replace"))

    def close(self) -> None:
        for fh in self._open:
            fh.close()


@contextmanager
def stage_pg_basebackup(
    conn: ConnectionInfo, facts: ServerFacts, label: str, staging_root: Path | None
) -> Iterator[StagedBaseBackup]:
    """``pg_basebackup`` into a private staging directory (clusters with tablespaces), removed afterwards."""
    import shutil
    import tempfile

    tool, version = _checked_tool(conn, facts)
    staging = Path(tempfile.mkdtemp(prefix="restorable-basebackup-", dir=staging_root))
    try:
        target = staging / "out"
        with pg_tools.password_file(conn) as passfile:
            args = [
                tool,
                f"--pgdata={target}",
                "--format=tar",
                "--wal-method=none",
                "--checkpoint=fast",
                "--manifest-checksums=SHA256",
                "--no-sync",  # staged for minutes at most: durability comes from the bucket
                f"--label={label}",
                "--no-password",
                *_replication_args(conn),
            ]
            popen = {"stdin": subprocess.DEVNULL, "stdout": subprocess.DEVNULL, "stderr": subprocess.PIPE}
            with running(args, **popen, env=pg_tools.child_env(passfile), pass_fds=pg_tools.pass_fds(passfile)) as proc:
                tail = StreamTail(proc.stderr, "pg_basebackup")  # type: ignore[arg-type]
                log.info(
                    "pg_basebackup started (staged: %d tablespace(s)) dir=%s version=%s pid=%s",
                    len(facts.tablespaces),
                    staging,
                    version,
                    proc.pid,
                )
                returncode = proc.wait()
                tail.join()
        if returncode != 0:
            raise tool_failure(
                "pg_basebackup",
                returncode,
                tail,
                database=conn.schema,
                hint="The base backup is incomplete and is not stored; fix the cause and run it again",
            )
        staged = StagedBaseBackup(target, facts, conn.schema or "")
        staged.tool_version = version  # type: ignore[attr-defined]
        try:
            yield staged
        finally:
            staged.close()
    finally:
        shutil.rmtree(staging, ignore_errors=True)
