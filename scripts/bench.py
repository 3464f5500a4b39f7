"""make bench: Restorable against the limits and against the naive way, on this machine.

For the sample database at about 1 GB and about 4 GB (PostgreSQL) and a MariaDB sample, in
one run: backup throughput against ``pg_dump -Fc -Z0 > /dev/null`` (and ``mariadb-dump >
/dev/null``), peak RSS of the backup process, restore wall time against ``pg_restore`` of an
uncompressed local dump with the same job count, the compression ratio, and the naive way
(the dump tool's default compression into memory, then one PUT) for comparison. Two rows of
their own: the drill of a 2,000-table database (restore against validation seconds, peak RSS;
``bench_drill.py``) and backup throughput against the hand-made pipeline of standard tools
(``pg_dump | zstd | age | aws s3 cp`` on a 960 MB table; ``bench_pipeline.py``). Point-in-time
recovery: the physical base backup and restore against pgBackRest on the same ~1 GB cluster
(``bench_physical.py``), and the WAL archiver's burst throughput, stream-mode lag and replay from
the bucket against a local ``cp`` (``bench_wal.py``); the binlog archiver's lag under load and replay
against ``mariadb-binlog | mariadb`` (``bench_binlog.py``). ``--scales "" --mariadb-scale 0
--drill-tables 200 --pipeline-scale 100 --physical-scale 5 --wal-scale 5 --binlog-seconds 5`` is a quick run.

Every measured process is a child of this one, measured by ``measure.run_measured``. Prints
a table and writes bench-results/bench.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import measure
from bench_binlog import bench_binlog, render_binlog
from bench_drill import bench_drill, render_drill
from bench_physical import bench_physical, render_physical, render_physical_time
from bench_pipeline import bench_pipeline, render_pipeline
from bench_wal import bench_wal, render_wal
from measure import pg_args, pg_env, postgres_chain, run_measured

from devstack.chain import make_chain
from devstack.postgres import PostgresServer
from devstack.seaweedfs import SeaweedS3

ROOT = Path(__file__).resolve().parents[1]


NAIVE = """
import sys, subprocess, boto3, os
from restorable.storage.s3 import s3_client_from_connection
from restorable.connections import resolve_connection
conn = resolve_connection("restorable_s3")
client = s3_client_from_connection(conn)
data = subprocess.run(sys.argv[2:], stdout=subprocess.PIPE, check=True).stdout  # the whole dump in memory
client.put_object(Bucket=sys.argv[1], Key="naive/dump", Body=data)
print(len(data))
"""


STREAM_ALONE = """
import sys
from restorable.stream.encode import DEFAULT_LEVEL, DEFAULT_THREADS, encode_stream
class Null:
    def write(self, data):
        return len(data)
with open(sys.argv[1], "rb", buffering=0) as dump:
    digests = encode_stream(dump, Null(), recipients=[sys.argv[2]], level=DEFAULT_LEVEL, threads=DEFAULT_THREADS)
