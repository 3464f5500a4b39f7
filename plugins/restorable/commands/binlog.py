"""The binlog commands of the CLI (MariaDB/MySQL): ``binlog-archiver``, ``binlog-status``,
``verify-binlog``, and ``restore --gtid/--time/--position`` (restore to a moment from binlogs).

Exit codes are the CLI's: 6 for a gap (``verify-binlog``; ``binlog-status`` while the archiver's
gap alarm is up), 7 for a refused target, 143/130 when the archiver is stopped by a signal.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from restorable.exceptions import ConfigError, Interrupted
from restorable.services import Services


def add_parsers(sub: Any) -> None:
    a = sub.add_parser(
        "binlog-archiver",
        help="run the binlog archiver service of a MariaDB database (runs until SIGTERM)",
        description="Follow the server's binary logs with mariadb-binlog --read-from-remote-server --raw "
        "--stop-never into binlog.spool_dir, upload every closed file (and a snapshot of the live one every "
        "live_interval seconds), commit a heartbeat row every heartbeat_interval seconds, and raise the gap "
        "alarm when the server purged a file before it was archived. SIGTERM finishes the upload in flight and "
        "exits 143.",
    )
    a.add_argument("database")
    a.add_argument("--no-heartbeat", action="store_true", help="do not commit heartbeat rows in the source")

    st = sub.add_parser("binlog-status", help="the binlog archiver's state: newest archived, spool, alarms (6: gap)")
    st.add_argument("database")
    st.add_argument("--json", action="store_true", default=argparse.SUPPRESS, help="print the status as JSON")

    vb = sub.add_parser(
        "verify-binlog",
        help="check the binlog archive has no missing file and no GTID hole since the oldest backup; exit 6 on a gap",
    )
    vb.add_argument("database")
    vb.add_argument("--from", dest="start", help="first binlog file to require (default: the oldest logical backup's)")
    vb.add_argument("--json", action="store_true", default=argparse.SUPPRESS, help="print the report as JSON")


def add_restore_options(r: argparse.ArgumentParser) -> None:
    """MariaDB point-in-time options of ``restore`` (``--time`` is shared with PostgreSQL's)."""
    g = r.add_argument_group("MariaDB point-in-time recovery (a logical backup plus archived binlogs)")
    g.add_argument("--gtid", help="replay up to and including this GTID (domain-server-seq)")
    g.add_argument("--position", help="replay the events before this binlog position (FILE:POS)")


def _binlog_settings(services: Services, database_id: str) -> Any:
    db = services.config.database(database_id)
    if db.binlog is None:
        raise ConfigError(
            f"{services.config.path}: database {database_id!r} has no binlog block (no binlog archiving)",
            hint="Add binlog: {spool_dir: ...} to its entry and run restorable binlog-archiver",
        )
    return db.binlog


def cmd_binlog_archiver(args: argparse.Namespace, services: Services) -> int:
    from restorable.binlog.service import BinlogArchiver

    archiver = BinlogArchiver(services, args.database, heartbeat=not args.no_heartbeat)
    try:
        archiver.run()
    except Interrupted as exc:
        print(
            f"restorable: {exc}; binlog-archiver finished the upload in flight and stopped "
            f"({archiver.counts['archived']} archived)",
            file=sys.stderr,
        )
        return exc.exit_code
    return 0


def cmd_binlog_status(args: argparse.Namespace, services: Services) -> int:
    from restorable.binlog.objects import list_archived
    from restorable.binlog.service import STATE_FILE
    from restorable.cli import _emit
    from restorable.repository.layout import Layout
    from restorable.wal.state import process_alive, read_state

    settings = _binlog_settings(services, args.database)
    state = read_state(settings.spool_dir / STATE_FILE) or {}
    archived = list_archived(services.store("restore"), Layout(services.config.storage.prefix), args.database)
    closed = [a for a in archived if not a.partial]
    running = bool(state.get("running")) and process_alive(state.get("pid"))
    status = {
        "database_id": args.database,
        "archiver": {"running": running, "pid": state.get("pid"), "updated_at": state.get("updated_at")},
        "newest_archived": state.get("newest_archived"),
        "spool": state.get("spool", []),
        "alarms": state.get("alarms", []),
        "lost": state.get("lost", []),
        "last_heartbeat_archived": state.get("last_heartbeat_archived"),
        "bucket": {
            "closed_files": len(closed),
            "newest_closed": closed[-1].name if closed else None,
            "newest_event_time": max((a.last_time or 0 for a in archived), default=0) or None,
        },
    }
    lines = [
        f"binlog archiver of {args.database}: {'running' if running else 'NOT RUNNING'} (pid {state.get('pid')})",
        f"  newest archived file    {status['bucket']['newest_closed'] or '-'} ({len(closed)} closed files)",
        f"  spool                   {', '.join(status['spool']) or '-'}",
        f"  last heartbeat archived {(status['last_heartbeat_archived'] or {}).get('at', '-')}",
    ]
    lines += [f"  ALARM {a['kind']}: {a['message']}" for a in status["alarms"]]
    _emit(args, status, "\n".join(lines))
    return 6 if any(a.get("kind") == "gap" for a in status["alarms"]) else 0


def cmd_verify_binlog(args: argparse.Namespace, services: Services) -> int:
    from restorable.binlog.continuity import check_continuity
    from restorable.binlog.objects import file_number, list_archived
    from restorable.binlog.positions import backup_starts
    from restorable.cli import _emit
    from restorable.repository.layout import Layout

    services.config.database(args.database)
    if args.start is not None:
        try:
            file_number(args.start)
        except ValueError as exc:
            raise ConfigError(f"--from: {exc}") from None
    catalog = services.catalog("restore")
    archived = list_archived(catalog.store, Layout(services.config.storage.prefix), args.database)
    report = check_continuity(archived, backup_starts(catalog, args.database), args.start)
    verdict = "no gap" if report.ok else f"{len(report.gaps)} file gap(s), {len(report.gtid_holes)} GTID hole(s)"
    lines = [
        f"binlog archive of {args.database} from {report.start or '-'} ({report.start_source}): {report.found} "
        f"closed files to {report.newest or '-'}, live snapshot {report.live or '-'}; {verdict}"
    ]
    lines += [f"  MISSING {g.first} .. {g.last} ({g.files} files)" for g in report.gaps]
    lines += [f"  GTID {h}" for h in report.gtid_holes]
    lines += [f"  breaks backup {b['backup_id']} (starts in {b['binlog_file']})" for b in report.broken_backups]
    _emit(args, report.to_dict(), "\n".join(lines))
    if report.ok:
        return 0
    what = f"missing {report.gaps[0].first} .. {report.gaps[0].last}" if report.gaps else report.gtid_holes[0]
    print(f"restorable: error: the binlog archive of {args.database} is not continuous: {what}", file=sys.stderr)
    return 6


def wants_binlog_restore(args: argparse.Namespace, services: Services) -> bool:
    """A MariaDB restore to a moment: --gtid or --position, or --time on a database archiving binlogs."""
    if getattr(args, "gtid", None) or getattr(args, "position", None):
        return True
    if args.time and args.target_dir is None:
        db = services.config.databases.get(args.database)
        return db is not None and db.engine == "mysql"
    return False


def cmd_restore_to_moment(args: argparse.Namespace, services: Services, identity: str | None) -> int:
    from restorable.binlog.replay import restore_to_moment
    from restorable.binlog.targets import parse_binlog_target
    from restorable.cli import _emit
    from restorable.commands.restore_target import target_connection

    if args.target_dir is not None or args.backup_id != "latest":
        raise ConfigError(
            "--gtid/--time/--position restore a MariaDB database to a moment: the backup is chosen for the target, "
            "and --target-dir is for PostgreSQL",
            hint="restorable restore DB --gtid G --target CONN_ID --database NAME",
        )
    if not args.target or not args.target_database:
        raise ConfigError("a restore to a moment needs --target and --database")
    point = parse_binlog_target(gtid=args.gtid, time=args.time, position=args.position)
    report = restore_to_moment(
        services,
        args.database,
        point,
        target=target_connection(services, args.target),
        database=args.target_database,
        overwrite=args.overwrite,
        identity=identity,
    )
    _emit(
        args,
        report.to_dict(),
        f"restored {report.backup_id} into {report.database} on {report.target} and replayed binlogs from "
        f"{report.start} to {report.stop} ({len(report.files)} files, {report.transactions_in_range} transactions "
        f"in range) for {report.point}; restore {report.restore_seconds} s, replay {report.replay_seconds} s",
    )
    return 0


def cmd_binlog_drill(args: argparse.Namespace, services: Services, wanted: Any, as_of: Any) -> int:
    """``pitr-drill`` of a MariaDB database (``binlog.drill``); ``--as-of`` is PostgreSQL's only for now."""
    from restorable.binlog.drill import run_binlog_drill
    from restorable.cli import _emit, _identity
    from restorable.metrics import observed, pitr_drill_figures

    if as_of is not None:
        raise ConfigError("--as-of is not supported for MariaDB point-in-time drills yet", hint="Leave it out")
    with observed(services, "pitr_drill", args.database) as run:
        result = run_binlog_drill(
            services, args.database, identity=_identity(args) or services.identity(), target_time=wanted
        )
        run.figures.update(pitr_drill_figures(result.figures, result.ok))
    f = result.figures
    _emit(
        args,
        result.to_dict(),
        f"point-in-time drill of {result.database_id} PASSED: backup {result.backup_id} restored to {result.target}, "
        f"heartbeats up to {f['heartbeat_before']['id']} present and {f['heartbeat_after']['id']} absent; "
        f"RTO {f['rto_seconds']} s, {f['binlog_files_replayed']} binlog files replayed, "
        f"RPO at drill {f['rpo_seconds_at_drill']} s\n  evidence {result.evidence_key}",
    )
    return 0
