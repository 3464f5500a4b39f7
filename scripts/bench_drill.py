"""Benchmark row: the drill of a database of many small tables (2,000 by default).

There the cost of a drill is per table, not per byte: the integrity check, the schema
description and the validation of counts, columns and types against the manifest. The row
reports the drill's restore and validation seconds (as its evidence records them), the
validation's own steps from the drill's log, and the peak RSS of the drill process alone and
with its children (pg_restore, pg_amcheck).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

from measure import postgres_chain, run_measured

from devstack.postgres import PostgresServer
from devstack.seaweedfs import SeaweedS3

#: Where the validation's time goes, as the drill logs it (``<what> ... seconds=N``).
_LOGGED_STEPS = {
    "integrity_seconds": re.compile(r"integrity checked database=.*?seconds=([\d.]+)"),
    "expectations_seconds": re.compile(r"validation finished ok=\S+ tables=.*?seconds=([\d.]+)"),
}


def _cli(chain, *args: str) -> list[str]:
    return [sys.executable, "-m", "restorable.cli", "--config", str(chain.config_path), "--json", *args]


def bench_drill(tables: int, work: Path, s3: SeaweedS3, source: PostgresServer, target: PostgresServer) -> dict:
    from devstack.sample_postgres import create_many_tables_database

    db = f"bench_many_{tables}"
    source.drop_database(db)
    conn = source.connection(db)
    generated = create_many_tables_database(conn, tables=tables)
    chain = postgres_chain(work, db, conn, s3, target)
    env = {**os.environ, **chain.env}
    try:
        subprocess.run(_cli(chain, "backup", "shop"), env=env, check=True, capture_output=True)
        subprocess.run(_cli(chain, "verify", "shop", "latest"), env=env, check=True, capture_output=True)
        drill = run_measured(_cli(chain, "drill", "shop", "latest"), env=env, stdout=subprocess.PIPE)
    finally:
        source.drop_database(db)
    result = json.loads(drill["stdout"])
    if not result.get("ok"):
        raise SystemExit(f"the drill of {tables} tables failed: {result.get('differences')}")
    validation = result["validation"]
    logged = {}
    for name, pattern in _LOGGED_STEPS.items():
        match = pattern.search(drill["stderr"])
        logged[name] = float(match.group(1)) if match else None
    restore_s, validate_s = result["restore"]["seconds"], validation["seconds"]
    return {
        "tables": tables,
        "generate_seconds": generated["seconds"],
        "expectations": validation.get("expectations"),
        "restore_seconds": restore_s,
        "validate_seconds": validate_s,
        **logged,
        "validate_restore_ratio": validate_s / restore_s,
        "drill_seconds": drill["seconds"],
        "drill_cpu_seconds": drill["cpu_seconds"],
        "drill_peak_rss_mib": drill["peak_rss_mib"],
        "drill_tree_peak_rss_mib": drill["tree_peak_rss_mib"],
    }


def render_drill(rows: list[dict]) -> str:
    head = (
        "| tables | expectations | restore s | validate s (integrity / GX) | validate/restore | drill s "
        "| drill peak RSS (with children) |"
    )
    lines = []
    for r in rows:
        steps = " / ".join(
            f"{r[k]:.1f}" if r.get(k) is not None else "-" for k in ("integrity_seconds", "expectations_seconds")
        )
        lines.append(
            f"| {r['tables']} | {r['expectations']} | {r['restore_seconds']:.1f} | {r['validate_seconds']:.1f} "
            f"({steps}) | {r['validate_restore_ratio']:.2f} | {r['drill_seconds']:.1f} "
            f"| {r['drill_peak_rss_mib']:.0f} MiB ({r['drill_tree_peak_rss_mib']:.0f} MiB) |"
        )
    return "\n".join([head, "|" + "---|" * (head.count("|") - 1), *lines])


def main() -> None:
    """``python scripts/bench_drill.py [TABLES]``: this row alone, on its own throwaway servers."""
    import tempfile

    import measure

    tables = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
    with tempfile.TemporaryDirectory(prefix="restorable-bench-drill-") as tmp:
        work = Path(tmp)
        with (
            SeaweedS3(work / "s3") as s3,
            PostgresServer(work / "pg", name="bench_src") as source,
            PostgresServer(work / "pgt", name="bench_tgt") as target,
        ):
            measure.S3_PID = s3.pid
            row = bench_drill(tables, work, s3, source, target)
    print(json.dumps(row, indent=2))
    print(render_drill([row]))


if __name__ == "__main__":
    main()