print(digests.plain_bytes)
"""


def cpu_budget(baseline: dict, ours: dict) -> dict:
    """Where the CPU of the machine went during the limit and during our backup.

    Everything shares the machine's cores: the database server producing the dump, the S3
    server storing it, and the backup process. However well the work overlaps, the backup
    cannot finish before (CPU it made the machine spend) / cores; that floor, against the
    limit's wall time, is the best throughput ratio this machine allows for the work done.
    """
    cores = os.cpu_count() or 1
    floor = ours["machine_cpu_seconds"] / cores
    return {
        "cores": cores,
        "baseline_machine_cpu_seconds": baseline["machine_cpu_seconds"],
        "backup_machine_cpu_seconds": ours["machine_cpu_seconds"],
        "backup_s3_cpu_seconds": ours["s3_cpu_seconds"],
        # The rest of the machine's CPU during our backup: the database server, mostly.
        "backup_server_cpu_seconds": ours["machine_cpu_seconds"] - ours["cpu_seconds"] - ours["s3_cpu_seconds"],
        "cpu_floor_seconds": floor,
        "throughput_ratio_ceiling": baseline["seconds"] / max(floor, baseline["seconds"]),
    }


def bench_postgres(
    scale_mb: float,
    work: Path,
    s3: SeaweedS3,
    source: PostgresServer,
    target: PostgresServer,
    bindir: Path,
    *,
    with_naive: bool = True,
    rounds: int = 2,
) -> dict:
    from devstack.sample_postgres import create_sample_database

    db = f"bench_{int(scale_mb)}"
    source.drop_database(db)
    t0 = time.monotonic()
    conn = source.connection(db)
    # VACUUM FREEZE first: otherwise the first pg_dump pays for setting hint bits, the second does not.
    create_sample_database(conn, scale_mb=scale_mb, seed=7, vacuum=True)
    gen_seconds = time.monotonic() - t0
    ((size,),) = source.query(f"select pg_database_size('{db}')")
    source.execute("checkpoint")
    chain = postgres_chain(work, db, conn, s3, target)
    bucket = chain.services.config.storage.bucket
    env, passfile = pg_env(conn)
    try:
        # The limit: pg_dump alone, writing nowhere.
        baseline = run_measured([str(bindir / "pg_dump"), "-Fc", "-Z0", *pg_args(conn, db)], env=env)
        # Restorable: capture + hash + zstd + age + hash + multipart upload, one process.
        cli_env = {**os.environ, **chain.env}
        ours = run_measured(
            [sys.executable, "-m", "restorable.cli", "--config", str(chain.config_path), "--json", "backup", "shop"],
            env=cli_env,
            stdout=subprocess.PIPE,
        )
        listing = json.loads(
            subprocess.run(
                [sys.executable, "-m", "restorable.cli", "--config", str(chain.config_path), "--json", "list", "shop"],
                env=cli_env,
                capture_output=True,
                text=True,
                check=True,
            ).stdout
        )[-1]
        plain, stored = listing["plain_bytes"], listing["stored_bytes"]
        # The naive way: default compression into memory, then one PUT.
        naive = (
            run_measured(
                [sys.executable, "-c", NAIVE, bucket, str(bindir / "pg_dump"), "-Fc", *pg_args(conn, db)],
                env={**env, **cli_env},
            )
            if with_naive
            else None
        )
        # Restore: ours (streamed from the bucket) against pg_restore of an uncompressed local dump.
        local = work / f"{db}.dump"
        subprocess.run(
            [str(bindir / "pg_dump"), "-Fc", "-Z0", "-f", str(local), *pg_args(conn, db)], env=env, check=True
        )
        # The stream alone (hash, zstd, age, hash; no upload) from that file, with the cores to
        # itself: what the backup process can sustain where the database and the object store
        # run on other machines, as they do in production.
        alone = run_measured([sys.executable, "-c", STREAM_ALONE, str(local), chain.recipient], stdout=subprocess.PIPE)
        # Restore timings swing by a third with what the target server did just before (WAL,
        # checkpoints, page cache), so each side runs twice, alternating, after a CHECKPOINT, and
        # the best of each counts. Ours goes first: it creates the roles the dump needs (owners,
        # grantees), which pg_restore alone cannot; pg_restore then finds them in place.
        ours_runs, plain_runs = [], []
        tenv, tpass = pg_env(target.connection("postgres"))
        try:
            for _ in range(rounds):
                target.drop_database("ours_restore")
                target.execute("checkpoint")
                restore = run_measured(
                    [
                        sys.executable,
                        "-m",
                        "restorable.cli",
                        "--config",
                        str(chain.config_path),
                        "--json",
                        "restore",
                        "shop",
                        "latest",
                        "--target",
                        "tgt",
                        "--database",
                        "ours_restore",
                        "--jobs",
                        "1",
                    ],
                    env=cli_env,
                    stdout=subprocess.PIPE,
                )
                ours_runs.append((json.loads(restore["stdout"])["restore_seconds"], restore["seconds"]))
                target.drop_database("ours_restore")
                target.drop_database("plain_restore")
                target.execute("create database plain_restore")
                target.execute("checkpoint")
                plain_runs.append(
                    run_measured(
                        [
                            str(bindir / "pg_restore"),
                            "-j",
                            "1",
                            "--exit-on-error",
                            *pg_args(target.connection("postgres"), "plain_restore"),
                            str(local),
                        ],
                        env=tenv,
                    )["seconds"]
                )
                target.drop_database("plain_restore")
        finally:
            os.unlink(tpass)
        local.unlink()
        target.drop_database("plain_restore")
    finally:
        os.unlink(passfile)
        source.drop_database(db)
    return {
        "engine": "postgres",
        "scale_mb": scale_mb,
        "database_bytes": size,
        "generate_seconds": gen_seconds,
        "dump_bytes": plain,
        "stored_bytes": stored,
        "compression_ratio": plain / stored,
        "baseline_seconds": baseline["seconds"],
        "baseline_mb_s": plain / baseline["seconds"] / 1e6,
        "backup_seconds": ours["seconds"],
        "backup_mb_s": plain / ours["seconds"] / 1e6,
        "throughput_ratio": baseline["seconds"] / ours["seconds"],
        "backup_peak_rss_mib": ours["peak_rss_mib"],
        **cpu_budget(baseline, ours),
        "stream_alone_seconds": alone["seconds"],
        "stream_alone_mb_s": plain / alone["seconds"] / 1e6,
        "stream_alone_cpu_seconds": alone["cpu_seconds"],
        # Client-side CPU: pg_dump alone, and the backup process with its pg_dump. On a 2-core
        # machine that also runs the database server and the S3 server, these decide the ratio.
        "baseline_cpu_seconds": baseline["cpu_seconds"],
        "backup_cpu_seconds": ours["cpu_seconds"],
        **({"naive_seconds": naive["seconds"], "naive_peak_rss_mib": naive["peak_rss_mib"]} if naive else {}),
        # The restore itself (download + decrypt + decompress + pg_restore), then the whole command
        # including the comparison of every table's count and the schema with the manifest.
        "pg_restore_seconds": min(plain_runs),
        "pg_restore_runs": plain_runs,
        "restore_seconds": min(r[0] for r in ours_runs),
        "restore_runs": [r[0] for r in ours_runs],
        "restore_and_compare_seconds": min(r[1] for r in ours_runs),
        "restore_ratio": min(r[0] for r in ours_runs) / min(plain_runs),
    }


def bench_mariadb(scale_mb: float, work: Path, s3: SeaweedS3) -> dict:
    from devstack.mariadb import MariaDBServer
    from devstack.sample_mariadb import create_sample_database

    with (
        MariaDBServer(work / "mariadb", name="bench_mariadb") as server,
        MariaDBServer(work / "mariadb_t", name="bench_mariadb_t") as target,
    ):
        conn = server.connection("shopdb")
        create_sample_database(conn, scale_mb=scale_mb, seed=7)
        bucket = f"bench-mariadb-{int(time.time())}"
        s3.create_bucket(bucket, object_lock=False, versioning=True)
        (work / "mariadb_chain").mkdir(exist_ok=True)
        chain = make_chain(
            work / "mariadb_chain",
            source=conn,
            engine="mysql",
            s3=s3.connection(),
            bucket=bucket,
            target=target.connection("mysql"),
            part_size="16MiB",
        )
        defaults = work / "my.cnf"
        defaults.write_text(
            f"[client]\nuser={conn.login}\npassword={conn.password}\nhost={conn.host}\nport={conn.port}\n"
        )
        defaults.chmod(0o600)
        baseline = run_measured(
            [
                "mariadb-dump",
                f"--defaults-extra-file={defaults}",
                "--single-transaction",
                "--quick",
                "--routines",
                "--triggers",
                "--events",
                "--hex-blob",
                "shopdb",
            ]
        )
        defaults.unlink()
        cli_env = {**os.environ, **chain.env}
        ours = run_measured(
            [sys.executable, "-m", "restorable.cli", "--config", str(chain.config_path), "--json", "backup", "shop"],
            env=cli_env,
            stdout=subprocess.PIPE,
        )
        listing = json.loads(
            subprocess.run(
                [sys.executable, "-m", "restorable.cli", "--config", str(chain.config_path), "--json", "list", "shop"],
                env=cli_env,
                capture_output=True,
                text=True,
                check=True,
            ).stdout
        )[-1]
        restore = run_measured(
            [
                sys.executable,
                "-m",
                "restorable.cli",
                "--config",
                str(chain.config_path),
                "--json",
                "restore",
                "shop",
                "latest",
                "--target",
                "tgt",
                "--database",
                "restored",
            ],
            env=cli_env,
            stdout=subprocess.PIPE,
        )
    plain, stored = listing["plain_bytes"], listing["stored_bytes"]
    return {
        "engine": "mysql",
        "scale_mb": scale_mb,
        "dump_bytes": plain,
        "stored_bytes": stored,
        "compression_ratio": plain / stored,
        "baseline_seconds": baseline["seconds"],
        "baseline_mb_s": plain / baseline["seconds"] / 1e6,
        "backup_seconds": ours["seconds"],
        "backup_mb_s": plain / ours["seconds"] / 1e6,
        "throughput_ratio": baseline["seconds"] / ours["seconds"],
        "backup_peak_rss_mib": ours["peak_rss_mib"],
        **cpu_budget(baseline, ours),
        "baseline_cpu_seconds": baseline["cpu_seconds"],
        "backup_cpu_seconds": ours["cpu_seconds"],
        "restore_seconds": json.loads(restore["stdout"])["restore_seconds"],
        "restore_and_compare_seconds": restore["seconds"],
    }


def markdown_table(head: str, lines: list[str]) -> str:
    return "\n".join([head, "|" + "---|" * (head.count("|") - 1), *lines])


def render(rows: list[dict]) -> str:
    head = (
        "| engine | sample | dump | stored | ratio | limit MB/s | ours MB/s | ours/limit | client CPU s limit/ours "
        "| peak RSS | naive s / RSS | pg_restore s | ours restore s | restore/pg_restore |"
    )
    lines = []
    for r in rows:
        naive = f"{r['naive_seconds']:.1f} s / {r['naive_peak_rss_mib']:.0f} MiB" if "naive_seconds" in r else "-"
        lines.append(
            f"| {r['engine']} | {r['scale_mb']:.0f} MB | {r['dump_bytes'] / 1e6:.0f} MB "
            f"| {r['stored_bytes'] / 1e6:.0f} MB "
            f"| {r['compression_ratio']:.2f} | {r['baseline_mb_s']:.0f} | {r['backup_mb_s']:.0f} | "
            f"{r['throughput_ratio']:.2f} | {r.get('baseline_cpu_seconds', float('nan')):.1f} / "
            f"{r.get('backup_cpu_seconds', float('nan')):.1f} | {r['backup_peak_rss_mib']:.0f} MiB | {naive} | "
            f"{r.get('pg_restore_seconds', float('nan')):.1f} | {r['restore_seconds']:.1f} | "
            f"{r.get('restore_ratio', float('nan')):.2f} |"
        )
    return markdown_table(head, lines)


def render_cpu(rows: list[dict]) -> str:
    """Where the machine's CPU went, and the ratio ours would reach if no core ever idled."""
    head = (
        "| engine | sample | limit: machine CPU s | ours: machine CPU s (backup process with pg_dump / S3 server "
        "/ database server) | floor: that CPU / cores | ratio at the floor | ours/limit | stream alone MB/s |"
    )
    lines = []
    for r in rows:
        alone = f"{r['stream_alone_mb_s']:.0f}" if "stream_alone_mb_s" in r else "-"
        lines.append(
            f"| {r['engine']} | {r['scale_mb']:.0f} MB | {r['baseline_machine_cpu_seconds']:.1f} "
            f"| {r['backup_machine_cpu_seconds']:.1f} ({r['backup_cpu_seconds']:.1f} / "
            f"{r['backup_s3_cpu_seconds']:.1f} / {r['backup_server_cpu_seconds']:.1f}) "
            f"| {r['cpu_floor_seconds']:.1f} s on {r['cores']} cores | {r['throughput_ratio_ceiling']:.2f} "
            f"| {r['throughput_ratio']:.2f} | {alone} |"
        )
    return markdown_table(head, lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "bench-results")
    parser.add_argument("--scales", default="1000,4000", help="PostgreSQL sample sizes in MB")
    parser.add_argument("--mariadb-scale", type=float, default=1000)
    parser.add_argument("--no-naive", action="store_true", help="skip the naive way (14 minutes at 4 GB here)")
    parser.add_argument("--rounds", type=int, default=2, help="restore timings: alternating rounds, best counts")
    parser.add_argument("--drill-tables", type=int, default=2000, help="drill row: tables (0 skips the row)")
    parser.add_argument(
        "--pipeline-scale", type=float, default=960, help="pipeline row: table size in MB (0 skips the row)"
    )
    parser.add_argument("--pipeline-rounds", type=int, default=2, help="pipeline row: alternating rounds, best counts")
    parser.add_argument(
        "--physical-scale", type=int, default=70, help="pgBackRest row: pgbench scale, ~15 MB each (0 skips the row)"
    )
    parser.add_argument(
        "--wal-scale", type=int, default=30, help="WAL archiver rows: pgbench -i scale of the burst (0 skips them)"
    )
    parser.add_argument("--wal-lag-seconds", type=int, default=60, help="WAL archiver rows: TPC-B seconds for the lag")
    parser.add_argument(
        "--binlog-seconds", type=int, default=20, help="binlog archiver row: seconds of load (0 skips the row)"
    )
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    rows, drills, pipelines, physicals, wals, binlogs = [], [], [], [], [], []
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="restorable-bench-") as tmp:
        work = Path(tmp)
        with (
            SeaweedS3(work / "s3") as s3,
            PostgresServer(work / "pg", name="bench_src") as source,
            PostgresServer(work / "pgt", name="bench_tgt") as target,
        ):
            measure.S3_PID = s3.pid
            if args.drill_tables:
                print(f"drill of {args.drill_tables} tables ...", flush=True)
                drills.append(bench_drill(args.drill_tables, work, s3, source, target))
                print(render_drill(drills[-1:]), flush=True)
            if args.pipeline_scale:
                print(f"backup against the hand-made pipeline at {args.pipeline_scale:.0f} MB ...", flush=True)
                pipelines.append(
                    bench_pipeline(args.pipeline_scale, work, s3, source, target, rounds=args.pipeline_rounds)
                )
                print(render_pipeline(pipelines[-1:]), flush=True)
            if args.physical_scale:
                print(
                    f"physical base backup and restore against pgBackRest, pgbench -s {args.physical_scale} ...",
                    flush=True,
                )
                physicals.append(bench_physical(args.physical_scale, work, rounds=args.rounds))
                print(render_physical(physicals[-1:]) + "\n\n" + render_physical_time(physicals[-1:]), flush=True)
            if args.wal_scale:
                print(f"WAL archiver: burst of pgbench -i -s {args.wal_scale}, lag, replay ...", flush=True)
                wals.append(bench_wal(args.wal_scale, work, s3, rounds=args.rounds, lag_seconds=args.wal_lag_seconds))
                print(render_wal(wals[-1:]), flush=True)
            if args.binlog_seconds:
                print(f"binlog archiver: {args.binlog_seconds} s of commits, lag, replay ...", flush=True)
                binlogs.append(bench_binlog(work, s3, lag_seconds=args.binlog_seconds, rounds=args.rounds))
                print(render_binlog(binlogs[-1:]), flush=True)
            for scale in [float(s) for s in args.scales.split(",") if s.strip()]:
                print(f"postgres sample at {scale:.0f} MB ...", flush=True)
                rows.append(
                    bench_postgres(
                        scale, work, s3, source, target, source.bindir, with_naive=not args.no_naive, rounds=args.rounds
                    )
                )
                print(render(rows[-1:]) + "\n\n" + render_cpu(rows[-1:]), flush=True)
            if args.mariadb_scale:
                print(f"mariadb sample at {args.mariadb_scale:.0f} MB ...", flush=True)
                rows.append(bench_mariadb(args.mariadb_scale, work, s3))
    pg = [r for r in rows if r["engine"] == "postgres"]
    # A verdict only for what was measured: a row skipped is no pass.
    checks = {
        "throughput >= 0.85 x pg_dump": all(r["throughput_ratio"] >= 0.85 for r in pg),
        "peak RSS <= 256 MiB": all(r["backup_peak_rss_mib"] <= 256 for r in rows),
        "RSS flat within 15% across sizes": (
            len(pg) < 2 or max(r["backup_peak_rss_mib"] for r in pg) <= 1.15 * min(r["backup_peak_rss_mib"] for r in pg)
        ),
        "restore <= 1.3 x pg_restore": all(r["restore_ratio"] <= 1.3 for r in pg),
        "drill: validation <= restore": all(r["validate_seconds"] <= r["restore_seconds"] for r in drills),
        "drill: peak RSS with children <= 256 MiB": all(r["drill_tree_peak_rss_mib"] <= 256 for r in drills),
        "backup >= 1.0 x the hand-made pipeline": all(r["ours_pipeline_ratio"] >= 1.0 for r in pipelines),
        "physical: base backup not slower than pgBackRest": all(r["backup_ratio"] <= 1.0 for r in physicals),
        "physical: restore not slower than pgBackRest": all(r["restore_ratio"] <= 1.0 for r in physicals),
        "wal: the archiver keeps up with the pgbench -i burst": all(r["kept_up"] for r in wals),
        "wal: stream-mode archive lag p99 <= 2 s": all(r["lag_p99_ok"] for r in wals),
        "wal: replay through wal-fetch >= 0.8 x a local cp": all(r["replay_ok"] for r in wals),
    }
    measured = {
        "drill:": bool(drills),
        "backup >= 1.0 x": bool(pipelines),
        "physical:": bool(physicals),
        "wal:": bool(wals),
    }
    checks = {
        name: ok
        for name, ok in checks.items()
        if next((m for prefix, m in measured.items() if name.startswith(prefix)), bool(rows))
    }
    load = os.getloadavg()
    sections = [render(rows) + "\n\n" + render_cpu(rows)] if rows else []
    sections += [render_drill(drills)] if drills else []
    sections += [render_pipeline(pipelines)] if pipelines else []
    sections += [render_physical(physicals) + "\n\n" + render_physical_time(physicals)] if physicals else []
    sections += [render_wal(wals)] if wals else []
    sections += [render_binlog(binlogs)] if binlogs else []
    sections.append(
        f"Machine: {os.cpu_count()} cores; load average (1 min) {load_before[0]:.2f} at the start, "
        f"{load[0]:.2f} at the end."
    )
    table = "\n\n".join(sections)
    verdicts = "\n".join(f"- {name}: {'PASS' if ok else 'FAIL'}" for name, ok in checks.items())
    print("\n" + table + "\n\n" + verdicts)
    (args.out / "bench.json").write_text(
        json.dumps(
            {
                "rows": rows,
                "drill_rows": drills,
                "pipeline_rows": pipelines,
                "physical_rows": physicals,
                "wal_rows": wals,
                "binlog_rows": binlogs,
                "load_average": {"start": load_before, "end": load},
                "checks": checks,
            },
            indent=2,
        )
    )
    (args.out / "bench.md").write_text(table + "\n\n" + verdicts + "\n")
    print(f"\nwritten to {args.out}/bench.json and bench.md")


if __name__ == "__main__":
    main()
