"""Benchmark row: backup throughput against the hand-made pipeline of standard tools.

The same work done by hand, in the same run, on one table of uuid, numeric, text and jsonb
(960 MB, 3 M rows at the default scale)::

    pg_dump -Fc -Z0 | zstd -1 -T2 | age -r KEY | aws s3 cp - s3://bucket/key

against ``restorable backup --no-verify``, which does that and more (exact counts and the
schema in the dump's snapshot, two hashes, a manifest). ``pg_dump -Fc -Z0 > /dev/null`` is the
ceiling; the read-back (``restorable verify shop latest``) is timed as its own column. Each
command runs ``rounds`` times, alternating, and the best of each counts: ratios, not absolute
times, are what carries from this machine to another.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

from measure import pg_args, pg_env, postgres_chain, run_measured

from devstack.postgres import PostgresServer
from devstack.seaweedfs import REGION, SeaweedS3


def _cli(chain, *args: str) -> list[str]:
    return [sys.executable, "-m", "restorable.cli", "--config", str(chain.config_path), "--json", *args]


def pipeline_script(dump: list[str], recipient: str, endpoint: str, url: str) -> str:
    """The hand-made pipeline as one bash command; credentials come from the environment."""
    return (
        "set -euo pipefail; "
        + shlex.join(dump)
        + " | zstd -1 -T2 -q"
        + f" | age -r {shlex.quote(recipient)}"
        + f" | aws s3 cp - {shlex.quote(url)} --endpoint-url {shlex.quote(endpoint)} --only-show-errors"
    )


def bench_pipeline(
    scale_mb: float, work: Path, s3: SeaweedS3, source: PostgresServer, target: PostgresServer, *, rounds: int = 2
) -> dict:
    from devstack.sample_postgres import create_wide_table_database

    db = f"bench_wide_{int(scale_mb)}"
    source.drop_database(db)
    conn = source.connection(db)
    generated = create_wide_table_database(conn, scale_mb=scale_mb)
    source.execute("checkpoint")
    chain = postgres_chain(work, db, conn, s3, target)
    bucket = chain.services.config.storage.bucket
    env, passfile = pg_env(conn)
    cli_env = {**os.environ, **chain.env}
    # The aws CLI reads its keys from the environment, never from argv.
    aws_env = {
        **env,
        "AWS_ACCESS_KEY_ID": s3.access_key,
        "AWS_SECRET_ACCESS_KEY": s3.secret_key,
        "AWS_DEFAULT_REGION": REGION,
    }
    dump = [str(source.bindir / "pg_dump"), "-Fc", "-Z0", *pg_args(conn, db)]
    script = pipeline_script(dump, chain.recipient, s3.endpoint_url, f"s3://{bucket}/pipeline/dump")
    runs: dict[str, list[dict]] = {"ceiling": [], "pipeline": [], "ours": [], "verify": []}
    try:
        for _ in range(rounds):
            runs["ceiling"].append(run_measured(dump, env=env))
            runs["pipeline"].append(run_measured(["bash", "-c", script], env=aws_env))
            runs["ours"].append(run_measured(_cli(chain, "backup", "shop", "--no-verify"), env=cli_env))
            runs["verify"].append(run_measured(_cli(chain, "verify", "shop", "latest"), env=cli_env))
        listing = json.loads(
            subprocess.run(_cli(chain, "list", "shop"), env=cli_env, capture_output=True, text=True, check=True).stdout
        )[-1]
    finally:
        os.unlink(passfile)
        source.drop_database(db)
    best = {name: min(r, key=lambda m: m["seconds"]) for name, r in runs.items()}
    plain = listing["plain_bytes"]
    return {
        "scale_mb": scale_mb,
        "rows": generated["rows"],
        "heap_bytes": generated["heap_bytes"],
        "table_bytes": generated["table_bytes"],
        "dump_bytes": plain,
        "stored_bytes": listing["stored_bytes"],
        "rounds": rounds,
        **{f"{name}_seconds": m["seconds"] for name, m in best.items()},
        **{f"{name}_runs": [m["seconds"] for m in r] for name, r in runs.items()},
        **{f"{name}_mb_s": plain / m["seconds"] / 1e6 for name, m in best.items()},
        **{f"{name}_tree_peak_rss_mib": m["tree_peak_rss_mib"] for name, m in best.items()},
        **{f"{name}_machine_cpu_seconds": m["machine_cpu_seconds"] for name, m in best.items()},
        # The command with its children (pg_dump, zstd, age, aws) and the S3 server, apart: on
        # a 2-core machine that also runs both servers, CPU decides the ratio.
        **{f"{name}_cpu_seconds": m["cpu_seconds"] for name, m in best.items()},
        **{f"{name}_s3_cpu_seconds": m["s3_cpu_seconds"] for name, m in best.items()},
        "ours_pipeline_ratio": best["pipeline"]["seconds"] / best["ours"]["seconds"],
        "ours_ceiling_ratio": best["ceiling"]["seconds"] / best["ours"]["seconds"],
        "pipeline_ceiling_ratio": best["ceiling"]["seconds"] / best["pipeline"]["seconds"],
    }


def render_pipeline(rows: list[dict]) -> str:
    head = (
        "| table | dump | stored | pg_dump -Z0 >/dev/null MB/s | pipeline MB/s | ours (--no-verify) MB/s "
        "| ours/pipeline | ours/ceiling | read-back (verify) MB/s | peak RSS pipeline / ours |"
    )
    lines = [
        f"| {r['heap_bytes'] / 1e6:.0f} MB (+ key {(r['table_bytes'] - r['heap_bytes']) / 1e6:.0f} MB), "
        f"{r['rows'] / 1e6:.1f} M rows | {r['dump_bytes'] / 1e6:.0f} MB "
        f"| {r['stored_bytes'] / 1e6:.0f} MB | {r['ceiling_mb_s']:.0f} | {r['pipeline_mb_s']:.0f} "
        f"| {r['ours_mb_s']:.0f} | {r['ours_pipeline_ratio']:.2f}x | {r['ours_ceiling_ratio']:.2f}x "
        f"| {r['verify_mb_s']:.0f} | {r['pipeline_tree_peak_rss_mib']:.0f} / {r['ours_tree_peak_rss_mib']:.0f} MiB |"
        for r in rows
    ]
    return "\n".join([head, "|" + "---|" * (head.count("|") - 1), *lines])


def main() -> None:
    """``python scripts/bench_pipeline.py [SCALE_MB] [ROUNDS]``: this row alone, on its own servers."""
    import tempfile

    import measure

    scale = float(sys.argv[1]) if len(sys.argv) > 1 else 960
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 2
    with tempfile.TemporaryDirectory(prefix="restorable-bench-pipeline-") as tmp:
        work = Path(tmp)
        with (
            SeaweedS3(work / "s3") as s3,
            PostgresServer(work / "pg", name="bench_src") as source,
            PostgresServer(work / "pgt", name="bench_tgt") as target,
        ):
            measure.S3_PID = s3.pid
            row = bench_pipeline(scale, work, s3, source, target, rounds=rounds)
    print(json.dumps(row, indent=2))
    print(render_pipeline([row]))


if __name__ == "__main__":
    main()
