"""Benchmark row: physical base backup and restore, Restorable against pgBackRest, same run, same cluster.

One PostgreSQL 15 cluster (``pgbench -i -s SCALE``, about 15 MB a scale unit) archives its WAL to
both sides at once: ``archive_command`` is Restorable's ``spool-archive.sh`` and then pgBackRest's
``archive-push``, so each backup runs against the same server, with the same data and the same
archiving work going on, whichever side is measured. Both store in the same SeaweedFS, over HTTPS
(pgBackRest speaks no plain HTTP to S3; Restorable is given the same TLS port), at the same zstd
level, with two compression threads / processes.

- backup: ``restorable base-backup DB`` (``pg_basebackup -Ft -X none -c fast`` streamed through
  sha256, zstd, age and a multipart upload; it commits once the archiver has the WAL it needs)
  against ``pgbackrest backup --type=full`` (``start-fast``, ``process-max=2``, ``compress-type=zst``);
- restore: ``restorable restore DB --target-dir DIR --immediate`` (extract, both sha256,
  ``pg_verifybackup``) against ``pgbackrest restore`` into an empty directory (it checks each
  file's checksum as it writes it);
- restore and start: the same, then the copy started until it has left recovery (Restorable's
  ``--start``, which also compares every table's count with the manifest, against ``pg_ctl start``
  of pgBackRest's copy with ``--type=immediate --target-action=promote``).

Each pair runs ``rounds`` times, alternating (A, B, A, B), the best of each counts. Peak RSS is that
of the command and its children (pg_basebackup, tar, pg_verifybackup; pgBackRest's local
processes); Restorable's archiver and pgBackRest's archive-push run beside both and count for neither.
"""

from __future__ import annotations

import json
import os
import pwd
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import measure
from measure import pg_env, run_measured

from devstack.postgres import PostgresServer
from devstack.seaweedfs import REGION, SeaweedS3
from devstack.wal import make_wal_chain, python_for_postgres, reach_for_postgres, read_state, stop_archiver, wait_for
from restorable.stream.encode import DEFAULT_LEVEL
from restorable.wal.spool import ARCHIVE_SCRIPT

STANZA = "bench"
#: Both sides compress with two threads / processes: the machine has two cores.
PROCESS_MAX = 2


