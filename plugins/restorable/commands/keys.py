"""``restorable keys rotate|status`` and ``restorable audit-encryption``: the CLI side of key management.

The work is in ``restorable.keys.rotation`` and ``commands.audit_encryption``; this parses and prints.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from restorable.services import Services


def add_parsers(sub: Any) -> None:
    k = sub.add_parser("keys", help="envelope keys: rewrap them under the KMS key's newest version, or show their age")
    k_sub = k.add_subparsers(dest="keys_command", required=True)
    r = k_sub.add_parser(
        "rotate",
        help="rewrap every backup's key under the KMS key's newest version (the data is not touched)",
        description="For every envelope-mode backup whose key is under an older KMS key version: rewrap it "
        "(the identity never leaves the KMS), store it beside the old one, read it back and unwrap it. "
        "Exit 0 when every backup's key is under the newest version, 6 when one could not be rewrapped.",
    )
    r.add_argument("databases", nargs="*", help="databases (default: every database in the bucket)")
    r.add_argument(
        "--rotate-kms-key", action="store_true", help="first make a new KMS key version (needs the rotate right)"
    )
    r.add_argument("--json", action="store_true", default=argparse.SUPPRESS, help="print the report as JSON")
    s = k_sub.add_parser("status", help="per database: the KMS key versions in use and their age against the policy")
    s.add_argument("databases", nargs="*")
    s.add_argument("--json", action="store_true", default=argparse.SUPPRESS, help="print the status as JSON")

    a = sub.add_parser(
        "audit-encryption",
        help="list every object under the prefix that is not age ciphertext (exit 6 if any)",
    )
    g = a.add_mutually_exclusive_group(required=True)
    g.add_argument("database", nargs="?")
    g.add_argument("--all", action="store_true", help="the whole prefix, every database and anything else there")
    a.add_argument("--json", action="store_true", default=argparse.SUPPRESS, help="print the audit as JSON")


def _emit(args: argparse.Namespace, data: Any, text: str) -> None:
    if args.json:
        json.dump(data, sys.stdout, indent=2, default=str)
        sys.stdout.write("\n")
    else:
        print(text)


def cmd_keys(args: argparse.Namespace, services: Services) -> int:
    from restorable.cli import error_line
    from restorable.exceptions import IntegrityError
    from restorable.keys.rotation import key_status, rotate_keys

    if args.keys_command == "status":
        status = key_status(services, args.databases or None)
        lines = [
            f"KMS key {status['key_name']}: newest version {status['latest_version']} "
            f"({status['latest_version_age_seconds'] // 86400} days old; rotation "
            f"{'DUE' if status['key_rotation_due'] else 'not due'}), min_decryption_version "
            f"{status['min_decryption_version']}"
        ]
        for db, row in status["databases"].items():
            versions = ", ".join(
                f"v{v['key_version']}: {v['backups']} backup(s){' (rewrap due)' if v['due'] else ''}"
                f"{' RETIRED' if v['retired'] else ''}"
                for v in row["key_versions"]
            )
            lines.append(f"  {db}: {versions or 'no envelope backups'}; {row['static_backups']} static-key backup(s)")
        _emit(args, status, "\n".join(lines))
        return 0
    report = rotate_keys(services, args.databases or None, rotate_kms_key=args.rotate_kms_key)
    lines = [
        f"keys rotate: {len(report.rotated)} rewrapped to v{report.latest_version}, {len(report.current)} already "
        f"current, {len(report.failed)} failed, {report.static} static-key backup(s); record {report.record_key}"
    ]
    lines += [f"  FAILED {f['database_id']}/{f['backup_id']}: {f['error']}" for f in report.failed]
    _emit(args, report.to_dict(), "\n".join(lines))
    if report.ok:
        return 0
    error = IntegrityError(
        f"{len(report.failed)} backup key(s) could not be rewrapped",
        hint="Do not retire old KMS key versions (min_decryption_version) until keys rotate passes",
    )
    print(error_line(error), file=sys.stderr)
    return error.exit_code


def cmd_audit_encryption(args: argparse.Namespace, services: Services) -> int:
    from restorable.cli import error_line
    from restorable.commands.audit_encryption import audit_encryption, audit_failure

    audit = audit_encryption(services, None if args.all else args.database)
    lines = [
        f"{audit.prefix or '/'}: {audit.scanned} object(s); {audit.ciphertext} age ciphertext, "
        f"{audit.metadata} metadata; {len(audit.not_encrypted)} NOT encrypted"
    ]
    lines += [f"  {item['key']} ({item['kind']}): {item['problem']}" for item in audit.not_encrypted]
    _emit(args, audit.to_dict(), "\n".join(lines))
    failure = audit_failure(audit)
    if failure is None:
        return 0
    print(error_line(failure), file=sys.stderr)
    return failure.exit_code
