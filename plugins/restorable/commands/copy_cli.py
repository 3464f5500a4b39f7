"""The CLI's side of ``storage.copies``: ``copy``, ``copy-status`` and the ``--from COPY`` option.

``--from NAME`` makes a command read (and, for ``verify``, ``drill`` and ``lifecycle``, write its
records to) the copy instead of the primary: the copy is a repository of its own, so the command
itself is unchanged (``copies.copy_services``). Without it, ``restore`` and ``drill`` try the
primary and fall back to a verified copy, saying so (``copies.fallback``).
"""

from __future__ import annotations

import argparse
from typing import Any

from restorable.services import Services


def add_parsers(sub: Any) -> None:
    c = sub.add_parser(
        "copy",
        help="copy a verified backup to each destination of storage.copies, read each copy back, record it",
        description="Copy every object of a verified backup (data, sealed settings, manifest) to each destination "
        "of storage.copies (server-side on one endpoint, streamed otherwise), with the destination's Object Lock "
        "and storage class; read each copy back against the manifest's sha256; commit and record it. Exit 0 when "
        "every destination verified, 6 when a copy's bytes differ (that copy is not committed), 5 on storage errors.",
    )
    c.add_argument("database")
    c.add_argument("backup_id", nargs="?", default="latest", help='a backup id, or "latest" (the newest verified)')
    c.add_argument("--to", action="append", dest="to", metavar="COPY", help="only this destination (repeatable)")
    c.add_argument("--json", action="store_true", default=argparse.SUPPRESS, help="print the result as JSON")

    s = sub.add_parser("copy-status", help="which copies of each backup exist and verified (from the primary)")
    s.add_argument("database")
    s.add_argument("--json", action="store_true", default=argparse.SUPPRESS, help="print the result as JSON")


def add_from_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--from",
        dest="from_copy",
        metavar="COPY",
        help="read the copy of storage.copies named COPY instead of the primary storage",
    )


def services_for(args: argparse.Namespace, services: Services) -> Services:
    """The copy's services with ``--from COPY``, else ``services``."""
    name = getattr(args, "from_copy", None)
    if not name:
        return services
    from restorable.copies import copy_services

    return copy_services(services, name)


def cmd_copy(args: argparse.Namespace, services: Services) -> int:
    from restorable.cli import _emit
    from restorable.commands.copy import copy_backup

    results = copy_backup(services, args.database, args.backup_id, names=args.to)
    lines = []
    for r in results:
        how = ", ".join(sorted({o["how"] for o in r.objects if o.get("how")})) or "re-read"
        lines.append(
            f"{r.backup_id} of {args.database} -> {r.destination} (s3://{r.bucket}/{r.prefix}): "
            + ("already there, " if r.already else "")
            + f"verified, {len(r.objects)} object(s) ({how}) in {r.seconds} s"
        )
    _emit(args, [r.to_dict() for r in results], "\n".join(lines))
    return 0


def cmd_copy_status(args: argparse.Namespace, services: Services) -> int:
    from restorable.cli import _emit
    from restorable.commands.copy import copy_status

    rows = copy_status(services, args.database)
    names = [c.name for c in services.config.storage.copies]
    lines = [f"{'BACKUP ID':26} {'CREATED':21} " + " ".join(f"{n:12}" for n in names)]
    for row in rows:
        marks = []
        for name in names:
            found = row["copies"].get(name)
            marks.append(f"{'-' if found is None else ('verified' if found['ok'] else 'FAILED'):12}")
        lines.append(f"{row['backup_id']:26} {str(row['created_at'])[:19]:21} " + " ".join(marks))
    _emit(args, rows, "\n".join(lines))
    return 0


def fallback_text(copy: str | None, reason: str | None) -> list[str]:
    """The lines that say a result came from a copy, and why."""
    if copy is None:
        return []
    if reason is None:
        return [f"  read from copy {copy} (--from)"]
    return [f"  FELL BACK to copy {copy}: {reason}"]