class PgBackRest:
    """pgBackRest's files in a private directory the ``postgres`` user owns (0700): the config (0600,
    it holds the S3 key), a passfile, and its log, lock and spool paths. Removed by ``close()``."""

    def __init__(self, server: PostgresServer, s3: SeaweedS3, bucket: str) -> None:
        self.server = server
        self.dir = Path(tempfile.mkdtemp(prefix="restorable-bench-pgbackrest-"))
        self.config = self.dir / "pgbackrest.conf"
        self.ca_file = self.dir / "ca.crt"
        shutil.copyfile(s3.ca_file, self.ca_file)
        for sub in ("log", "lock", "spool"):
            (self.dir / sub).mkdir(mode=0o700)
        settings = {
            "global": {
                "repo1-type": "s3",
                "repo1-path": "/pgbackrest",
                "repo1-s3-bucket": bucket,
                "repo1-s3-endpoint": "localhost",
                "repo1-storage-port": str(s3.https_port),
                "repo1-s3-uri-style": "path",
                "repo1-s3-region": REGION,
                "repo1-s3-key": s3.access_key,
                "repo1-s3-key-secret": s3.secret_key,
                "repo1-storage-ca-file": str(self.ca_file),
                "repo1-retention-full": "9",
                "start-fast": "y",
                "compress-type": "zst",
                "compress-level": str(DEFAULT_LEVEL),
                "process-max": str(PROCESS_MAX),
                "log-path": str(self.dir / "log"),
                "lock-path": str(self.dir / "lock"),
                "spool-path": str(self.dir / "spool"),
                "log-level-console": "warn",
                "log-level-file": "info",
            },
            STANZA: {
                "pg1-path": str(server.data_dir),
                "pg1-port": str(server.port),
                "pg1-socket-path": str(server.socket_dir),
                "pg1-user": "postgres",
            },
        }
        fd = os.open(self.config, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            for section, values in settings.items():
                fh.write(f"[{section}]\n" + "".join(f"{k}={v}\n" for k, v in values.items()) + "\n")
        self.passfile = self.dir / "pgpass"
        fd = os.open(self.passfile, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(f"*:*:*:postgres:{server.password}\n")
        user = pwd.getpwnam("postgres")
        for path in [self.dir, *self.dir.rglob("*")]:
            os.chown(path, user.pw_uid, user.pw_gid)
        self.env = {**os.environ, "PGPASSFILE": str(self.passfile), "PGBACKREST_CONFIG": str(self.config)}

    def argv(self, *args: str) -> list[str]:
        # setpriv execs pgBackRest as postgres (runuser would stay as a parent and count in the RSS).
        return [
            "setpriv",
            "--reuid=postgres",
            "--regid=postgres",
            "--init-groups",
            "pgbackrest",
            f"--config={self.config}",
            f"--stanza={STANZA}",
            *args,
        ]

    def run(self, *args: str) -> str:
        done = subprocess.run(self.argv(*args), env=self.env, capture_output=True, text=True, timeout=600)
        if done.returncode != 0:
            raise SystemExit(
                f"pgbackrest {args[0]} failed ({done.returncode}): {done.stdout[-1500:]}{done.stderr[-1500:]}"
            )
        return done.stdout

    @property
    def archive_command(self) -> str:
        return f"pgbackrest --config={self.config} --stanza={STANZA} archive-push %p"

    def close(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)


def archive_to_both(server: PostgresServer, spool_dir: Path, spool_max: int, pgbackrest: PgBackRest) -> None:
    """Restart ``server`` archiving every segment into Restorable's spool, then pgBackRest's repository."""
    reach_for_postgres(ARCHIVE_SCRIPT.parent)
    spool_dir.mkdir(mode=0o750, exist_ok=True)
    user = pwd.getpwnam("postgres")
    os.chown(spool_dir, user.pw_uid, user.pw_gid)
    command = f"{ARCHIVE_SCRIPT} %p %f {spool_dir} {spool_max} && {pgbackrest.archive_command}"

    def configure() -> None:
        with open(server.data_dir / "postgresql.conf", "a") as fh:
            fh.write(f"\narchive_mode = on\narchive_command = '{command}'\n")

    server.restart_with(configure)


def make_cluster(server: PostgresServer, scale: int) -> dict:
    """``pgbench -i -s scale`` into ``postgres``, then a CHECKPOINT: the cluster both sides back up."""
    conn = server.connection("postgres")
    env, passfile = pg_env(conn)
    started = time.monotonic()
    try:
        subprocess.run(
            [str(server.bindir / "pgbench"), "-i", "-q", "-s", str(scale)]
            + ["-h", conn.host, "-p", str(conn.port), "-U", conn.login, "postgres"],
            env=env,
            check=True,
            capture_output=True,
        )
    finally:
        os.unlink(passfile)
    server.execute("checkpoint")
    ((size,),) = server.query("select sum(pg_database_size(datname))::bigint from pg_database")
    return {"cluster_bytes": size, "generate_seconds": time.monotonic() - started}


def empty_dir_for_postgres(path: Path) -> Path:
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(mode=0o700, parents=True)
    user = pwd.getpwnam("postgres")
    os.chown(path, user.pw_uid, user.pw_gid)
    return path


def stop_copy(server: PostgresServer, target_dir: Path) -> None:
    subprocess.run(
        ["runuser", "-u", "postgres", "--", str(server.bindir / "pg_ctl"), "stop", "-D", str(target_dir)]
        + ["-m", "immediate", "-w"],
        capture_output=True,
    )
    shutil.rmtree(target_dir, ignore_errors=True)


#: pgBackRest's copy, restored and started until it left recovery. Its restore writes
#: postgresql.auto.conf; the copy's own port and no archiving are appended after that.
START_PGBACKREST_COPY = """
set -eu
dir=$1 port=$2 pg_ctl=$3 psql=$4
shift 4
"$@" restore --pg1-path="$dir" --type=immediate --target-action=promote
printf "port = %s\\nunix_socket_directories = ''\\nlisten_addresses = '127.0.0.1'\\narchive_mode = off\\n" \\
  "$port" >> "$dir/postgresql.auto.conf"
runuser -u postgres -- "$pg_ctl" start -D "$dir" -l "$dir/start.log" -w -t 300 >/dev/null
until [ "$(runuser -u postgres -- "$psql" -h 127.0.0.1 -p "$port" -U postgres -d postgres -XAtc \\
  'select pg_is_in_recovery()' 2>/dev/null)" = f ]; do sleep 0.3; done
"""


def bench_physical(scale: int, work: Path, *, rounds: int = 2) -> dict:
    """The row: backup and restore, Restorable against pgBackRest, on a ``pgbench -s scale`` cluster."""
    from devstack.ports import free_port

    if shutil.which("pgbackrest") is None or os.geteuid() != 0:
        raise SystemExit(
            "the pgBackRest row needs pgbackrest (scripts/bootstrap-system.sh installs it) and root "
            "(it runs pgBackRest as the postgres user); --physical-scale 0 skips the row"
        )
    s3_pid_before = measure.S3_PID
    with (
        SeaweedS3(work / "s3tls", https=True) as s3,
        PostgresServer(work / "pgphys", name="bench_phys") as server,
    ):
        measure.S3_PID = s3.pid
        bucket, pgbr_bucket = f"bench-phys-{int(time.time())}", f"bench-pgbackrest-{int(time.time())}"
        s3.create_bucket(bucket, object_lock=False, versioning=True)
        s3.create_bucket(pgbr_bucket, object_lock=False, versioning=False)
        pgbr = PgBackRest(server, s3, pgbr_bucket)
        archiver = None
        try:
            cluster = make_cluster(server, scale)
            spool = server.base_dir / "spool"
            archive_to_both(server, spool, 4 << 30, pgbr)
            python_for_postgres()  # the restored copy's restore_command runs this checkout as postgres
            s3_conn = s3.connection(https=True)
            s3_conn.extra["verify"] = str(pgbr.ca_file)  # a file the postgres user can read
            (work / "physchain").mkdir(exist_ok=True)
            chain = make_wal_chain(
                work / "physchain",
                source=server.connection("postgres"),
                s3=s3_conn,
                bucket=bucket,
                spool_dir=spool,
                spool_max=str(4 << 30),
            )
            pgbr.run("stanza-create")
            archiver = chain.start_archiver(work / "phys-archiver.log")
            wait_for(lambda: read_state(chain).get("running"), 30, "the archiver's first state file")
            pgbr.run("check")
            cli_env = {**os.environ, **chain.env}
            runs: dict[str, list[dict]] = {
                k: [] for k in ("basebackup_alone", "ours_backup", "pgbr_backup", "ours_restore", "pgbr_restore")
            }
            conn = server.connection("postgres")
            alone_env, alone_pass = pg_env(conn)
            # The ceiling of the single stream Restorable reads: pg_basebackup's tar alone, into nothing.
            alone = [str(server.bindir / "pg_basebackup"), "-D", "-", "-Ft", "-X", "none", "-c", "fast"]
            alone += ["-h", conn.host, "-p", str(conn.port), "-U", conn.login, "--no-password"]
            try:
                for _ in range(rounds):
                    runs["basebackup_alone"].append(run_measured(alone, env=alone_env))
                    runs["ours_backup"].append(
                        run_measured(
                            chain.cli_argv("--json", "base-backup", chain.database_id),
                            env=cli_env,
                            stdout=subprocess.PIPE,
                        )
                    )
                    runs["pgbr_backup"].append(run_measured(pgbr.argv("backup", "--type=full"), env=pgbr.env))
            finally:
                os.unlink(alone_pass)
            info = json.loads(pgbr.run("info", "--output=json"))[0]["backup"][-1]
            restores = server.base_dir / "restores"
            for _ in range(rounds):
                ours_dir = restores / "ours"
                runs["ours_restore"].append(
                    run_measured(
                        chain.cli_argv(
                            "--json", "restore", chain.database_id, "--target-dir", str(ours_dir), "--immediate"
                        ),
                        env=cli_env,
                        stdout=subprocess.PIPE,
                    )
                )
                shutil.rmtree(ours_dir)
                pgbr_dir = empty_dir_for_postgres(restores / "pgbr")
                runs["pgbr_restore"].append(
                    run_measured(pgbr.argv("restore", f"--pg1-path={pgbr_dir}", "--type=immediate"), env=pgbr.env)
                )
                shutil.rmtree(pgbr_dir)
            # Restore and start, once each.
            ours_dir = restores / "ours_started"
            started_ours = run_measured(
                chain.cli_argv(
                    "--json", "restore", chain.database_id, "--target-dir", str(ours_dir), "--immediate", "--start"
                ),
                env=cli_env,
                stdout=subprocess.PIPE,
            )
            report = json.loads(started_ours["stdout"])
            stop_copy(server, ours_dir)
            pgbr_dir = empty_dir_for_postgres(restores / "pgbr_started")
            script = [
                "bash",
                "-c",
                START_PGBACKREST_COPY,
                "start",
                str(pgbr_dir),
                str(free_port()),
                str(server.bindir / "pg_ctl"),
                str(server.bindir / "psql"),
                *pgbr.argv(),
            ]
            started_pgbr = run_measured(script, env=pgbr.env)
            stop_copy(server, pgbr_dir)
            listing = json.loads(chain.run_cli("--json", "list", chain.database_id).stdout)[-1]
            catalog = chain.services.catalog("restore")
            manifests = {
                json.loads(r["stdout"])["backup_id"]: catalog.read_manifest(
                    chain.database_id, json.loads(r["stdout"])["backup_id"]
                ).timings
                for r in runs["ours_backup"]
            }
            archiver_rss = measure._status_kib(archiver.pid, "VmHWM:") / 1024
        finally:
            if archiver is not None:
                stop_archiver(archiver)
            pgbr.close()
            measure.S3_PID = s3_pid_before
    best = {name: min(r, key=lambda m: m["seconds"]) for name, r in runs.items()}
    # Where Restorable's time went, in its best runs: the manifest's timings, and the restore's report.
    backup_id = json.loads(best["ours_backup"]["stdout"])["backup_id"]
    timings = manifests[backup_id]
    restore_report = json.loads(best["ours_restore"]["stdout"])
    return {
        "scale": scale,
        **cluster,
        "rounds": rounds,
        "zstd_level": DEFAULT_LEVEL,
        "ours_stored_bytes": listing["stored_bytes"],
        "pgbr_stored_bytes": info["info"]["repository"]["delta"],
        **{f"{name}_seconds": m["seconds"] for name, m in best.items()},
        **{f"{name}_runs": [m["seconds"] for m in r] for name, r in runs.items()},
        **{f"{name}_tree_peak_rss_mib": m["tree_peak_rss_mib"] for name, m in best.items()},
        **{f"{name}_cpu_seconds": m["cpu_seconds"] for name, m in best.items()},
        **{f"{name}_s3_cpu_seconds": m["s3_cpu_seconds"] for name, m in best.items()},
        "ours_backup_stream_seconds": timings.get("stream_seconds"),
        "ours_backup_wal_wait_seconds": timings.get("wal_wait_seconds"),
        "ours_backup_metadata_seconds": timings.get("metadata_seconds"),
        "ours_backup_commit_seconds": timings.get("total_seconds"),
        # The rest of the command: Python start-up and the read-back (download, decrypt, decompress, sha256).
        "ours_backup_verify_seconds": best["ours_backup"]["seconds"] - (timings.get("total_seconds") or 0),
        "ours_restore_extract_seconds": restore_report.get("extract_seconds"),
        "ours_restore_pg_verifybackup_seconds": restore_report.get("verify_seconds"),
        "backup_ratio": best["ours_backup"]["seconds"] / best["pgbr_backup"]["seconds"],
        "restore_ratio": best["ours_restore"]["seconds"] / best["pgbr_restore"]["seconds"],
        "archiver_peak_rss_mib": archiver_rss,
        "ours_started_seconds": started_ours["seconds"],
        "ours_started_tree_peak_rss_mib": started_ours["tree_peak_rss_mib"],
        "ours_started_recovery_seconds": report["recovery"]["recovery_seconds"],
        "ours_started_compare_seconds": report["comparison"]["compare_seconds"],
        "pgbr_started_seconds": started_pgbr["seconds"],
        "pgbr_started_tree_peak_rss_mib": started_pgbr["tree_peak_rss_mib"],
        "started_ratio": started_ours["seconds"] / started_pgbr["seconds"],
    }


def _winner(ratio: float) -> str:
    return "Restorable" if ratio < 1 else "pgBackRest"


def render_physical(rows: list[dict]) -> str:
    head = (
        "| cluster | stored ours / pgBackRest | backup s ours / pgBackRest | backup RSS ours / pgBackRest "
        "| restore s ours / pgBackRest | restore RSS ours / pgBackRest | restore + start s ours / pgBackRest "
        "| faster: backup, restore, restore + start |"
    )
    lines = [
        f"| {r['cluster_bytes'] / 1e6:.0f} MB (pgbench -s {r['scale']}) "
        f"| {r['ours_stored_bytes'] / 1e6:.0f} / {r['pgbr_stored_bytes'] / 1e6:.0f} MB "
        f"| {r['ours_backup_seconds']:.1f} / {r['pgbr_backup_seconds']:.1f} ({r['backup_ratio']:.2f}x) "
        f"| {r['ours_backup_tree_peak_rss_mib']:.0f} / {r['pgbr_backup_tree_peak_rss_mib']:.0f} MiB "
        f"| {r['ours_restore_seconds']:.1f} / {r['pgbr_restore_seconds']:.1f} ({r['restore_ratio']:.2f}x) "
        f"| {r['ours_restore_tree_peak_rss_mib']:.0f} / {r['pgbr_restore_tree_peak_rss_mib']:.0f} MiB "
        f"| {r['ours_started_seconds']:.1f} / {r['pgbr_started_seconds']:.1f} ({r['started_ratio']:.2f}x) "
        f"| {_winner(r['backup_ratio'])}, {_winner(r['restore_ratio'])}, {_winner(r['started_ratio'])} |"
        for r in rows
    ]
    return "\n".join([head, "|" + "---|" * (head.count("|") - 1), *lines])


def render_physical_time(rows: list[dict]) -> str:
    """Where Restorable's seconds went, against the single stream it reads."""
    head = (
        "| cluster | pg_basebackup >/dev/null s | ours backup: stream / WAL wait / counts / start-up + read-back s "
        "| ours restore: extract / pg_verifybackup s | client CPU s backup ours / pgBackRest "
        "| client CPU s restore ours / pgBackRest |"
    )
    lines = [
        f"| {r['cluster_bytes'] / 1e6:.0f} MB | {r['basebackup_alone_seconds']:.1f} "
        f"| {r['ours_backup_stream_seconds']:.1f} / {r['ours_backup_wal_wait_seconds']:.1f} / "
        f"{r['ours_backup_metadata_seconds']:.1f} / {r['ours_backup_verify_seconds']:.1f} "
        f"| {r['ours_restore_extract_seconds']:.1f} / {r['ours_restore_pg_verifybackup_seconds']:.1f} "
        f"| {r['ours_backup_cpu_seconds']:.1f} / {r['pgbr_backup_cpu_seconds']:.1f} "
        f"| {r['ours_restore_cpu_seconds']:.1f} / {r['pgbr_restore_cpu_seconds']:.1f} |"
        for r in rows
    ]
    return "\n".join([head, "|" + "---|" * (head.count("|") - 1), *lines])


def main() -> None:
    """``python scripts/bench_physical.py [SCALE] [ROUNDS]``: this row alone."""
    scale = int(sys.argv[1]) if len(sys.argv) > 1 else 70
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 2
    with tempfile.TemporaryDirectory(prefix="restorable-bench-physical-") as tmp:
        row = bench_physical(scale, Path(tmp), rounds=rounds)
    print(json.dumps(row, indent=2))
    print(render_physical([row]) + "\n\n" + render_physical_time([row]))


if __name__ == "__main__":
    main()
