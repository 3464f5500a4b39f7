"""The CLI of physical backups: ``base-backup``, and ``restore --target-dir`` to a point in time."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from restorable.exceptions import ConfigError
from restorable.progress import human_bytes
from restorable.services import Services


def add_parsers(sub: Any) -> None:
    bb = sub.add_parser(
        "base-backup",
        help="take a physical base backup (pg_basebackup) through the chain; commits once its WAL is archived",
    )
    bb.add_argument("database")
    bb.add_argument("--no-verify", action="store_true", help="return once committed, without reading it back")
    bb.add_argument("--json", action="store_true", default=argparse.SUPPRESS, help="print the result as JSON")

    pd = sub.add_parser(
        "pitr-drill",
        help="restore the newest base backup to a moment between two heartbeats and prove exactly those rows",
    )
    pd.add_argument("database")
    pd.add_argument("--time", help="drill around this moment (ISO 8601 with offset; default: a random one)")
    pd.add_argument(
        "--as-of",
        help="drill as a run of this date would (a backfill): the base backup current then, a moment before it",
    )
    pd.add_argument("--work-dir", type=Path, help="where the throwaway copy goes (default: $TMPDIR)")
    pd.add_argument("--identity-file", type=Path, help="age identity file (default: the identity connection)")
    pd.add_argument("--json", action="store_true", default=argparse.SUPPRESS, help="print the result as JSON")


def add_restore_options(r: argparse.ArgumentParser) -> None:
    """Point-in-time options of ``restore``: given ``--target-dir``, the restore is physical."""
    g = r.add_argument_group("point-in-time recovery (a physical base backup plus archived WAL)")
    g.add_argument("--target-dir", type=Path, help="new or empty directory to restore the cluster into")
    g.add_argument("--time", help="recover to this moment (ISO 8601 with a UTC offset, e.g. 2026-12-03T14:05:00Z)")
    g.add_argument("--lsn", help="recover to this WAL position (e.g. 0/3000148)")
    g.add_argument("--xid", help="recover to this transaction id, inclusive")
    g.add_argument("--name", help="recover to this restore point (pg_create_restore_point)")
    g.add_argument("--immediate", action="store_true", help="recover only to the base backup's end")
    g.add_argument("--base", help="the base backup to start from (default: the newest that ended before the target)")
    g.add_argument("--timeline", help="timeline to follow (default: the base backup's; 'latest' only when asked)")
    g.add_argument("--start", action="store_true", help="start the restored server and wait for the target")
    g.add_argument("--port", type=int, help="port of the restored server (default: a free one)")
    g.add_argument("--promote", action="store_true", help="with --start: end recovery at the target (else paused)")
    g.add_argument("--timeout", type=float, default=3600.0, help="seconds to wait for replay (default 3600)")
    g.add_argument(
        "--tablespace-map",
        action="append",
        default=[],
        metavar="OID_OR_NAME=DIR",
        help="where a tablespace goes (default: <target-dir>.tablespaces/<oid>); repeatable",
    )
    r.add_argument("--json", action="store_true", default=argparse.SUPPRESS, help="print the result as JSON")


def cmd_base_backup(args: argparse.Namespace, services: Services) -> int:
    from restorable.cli import _emit
    from restorable.commands.base_backup import run_base_backup
    from restorable.commands.verify import verify_backup
    from restorable.metrics import backup_figures, observed, verify_figures

    with observed(services, "base_backup", args.database) as run:
        manifest = run_base_backup(services, args.database)
        run.figures.update(backup_figures(manifest))
    s = manifest.summary()
    if not args.no_verify:
        with observed(services, "verify", args.database) as run:
            run.figures.update(verify_figures(verify_backup(services, args.database, manifest.backup_id)))
    s["verified"] = not args.no_verify
    s["wal"] = manifest.wal
    _emit(
        args,
        s,
        f"base backup {s['backup_id']} of {s['database_id']} committed: {human_bytes(s['plain_bytes'])} tar, "
        f"{human_bytes(s['stored_bytes'])} stored, {s['seconds']} s; LSN {manifest.physical['start_lsn']} to "
        f"{manifest.physical['stop_lsn']} on timeline {manifest.physical['timeline']}; "
        f"{'read back and matched' if not args.no_verify else 'not read back (--no-verify)'}",
    )
    return 0


def cmd_restore_to_point(args: argparse.Namespace, services: Services, identity: str | None) -> int:
    from restorable.cli import _emit
    from restorable.physical.restore import PhysicalRestore, restore_to_point
    from restorable.physical.targets import parse_target

    if args.target or args.target_database or args.backup_id != "latest":
        raise ConfigError(
            "--target-dir restores a physical base backup: --target, --database and a backup id are for "
            "logical restores",
            hint="Use --base BACKUP_ID to choose the base backup",
        )
    if args.promote and not args.start:
        raise ConfigError("--promote needs --start")
    target = parse_target(time=args.time, lsn=args.lsn, xid=args.xid, name=args.name, immediate=args.immediate)
    request = PhysicalRestore(
        database_id=args.database,
        target=target,
        target_dir=args.target_dir.resolve(),
        base_id=args.base,
        timeline=args.timeline,
        start=args.start,
        port=args.port,
        promote=args.promote,
        timeout=args.timeout,
        tablespace_map=_tablespace_map(args.tablespace_map),
    )
    report = restore_to_point(services, request, identity=identity or services.identity())
    recovery = report.get("recovery") or {}
    lines = [
        f"restored base backup {report['base_backup']} of {report['database_id']} into {report['target_dir']} "
        f"({human_bytes(report['plain_bytes'])}, pg_verifybackup passed), target {target.describe()}",
    ]
    if recovery:
        lines.append(
            f"  recovered in {recovery['recovery_seconds']} s to LSN {recovery.get('replay_lsn')}, last commit "
            f"{recovery.get('last_replayed_commit')}; {'promoted' if recovery.get('promoted') else 'paused'} "
            f"on port {report['port']}"
        )
    else:
        lines.append(
            f"  not started: start it as the postgres user with the bucket's and the identity's AIRFLOW_CONN_* "
            f"variables set, e.g. pg_ctl start -D {report['target_dir']} (port {report['port']})"
        )
    _emit(args, report, "\n".join(lines))
    return 0


def cmd_pitr_drill(args: argparse.Namespace, services: Services) -> int:
    from restorable.cli import _emit, _identity
    from restorable.metrics import observed, pitr_drill_figures
    from restorable.physical.drill import run_pitr_drill
    from restorable.physical.targets import parse_target

    wanted = as_of = None
    if args.time:
        wanted = parse_target(time=args.time, lsn=None, xid=None, name=None, immediate=False).time
    if args.as_of:
        as_of = parse_target(time=args.as_of, lsn=None, xid=None, name=None, immediate=False).time
    if services.config.database(args.database).engine == "mysql":
        from restorable.commands.binlog import cmd_binlog_drill

        return cmd_binlog_drill(args, services, wanted, as_of)
    with observed(services, "pitr_drill", args.database) as run:
        result = run_pitr_drill(
            services,
            args.database,
            identity=_identity(args) or services.identity(),
            target_time=wanted,
            work_dir=args.work_dir,
            as_of=as_of,
        )
        run.figures.update(pitr_drill_figures(result.figures, result.ok))
    f = result.figures
    _emit(
        args,
        result.to_dict(),
        f"point-in-time drill of {result.database_id} PASSED: base {result.base_backup} restored to {result.target}, "
        f"heartbeats up to {f['heartbeat_before']['id']} present and {f['heartbeat_after']['id']} absent; "
        f"RTO {f['rto_seconds']} s, {f['wal_files_replayed']} WAL files replayed, "
        f"RPO at drill {f['rpo_seconds_at_drill']} s"
        f"\n  evidence {result.evidence_key}",
    )
    return 0


def _tablespace_map(entries: list[str]) -> dict[str, str]:
    mapping = {}
    for entry in entries:
        name, sep, directory = entry.partition("=")
        if not sep or not name or not directory.startswith("/"):
            raise ConfigError(
                f"--tablespace-map {entry!r} is not OID_OR_NAME=/absolute/dir",
                hint="e.g. --tablespace-map ts1=/srv/ts1",
            )
        mapping[name] = directory
    return mapping
