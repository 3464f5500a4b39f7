"""``restorable``: back up, list, verify, restore and drill from a shell, with or without Airflow.

During an incident Airflow's own metadata database may be what was lost: everything here
needs only the config, the connections (``AIRFLOW_CONN_*`` variables or URIs) and the bucket.

Exit codes: 0 ok, 2 config error, 3 source unreachable, 4 tool error, 5 storage error,
6 integrity failure (checksum, decryption, restored copy differs, drill failed), 7 restore refused,
8 not found, 1 anything else.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import Any

from restorable.config import load_config
from restorable.connections import resolve_connection
from restorable.exceptions import ConfigError, RestorableError
from restorable.progress import Progress, human_bytes
from restorable.services import Services


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="restorable", description=__doc__.split("\n")[0])
    p.add_argument("--config", help="config file (default: $RESTORABLE_CONFIG or include/restorable.yaml)")
    p.add_argument("--json", action="store_true", help="print machine-readable JSON on stdout")
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = p.add_subparsers(dest="command", required=True)

    b = sub.add_parser("backup", help="back up a configured database now")
    b.add_argument("database")

    ls = sub.add_parser("list", help="list committed backups in the bucket")
    ls.add_argument("database", nargs="?")

    v = sub.add_parser("verify", help="re-read a stored backup and check it against its manifest")
    v.add_argument("database")
    v.add_argument("backup_id", nargs="?", default="latest")
    v.add_argument("--deep", action="store_true", help="also decrypt, decompress and parse the dump")
    v.add_argument("--identity-file", type=Path, help="age identity file (default: the identity connection)")

    r = sub.add_parser("restore", help="restore a backup into a target database, then compare it")
    r.add_argument("database")
    r.add_argument("backup_id", nargs="?", default="latest")
    r.add_argument("--target", required=True, help="connection id (AIRFLOW_CONN_<ID>) or URI of the target server")
    r.add_argument("--database", dest="target_database", required=True, help="database to restore into")
    r.add_argument("--overwrite", action="store_true", help="replace the target database if it is not empty")
    r.add_argument("--jobs", type=int, help="parallel restore jobs (default from config)")
    r.add_argument("--identity-file", type=Path, help="age identity file (default: the identity connection)")

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

    h = sub.add_parser("hold", help="set or clear a legal hold on every object of a backup")
    h.add_argument("database")
    h.add_argument("backup_id")
    g = h.add_mutually_exclusive_group(required=True)
    g.add_argument("--on", dest="on", action="store_true")
    g.add_argument("--off", dest="on", action="store_false")

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
    from restorable.commands.backup import run_backup

    progress = Progress(f"backup {args.database}")
    manifest = run_backup(services, args.database, on_progress=progress)
    progress.finish()
    s = manifest.summary()
    _emit(
        args,
        s,
        (
            f"backup {s['backup_id']} of {s['database_id']} committed: {human_bytes(s['plain_bytes'])} dump, "
            f"{human_bytes(s['stored_bytes'])} stored, {s['tables']} tables, {s['rows']} rows, "
            f"{s['seconds']} s ({s['mb_per_s']} MB/s)\n  key {s['key']}\n  sha256 {s['stored_sha256']}"
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

    result = verify_backup(services, args.database, args.backup_id, deep=args.deep, identity=_identity(args))
    _emit(
        args,
        result,
        f"backup {result['backup_id']} of {args.database}: {result['kind']} verification "
        f"passed (sha256 {result['found_stored_sha256']})",
    )
    return 0


def cmd_restore(args: argparse.Namespace, services: Services) -> int:
    from restorable.commands.restore import restore_backup

    target = services.resolve(args.target)
    progress = Progress(f"restore {args.database}")
    report = restore_backup(
        services,
        args.database,
        args.backup_id,
        target=target,
        database=args.target_database,
        overwrite=args.overwrite,
        identity=_identity(args),
        jobs=args.jobs,
        on_progress=progress,
    )
    progress.finish()
    status = "matches its manifest" if report.ok else f"DIFFERS from its manifest in {len(report.differences)} ways"
    text = [
        f"restored {report.backup_id} into {report.database} on {report.target} in {report.restore_seconds} s; "
        f"{report.found_rows} rows; {status}"
    ]
    text += [f"  - {d}" for d in report.differences]
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
        ("evidence", evidence.get("record_key") or "-"),
    ]
    lines = [f"drill of {result.database_id}: {verdict}"]
    lines += [f"  {name:14} {value}" for name, value in rows]
    lines += [f"  - {d}" for d in result.differences]
    return "\n".join(lines)


def cmd_drill(args: argparse.Namespace, services: Services) -> int:
    import signal

    from restorable.commands.drill import run_drill

    # A SIGTERM (a timeout, `kill`) unwinds like Ctrl-C, so the scratch database is still dropped.
    def interrupted(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, interrupted)
    progress = Progress(f"drill {args.database}")
    result = run_drill(
        services,
        args.database,
        args.backup_id,
        target_conn_id=args.target,
        identity=_identity(args),
        on_progress=progress,
    )
    progress.finish()
    _emit(args, result.to_dict(), _drill_text(result))
    error = result.error()
    if error is None:
        return 0
    print(f"restorable: error: {error}", file=sys.stderr)
    return error.exit_code


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


def cmd_keygen(args: argparse.Namespace) -> int:
    import os

    from restorable.stream.keys import generate_identity

    identity, recipient = generate_identity()
    fd = os.open(args.output, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
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
}


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
        stream=sys.stderr,
    )
    for noisy in ("botocore", "boto3", "urllib3", "s3transfer"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    try:
        if args.command == "keygen":
            return cmd_keygen(args)
        services = Services(load_config(args.config), resolve=resolve_connection)
        return COMMANDS[args.command](args, services)
    except RestorableError as exc:
        if args.json:
            json.dump({"error": type(exc).__name__, "message": str(exc), "exit_code": exc.exit_code}, sys.stdout)
            sys.stdout.write("\n")
        print(f"restorable: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("restorable: interrupted; nothing was committed", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
