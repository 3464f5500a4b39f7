"""The WAL commands of the CLI: ``wal-archiver``, ``wal-fetch``, ``wal-status``, ``verify-wal``.

``wal-fetch`` is PostgreSQL's ``restore_command`` and has exit codes of its own (0 written,
1 only for a file the archive does not have, 126 for every other failure, even a bad argument:
see ``restorable.wal.fetch``); the others use the CLI's usual codes (6: a gap in the archive).
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Any

from restorable.exceptions import Interrupted, NotFound, RestorableError
from restorable.services import Services

log = logging.getLogger(__name__)

#: restore_command exit codes (PostgreSQL: 1-125 "not available", > 125 fatal).
FETCH_OK = 0
FETCH_MISSING = 1
FETCH_FAILED = 126


def add_parsers(sub: Any) -> None:
    a = sub.add_parser(
        "wal-archiver",
        help="run the WAL archiver service of a database (uploads the spool; runs until SIGTERM)",
        description="Upload every WAL file PostgreSQL leaves in the spool directory (physical.wal.spool_dir), "
        "oldest first, reading each object back before removing its spool file; commit a heartbeat row every "
        "heartbeat_interval seconds. SIGTERM finishes the uploads in flight and exits 143.",
    )
    a.add_argument("database")
    a.add_argument("--no-heartbeat", action="store_true", help="do not commit heartbeat rows in the source")

    f = sub.add_parser(
        "wal-fetch",
        help="restore_command: fetch one archived WAL file (exit 1 only when it is not archived)",
        description="restore_command = '<python> -m restorable.cli --config <cfg> wal-fetch <db> %%f %%p'. "
        "Exit 0: written and checked; 1: not in the archive; 126: any other failure (recovery stops, FATAL).",
    )
    f.add_argument("database")
    f.add_argument("wal_file")
    f.add_argument("dest", type=Path)
    f.add_argument("--cache-dir", type=Path, help="prefetch cache (default: <dest dir>/restorable-prefetch)")
    f.add_argument("--prefetch", type=int, default=None, help="0: do not start the prefetcher")
    f.add_argument("--identity-file", type=Path, help="age identity file (default: the identity connection)")

    st = sub.add_parser(
        "wal-status",
        help="the WAL archiver's state: last archived, queue, oldest spooled file, heartbeats, alarms",
    )
    st.add_argument("database")
    st.add_argument("--json", action="store_true", default=argparse.SUPPRESS, help="print the status as JSON")

    vw = sub.add_parser(
        "verify-wal",
        help="check the WAL archive has no gap (per timeline) and its history files agree; exit 6 on a gap",
    )
    vw.add_argument("database")
    vw.add_argument(
        "--from",
        dest="start",
        help="first segment to require (default: the oldest physical base backup's start, else the oldest archived)",
    )
    vw.add_argument("--json", action="store_true", default=argparse.SUPPRESS, help="print the report as JSON")
    vw.add_argument("--identity-file", type=Path, help="age identity file (to read .history files)")


def cmd_wal_archiver(args: argparse.Namespace, services: Services) -> int:
    from restorable.wal.service import WalArchiver

    archiver = WalArchiver(services, args.database, heartbeat=not args.no_heartbeat)
    try:
        archiver.run()
    except Interrupted as exc:
        print(
            f"restorable: {exc}; wal-archiver finished the uploads in flight and stopped "
            f"({archiver.counts['archived']} archived)",
            file=sys.stderr,
        )
        return exc.exit_code
    return 0


def cmd_wal_fetch(args: argparse.Namespace, services: Services, identity: str | None) -> int:
    """The restore_command. Every failure path returns FETCH_FAILED except a missing file."""
    from restorable.repository.layout import Layout
    from restorable.wal.fetch import check_wal_file_name, default_cache_dir, fetch_wal, note_wanted, start_prefetcher
    from restorable.wal.names import kind_of

    check_wal_file_name(args.wal_file)  # a bad %f is a setup mistake: say so before reaching anything
    cache_dir = args.cache_dir or default_cache_dir(args.dest)
    store = services.store("restore")
    layout = Layout(services.config.storage.prefix)
    services.config.database(args.database)  # a typo in the id is a config error, not "no more WAL"
    try:
        result = fetch_wal(
            store, layout, identity or services.identity(), args.database, args.wal_file, args.dest, cache_dir=cache_dir
        )
    except NotFound as exc:
        print(f"restorable: {exc}", file=sys.stderr)
        return FETCH_MISSING
    log.info("wal fetched file=%s bytes=%d from=%s", result.wal_file, result.size, result.source)
    if args.prefetch != 0 and result.source != "partial":
        try:
            cache_dir.mkdir(mode=0o700, exist_ok=True)
            note_wanted(cache_dir, args.wal_file, result.size if kind_of(args.wal_file) == "segment" else None)
            start_prefetcher(args.config, args.database, cache_dir)
        except OSError as exc:  # the fetch itself succeeded: prefetching is only an optimisation
            log.warning("wal prefetch not started error=%s", exc)
    return FETCH_OK


def fetch_failure(exc: BaseException) -> int:
    """Any failure of wal-fetch other than "not archived": one line, and an exit PostgreSQL takes as fatal."""
    from restorable.cli import error_line

    if isinstance(exc, RestorableError):
        text = error_line(exc)
    elif isinstance(exc, KeyboardInterrupt):
        text = f"restorable: error: wal-fetch interrupted ({exc})"
    else:
        text = error_line(RuntimeError(f"{type(exc).__name__}: {exc}"))
    # Never FETCH_MISSING here, whatever the kind: only fetch_wal knows a file is not archived.
    print(text + " (exit 126: recovery must stop, not end early)", file=sys.stderr)
    return FETCH_FAILED


def run_wal_fetch(parser: argparse.ArgumentParser, argv: list[str]) -> int:
    """``main()`` for wal-fetch: argument errors, config errors and crashes all exit 126, not 2 or 1."""
    from restorable.cli import _identity
    from restorable.config import load_config
    from restorable.connections import resolve_connection
    from restorable.interrupt import stop_on_signals

    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return FETCH_OK if exc.code in (0, None) else FETCH_FAILED
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
        stream=sys.stderr,
    )
    try:
        with stop_on_signals():
            services = Services(load_config(args.config), resolve=resolve_connection)
            return cmd_wal_fetch(args, services, _identity(args))
    except BaseException as exc:
        return fetch_failure(exc)


def cmd_wal_status(args: argparse.Namespace, services: Services) -> int:
    from restorable.cli import _emit
    from restorable.wal.status import wal_status

    status = wal_status(services, args.database)
    queue, last = status["queue"], status["last_archived_segment"]
    oldest = queue["oldest"]
    lines = [
        f"wal archiver of {args.database}: {'running' if status['archiver']['running'] else 'NOT RUNNING'} "
        f"(pid {status['archiver']['pid']}, state {status['archiver']['updated_seconds_ago']} s old)",
        f"  last archived segment  {last or '-'}",
        f"  queue                  {queue['files']} files, {queue['bytes']} bytes"
        + (f"; oldest {oldest['name']} ({oldest['age_seconds']} s)" if oldest else ""),
        f"  last heartbeat archived {(status['last_heartbeat_archived'] or {}).get('at', '-')}",
        f"  bucket newest segment  {status['bucket']['newest_segment'] or '-'} ({status['bucket']['objects']} objects)",
    ]
    lines += [f"  ALARM {a['kind']}: {a['message']}" for a in status["alarms"]]
    _emit(args, status, "\n".join(lines))
    return 0


def cmd_verify_wal(args: argparse.Namespace, services: Services) -> int:
    from restorable.cli import _emit, _identity
    from restorable.repository.layout import Layout
    from restorable.wal.continuity import check_continuity
    from restorable.wal.fetch import check_wal_file_name

    services.config.database(args.database)
    if args.start is not None:
        check_wal_file_name(args.start)
    identity = _identity(args) or _optional_identity(services)
    report = check_continuity(
        services.store("restore"),
        Layout(services.config.storage.prefix),
        args.database,
        identity=identity,
        start=args.start,
    )
    _compare_server_timeline(services, args.database, report)
    verdict = "no gap" if report.ok else f"{len(report.gaps)} gap(s), {len(report.history_problems)} history problem(s)"
    lines = [
        f"WAL archive of {args.database} from {report.start or '-'} ({report.start_source}): {report.found} segments "
        f"found, {verdict}; segment size {report.segment_size} bytes",
    ]
    lines += [f"  newest on timeline {t:08X}: {n}" for t, n in sorted(report.newest.items())]
    lines += [f"  MISSING {g.first} .. {g.last} ({g.segments} segments)" for g in report.gaps]
    lines += [f"  HISTORY {p}" for p in report.history_problems]
    lines += [f"  breaks base backup {b['backup_id']} (starts at {b['start_segment']})" for b in report.broken_backups]
    _emit(args, report.to_dict(), "\n".join(lines))
    if report.ok:
        return 0
    first = report.gaps[0] if report.gaps else None
    what = f"missing {first.first} .. {first.last}" if first else report.history_problems[0]
    print(f"restorable: error: the WAL archive of {args.database} is not continuous: {what}", file=sys.stderr)
    return 6


def _compare_server_timeline(services: Services, database_id: str, report: Any) -> None:
    """The newest timeline in the bucket must be the server's (else its history file or WAL is
    missing, or a restore pushed a foreign timeline). An unreachable server is noted, not a failure."""
    from restorable.engines.postgres.engine import PostgresEngine
    from restorable.engines.postgres.tools import connect

    conn = services.resolve(services.config.database(database_id).conn_id)
    try:
        with connect(conn, PostgresEngine.database_of(conn)) as pg:
            timeline = pg.execute("SELECT timeline_id FROM pg_control_checkpoint()").fetchone()[0]
    except RestorableError as exc:
        report.server_timeline = None
        log.warning("server timeline not compared database=%s error=%s", database_id, exc)
        return
    report.server_timeline = timeline
    newest = max(report.timelines, default=None)
    if newest is not None and newest != timeline:
        report.history_problems.append(
            f"the server is on timeline {timeline:08X} but the newest timeline archived is {newest:08X}"
        )


def _optional_identity(services: Services) -> str | None:
    """The identity for reading .history files, or None (then they are reported as not checked)."""
    try:
        return services.identity()
    except RestorableError:
        return None
