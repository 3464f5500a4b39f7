"""``restorable``: back up, list, verify, restore and drill from a shell, with or without Airflow.

During an incident Airflow's own metadata database may be what was lost: everything here
needs only the config, the connections (``AIRFLOW_CONN_*`` variables or URIs) and the bucket.

Exit codes: 0 ok, 2 config error, 3 source unreachable, 4 tool error, 5 storage error,
6 integrity failure (checksum, decryption, restored copy differs, drill failed, a gap in the WAL
archive), 7 restore refused, 8 not found, 130 interrupted by SIGINT (Ctrl-C), 143 interrupted by
SIGTERM (after cleaning up: children stopped, upload aborted, a database the restore created
dropped), 1 anything else. ``wal-fetch`` (PostgreSQL's restore_command) has its own: 0 written,
1 only when the file is not archived, 126 on any other failure (PostgreSQL then stops recovery).
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import time
from pathlib import Path
from typing import Any

from restorable.commands.copy_cli import cmd_copy, cmd_copy_status, fallback_text, services_for
from restorable.config import load_config
from restorable.connections import resolve_connection
from restorable.exceptions import ConfigError, Interrupted, RestorableError
from restorable.interrupt import stop_on_signals
from restorable.logs import cli_run_id, configure_logging, end_run, log_format, start_run
from restorable.progress import Progress, human_bytes
from restorable.services import Services


def _parser() -> argparse.ArgumentParser:
    from restorable.commands.binlog import add_parsers as add_binlog_parsers
    from restorable.commands.binlog import add_restore_options as add_binlog_restore_options
    from restorable.commands.copy_cli import add_from_option
    from restorable.commands.copy_cli import add_parsers as add_copy_parsers
    from restorable.commands.keys import add_parsers as add_keys_parsers
    from restorable.commands.pitr import add_parsers as add_pitr_parsers
    from restorable.commands.pitr import add_restore_options as add_pitr_restore_options
    from restorable.commands.report import add_parsers as add_report_parsers
    from restorable.commands.wal import add_parsers as add_wal_parsers

    p = argparse.ArgumentParser(prog="restorable", description=__doc__.split("\n")[0])
    p.add_argument("--config", help="config file (default: $RESTORABLE_CONFIG or include/restorable.yaml)")
    p.add_argument("--json", action="store_true", help="print machine-readable JSON on stdout")
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = p.add_subparsers(dest="command", required=True)

    b = sub.add_parser("backup", help="back up a configured database now, then read it back")
    b.add_argument("database")
    b.add_argument(
        "--no-verify", action="store_true", help="return once committed, without re-reading the stored object"
    )

    ls = sub.add_parser("list", help="list committed backups in the bucket")
    ls.add_argument("database", nargs="?")
    add_from_option(ls)

    v = sub.add_parser("verify", help="re-read a stored backup and check it against its manifest")
    v.add_argument("database")
    v.add_argument("backup_id", nargs="?", default="latest")
    v.add_argument(
        "--deep",
        action="store_true",
        help="also decrypt, decompress and parse the dump (a base backup: extract it and run pg_verifybackup)",
    )
    v.add_argument("--json", action="store_true", default=argparse.SUPPRESS, help="print the result as JSON")
    v.add_argument("--identity-file", type=Path, help="age identity file (default: the identity connection)")
    add_from_option(v)

    r = sub.add_parser("restore", help="restore a backup into a target database, then compare it")
    r.add_argument("database")
    r.add_argument("backup_id", nargs="?", default="latest")
    r.add_argument(
        "--target",
        help="connection id (AIRFLOW_CONN_<ID>) of the target server (a URI only without a password)",
    )
    r.add_argument("--database", dest="target_database", help="database to restore into")
    r.add_argument("--overwrite", action="store_true", help="replace the target database if it is not empty")
    r.add_argument("--jobs", type=int, help="parallel restore jobs (default from config)")
    r.add_argument("--identity-file", type=Path, help="age identity file (default: the identity connection)")
    add_pitr_restore_options(r)
    add_from_option(r)
    add_binlog_restore_options(r)

    d = sub.add_parser(
        "drill",
        help="prove a backup restores: restore into a scratch database, validate, record evidence, drop",
        description="Restore a backup into a new scratch database (drill_<db>_<random>) on the drill server, "
        "validate it against its manifest (Great Expectations and the schema), write the drill evidence beside "
        "the backup, and drop the scratch database whatever happened. Exit 0 when the drill passed, 6 when the "
        "restored copy differs (the tables and figures are named), 7 when the target is the source.",
    )
    d.add_argument("database")
    d.add_argument(
        "backup_id", nargs="?", default="latest", help='a backup id, or "latest" (the newest verified backup)'
    )
    d.add_argument("--target", help="connection id of the drill server (default: restore_target_conn_id)")
    # Also after the command (`restorable drill shop --json`); SUPPRESS keeps a --json given before it.
    d.add_argument("--json", action="store_true", default=argparse.SUPPRESS, help="print the result as JSON")
    d.add_argument("--identity-file", type=Path, help="age identity file (default: the identity connection)")
    add_from_option(d)

    h = sub.add_parser("hold", help="set or clear a legal hold on every object of a backup")
    h.add_argument("database")
    h.add_argument("backup_id")
    g = h.add_mutually_exclusive_group(required=True)
    g.add_argument("--on", dest="on", action="store_true")
    g.add_argument("--off", dest="on", action="store_false")

    lc = sub.add_parser("lifecycle", help="retention and the bucket audit (what enforce_lifecycle runs)")
    lc_sub = lc.add_subparsers(dest="lifecycle_command", required=True)
    lc_plan = lc_sub.add_parser("plan", help="show what retention would keep, transition and delete; change nothing")
    lc_apply = lc_sub.add_parser("apply", help="carry the retention plan out (deletes, transitions, orphan cleanup)")
    au = lc_sub.add_parser("audit", help="check versioning, Object Lock, encryption and lifecycle rules")
    au.add_argument("--fix", action="store_true", help="set the settings that can be set, then report")
    for each in (lc_plan, lc_apply, au):
        add_from_option(each)

    add_wal_parsers(sub)
    add_binlog_parsers(sub)
    add_pitr_parsers(sub)
    add_copy_parsers(sub)
    add_keys_parsers(sub)

    ex = sub.add_parser("exporter", help="serve freshness metrics computed from the bucket on /metrics (Prometheus)")
    ex.add_argument("--port", type=int, default=9464, help="port to listen on (default 9464)")
    ex.add_argument("--bind", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")

    add_report_parsers(sub)
    k = sub.add_parser("keygen", help="generate an age key pair (identity to a 0600 file, public key printed)")
    k.add_argument("output", type=Path, help="where to write the identity (must not exist)")
    return p


def _identity(args: argparse.Namespace) -> str | None:
    path: Path | None = getattr(args, "identity_file", None)
    if path is None:
        return None
    try:
        lines = [ln.strip() for ln in path.read_text().splitlines()]
    except OSError as exc:
        raise ConfigError(f"cannot read identity file {path}: {exc.strerror}") from None
    keys = [ln for ln in lines if ln.startswith("AGE-SECRET-KEY-")]
    if not keys:
        raise ConfigError(f"{path} holds no AGE-SECRET-KEY-1... line", hint="Pass the age key file made by age-keygen")
    return keys[0]


def _emit(args: argparse.Namespace, data: Any, text: str) -> None:
    if args.json:
        json.dump(data, sys.stdout, indent=2, default=str)
        sys.stdout.write("\n")
    else:
        print(text)


def cmd_backup(args: argparse.Namespace, services: Services) -> int:
    """A backup is done once its stored bytes were read back and matched (``--no-verify``: once committed)."""
    from restorable.commands.backup import run_backup
    from restorable.commands.verify import verify_backup
    from restorable.metrics import backup_figures, observed, verify_figures

    progress = Progress(f"backup {args.database}")
    with observed(services, "backup", args.database) as run:
        manifest = run_backup(services, args.database, on_progress=progress)
        run.figures.update(backup_figures(manifest))
    progress.finish()
    s = manifest.summary()
    checked = "not read back (--no-verify)"
    if not args.no_verify:
        t0 = time.monotonic()
        # Raises IntegrityError (exit 6) on a mismatch, after recording it beside the backup.
        with observed(services, "verify", args.database) as run:
            run.figures.update(verify_figures(verify_backup(services, args.database, manifest.backup_id)))
        s["verify_seconds"] = round(time.monotonic() - t0, 3)
        checked = f"read back and matched in {s['verify_seconds']} s"
    s["verified"] = not args.no_verify
    _emit(
        args,
        s,
        (
            f"backup {s['backup_id']} of {s['database_id']} committed: {human_bytes(s['plain_bytes'])} dump, "
            f"{human_bytes(s['stored_bytes'])} stored, {s['tables']} tables, {s['rows']} rows, "
            f"{s['seconds']} s ({s['mb_per_s']} MB/s); {checked}\n  key {s['key']}\n  sha256 {s['stored_sha256']}"
        ),
    )
    return 0


def cmd_list(args: argparse.Namespace, services: Services) -> int:
    catalog = services.catalog("restore")
    ids = [args.database] if args.database else catalog.database_ids()
    rows = []
    for db in ids:
        scan = catalog.scan(db)
        for entry in scan.entries:
            last = entry.last_check
            rows.append(
                {
                    **{k: v for k, v in entry.summary.items() if k not in ("object_keys", "summary_format")},
                    "verified": entry.verified,
                    "last_check": f"{last['kind']}:{'ok' if last['ok'] else 'FAILED'}" if last else None,
                    "damaged": None,
                }
            )
        # A damaged backup is listed, with why, so it is neither forgotten nor trusted.
        for broken in scan.damaged:
            rows.append(
                {
                    "database_id": db,
                    "backup_id": broken.backup_id,
                    "created_at": broken.created_at,
                    "verified": False,
                    "last_check": None,
                    "damaged": broken.reason,
                }
            )
        rows.sort(key=lambda r: (r["database_id"], r["created_at"], r["backup_id"]))
    lines = [f"{'DATABASE':12} {'BACKUP ID':26} {'CREATED':21} {'DUMP':>11} {'STORED':>11} {'VERIFIED':9} LAST CHECK"]
    for r in rows:
        if r["damaged"]:
            lines.append(f"{r['database_id']:12} {r['backup_id']:26} {r['created_at'][:19]:21} DAMAGED: {r['damaged']}")
            continue
        lines.append(
            f"{r['database_id']:12} {r['backup_id']:26} {r['created_at'][:19]:21} "
            f"{human_bytes(r['plain_bytes']):>11} {human_bytes(r['stored_bytes']):>11} "
            f"{'yes' if r['verified'] else 'no':9} {r['last_check'] or '-'}"
        )
    _emit(args, rows, "\n".join(lines) if rows else "no backups")
    return 0


def cmd_verify(args: argparse.Namespace, services: Services) -> int:
    from restorable.commands.verify import verify_backup
    from restorable.metrics import observed, verify_figures

    with observed(services, "verify", args.database) as run:
        result = verify_backup(services, args.database, args.backup_id, deep=args.deep, identity=_identity(args))
        run.figures.update(verify_figures(result))
    _emit(
        args,
        result,
        f"backup {result['backup_id']} of {args.database}: {result['kind']} verification "
        f"passed ({len(result['objects'])} object(s); sha256 "
        f"{result.get('found_stored_sha256') or result['objects'][0].get('found_stored_sha256')})",
    )
    return 0


def cmd_restore(args: argparse.Namespace, services: Services) -> int:
    from restorable.commands.binlog import cmd_restore_to_moment, wants_binlog_restore
    from restorable.commands.restore import restore_backup
    from restorable.commands.restore_target import target_connection

    if wants_binlog_restore(args, services):
        return cmd_restore_to_moment(args, services, _identity(args))
    if args.target_dir is not None:
        from restorable.commands.pitr import cmd_restore_to_point

        return cmd_restore_to_point(args, services, _identity(args))
    if not args.target or not args.target_database:
        raise ConfigError(
            "a logical restore needs --target and --database (a point-in-time restore needs --target-dir)",
            hint="restorable restore DB [BACKUP_ID] --target CONN_ID --database NAME",
        )
    target = target_connection(services, args.target)
    progress = Progress(f"restore {args.database}")

    def restore(source: Services, backup_id: str) -> Any:
        return restore_backup(
            source,
            args.database,
            backup_id,
            target=target,
            database=args.target_database,
            overwrite=args.overwrite,
            identity=_identity(args),
            jobs=args.jobs,
            on_progress=progress,
        )

    report, report.copy, report.fallback_reason = _from_copy_or_fallback(args, services, restore)
    progress.finish()
    status = "matches its manifest" if report.ok else f"DIFFERS from its manifest in {len(report.differences)} ways"
    text = [
        f"restored {report.backup_id} into {report.database} on {report.target} in {report.restore_seconds} s; "
        f"{report.found_rows} rows; {status}"
    ]
    text += [f"  - {d}" for d in report.differences]
    text += fallback_text(report.copy, report.fallback_reason)
    _emit(args, report.to_dict(), "\n".join(text))
    return 0 if report.ok else 6


def _drill_text(result: Any) -> str:
    """The verdict as a short table for people."""
    restore = result.restore or {}
    validation = result.validation or {}
    evidence = result.evidence
    verdict = "PASSED" if result.ok else f"FAILED at {evidence.get('failed_step')}"
    rows = [
        ("backup", f"{result.backup_id} (age {evidence.get('backup_age_seconds')} s)"),
        ("scratch", f"{result.scratch_database} on {result.target} ({'dropped' if result.dropped else 'NOT dropped'})"),
        ("hashes", "verified" if evidence.get("hashes_verified") else "NOT verified"),
        ("rows", f"expected {evidence.get('expected_rows')}, found {evidence.get('found_rows')}"),
        (
            "expectations",
            f"{validation.get('expectations', 0)} on {validation.get('tables', 0)} tables, "
            f"{validation.get('failed_expectations', 0)} failed",
        ),
        ("restore (RTO)", f"{restore.get('restore_seconds')} s"),
        ("evidence", evidence.get("record_key") or "NOT recorded"),
    ]
    lines = [f"drill of {result.database_id}: {verdict}"]
    lines += [f"  {name:14} {value}" for name, value in rows]
    lines += [f"  - {d}" for d in result.differences]
    return "\n".join(lines)


def cmd_drill(args: argparse.Namespace, services: Services) -> int:
    from restorable.commands.drill import run_drill
    from restorable.commands.restore_target import target_connection

    if args.target:
        target_connection(services, args.target)  # a URL holding a password is refused here

    from restorable.metrics import drill_figures, observed

    progress = Progress(f"drill {args.database}")
    with observed(services, "drill", args.database) as run:
        result, result.copy, result.fallback_reason = _from_copy_or_fallback(
            args,
            services,
            lambda source, backup_id: run_drill(
                source,
                args.database,
                backup_id,
                target_conn_id=args.target,
                identity=_identity(args),
                on_progress=progress,
            ),
        )
        run.figures.update(drill_figures(result.evidence, result.validation))
        run.failed = not result.ok
    progress.finish()
    _emit(args, result.to_dict(), "\n".join([_drill_text(result), *fallback_text(result.copy, result.fallback_reason)]))
    error = result.error()
    if error is None:
        return 0
    print(error_line(error), file=sys.stderr)
    return error.exit_code


def _from_copy_or_fallback(args: argparse.Namespace, services: Services, action: Any) -> tuple[Any, Any, Any]:
    """(result, copy, reason): ``--from COPY`` reads that copy; else the primary, then a verified copy."""
    from restorable.copies.fallback import with_fallback

    if args.from_copy:
        return action(services, args.backup_id), args.from_copy, None  # main() gave the copy's services
    return with_fallback(services, args.database, args.backup_id, action)


def cmd_hold(args: argparse.Namespace, services: Services) -> int:
    from restorable.lifecycle.apply import set_legal_hold

    catalog = services.catalog("lifecycle")
    manifest = catalog.read_manifest(args.database, args.backup_id)
    keys = set_legal_hold(catalog.store, services.config.storage.prefix, args.database, manifest.backup_id, args.on)
    _emit(
        args,
        {"backup_id": manifest.backup_id, "legal_hold": args.on, "objects": keys},
        f"legal hold {'set on' if args.on else 'cleared from'} {manifest.backup_id} ({len(keys)} objects)",
    )
    return 0


def cmd_lifecycle(args: argparse.Namespace, services: Services) -> int:
    from restorable.commands import lifecycle
    from restorable.repository.manifest import utcnow

    if args.lifecycle_command == "audit":
        drifts = lifecycle.run_audit(services, fix=args.fix)
        bucket = services.config.storage.bucket
        lines = [f"bucket {bucket}: " + ("as expected" if not drifts else f"{len(drifts)} difference(s)")]
        lines += [
            f"  {d.setting}: expected {d.expected}, found {d.found}" + (" (fixed)" if d.fixed else "") for d in drifts
        ]
        _emit(args, {"bucket": bucket, "drifts": [d.to_dict() for d in drifts]}, "\n".join(lines))
        failure = lifecycle.audit_failure(bucket, drifts)
    else:
        report = lifecycle.run_lifecycle(services, utcnow(), dry_run=args.lifecycle_command == "plan")
        verb = "would" if report.dry_run else "did"
        counts = report.counts()
        lines = [f"lifecycle ({verb}): " + ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in counts.items())]
        for name in ("deleted", "transitioned", "retained_by_lock", "orphans_removed", "uploads_aborted", "errors"):
            lines += [
                f"  {name.replace('_', ' ')}: {o.database}/{o.backup_id} ({o.reason})" for o in getattr(report, name)
            ]
        _emit(args, report.to_dict(), "\n".join(lines))
        failure = lifecycle.lifecycle_failure(report)
    if failure is None:
        return 0
    print(error_line(failure), file=sys.stderr)
    return failure.exit_code


def cmd_exporter(args: argparse.Namespace, services: Services) -> int:
    """Serve until stopped; SIGINT or SIGTERM ends it with 0 (nothing to clean up)."""
    from restorable.exporter import serve

    try:
        server, _ = serve(services, port=args.port, bind=args.bind)
    except OSError as exc:
        raise ConfigError(f"cannot listen on {args.bind}:{args.port}: {exc.strerror}") from None
    print(f"restorable exporter: serving http://{args.bind}:{server.server_port}/metrics", file=sys.stderr, flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        server.shutdown()
        return 0


def cmd_keygen(args: argparse.Namespace) -> int:
    import os

    from restorable.stream.keys import generate_identity

    identity, recipient = generate_identity()
    try:
        fd = os.open(args.output, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise ConfigError(
            f"{args.output} already exists; keygen never overwrites a file (it may hold a key backups need)",
            hint="Give a path that does not exist yet",
        ) from None
    with os.fdopen(fd, "w") as fh:
        fh.write(f"# public key: {recipient}\n{identity}\n")
    _emit(
        args,
        {"recipient": recipient, "identity_file": str(args.output)},
        f"identity written to {args.output} (keep it safe, away from the backups)\npublic key: {recipient}",
    )
    return 0


COMMANDS = {
    "backup": cmd_backup,
    "list": cmd_list,
    "verify": cmd_verify,
    "restore": cmd_restore,
    "drill": cmd_drill,
    "hold": cmd_hold,
    "lifecycle": cmd_lifecycle,
    "exporter": cmd_exporter,
    "wal-archiver": lambda args, services: _wal("cmd_wal_archiver", args, services),
    "wal-status": lambda args, services: _wal("cmd_wal_status", args, services),
    "verify-wal": lambda args, services: _wal("cmd_verify_wal", args, services),
    "base-backup": lambda args, services: _pitr("cmd_base_backup", args, services),
    "pitr-drill": lambda args, services: _pitr("cmd_pitr_drill", args, services),
    "copy": cmd_copy,
    "copy-status": cmd_copy_status,
    "keys": lambda args, services: _keys("cmd_keys", args, services),
    "audit-encryption": lambda args, services: _keys("cmd_audit_encryption", args, services),
    "report": lambda args, services: _report(args, services),
    "binlog-archiver": lambda args, services: _binlog("cmd_binlog_archiver", args, services),
    "binlog-status": lambda args, services: _binlog("cmd_binlog_status", args, services),
    "verify-binlog": lambda args, services: _binlog("cmd_verify_binlog", args, services),
}


def _keys(name: str, args: argparse.Namespace, services: Services) -> int:
    from restorable.commands import keys

    return getattr(keys, name)(args, services)


def _report(args: argparse.Namespace, services: Services) -> int:
    from restorable.commands.report import cmd_report

    return cmd_report(args, services)


def _binlog(name: str, args: argparse.Namespace, services: Services) -> int:
    from restorable.commands import binlog

    return getattr(binlog, name)(args, services)


def _pitr(name: str, args: argparse.Namespace, services: Services) -> int:
    from restorable.commands import pitr

    return getattr(pitr, name)(args, services)


def _wal(name: str, args: argparse.Namespace, services: Services) -> int:
    from restorable.commands import wal

    return getattr(wal, name)(args, services)


def error_line(exc: BaseException) -> str:
    """``restorable: error: ...`` on one line, whatever the message holds: a tool's stderr or a table
    name may hold line breaks, shown escaped (``\\n``) so that a name stays distinguishable."""
    text = str(exc).strip().replace("\r", "\\r").replace("\n", "\\n")
    return "restorable: error: " + text


def _fail(args: argparse.Namespace, exc: RestorableError) -> int:
    if args.json:
        json.dump({"error": type(exc).__name__, "message": str(exc), "exit_code": exc.exit_code}, sys.stdout)
        sys.stdout.write("\n")
    if log_format() == "json":
        # stderr stays one JSON object per line: the error is the run's last log record.
        logging.getLogger("restorable.cli").error(
            error_line(exc), extra={"restorable_fields": {"error": type(exc).__name__, "exit_code": exc.exit_code}}
        )
    else:
        print(error_line(exc), file=sys.stderr)
    return exc.exit_code


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if "wal-fetch" in argv:
        # PostgreSQL's restore_command: every failure must exit above 125 (see commands/wal.py).
        from restorable.commands.wal import run_wal_fetch

        return run_wal_fetch(_parser(), argv)
    args = _parser().parse_args(argv)
    try:
        # Text, or one JSON object per line with RESTORABLE_LOG_FORMAT=json (restorable.logs).
        configure_logging(logging.DEBUG if args.verbose else logging.INFO)
    except RestorableError as exc:
        return _fail(args, exc)
    for noisy in ("botocore", "boto3", "urllib3", "s3transfer"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    # Every line of this run carries its database and run id (and its backup id once chosen).
    start_run(database=getattr(args, "database", None), run_id=cli_run_id())
    try:
        # SIGTERM (kill, a timeout, a supervisor) unwinds like Ctrl-C: every clean-up path runs.
        with stop_on_signals():
            if args.command == "keygen":
                return cmd_keygen(args)
            services = services_for(args, Services(load_config(args.config), resolve=resolve_connection))
            return COMMANDS[args.command](args, services)
    except RestorableError as exc:
        return _fail(args, exc)
    except OSError as exc:
        # Local trouble the commands do not classify (a full disk, a file size limit): still one line.
        where = f" ({exc.filename})" if exc.filename else ""
        return _fail(
            args,
            RestorableError(
                f"local I/O failed: {exc.strerror or exc}{where}",
                hint="Free space in $TMPDIR or the output's filesystem, or raise the limit; nothing was committed",
            ),
        )
    except KeyboardInterrupt as exc:
        stopped = exc if isinstance(exc, Interrupted) else Interrupted(signal.SIGINT)
        print(f"restorable: {stopped}; stopped and cleaned up, nothing was committed", file=sys.stderr)
        return stopped.exit_code
    finally:
        end_run()


if __name__ == "__main__":
    sys.exit(main())
