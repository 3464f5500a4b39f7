"""Benchmark rows of the MariaDB binlog archiver: archive lag under load, and replay throughput.

- lag: a writer commits one row per transaction for ``lag_seconds`` (with a row of payload) while
  ``restorable binlog-archiver`` runs (``live_interval`` seconds between snapshots of the live file);
  each commit's GTID and wall time are noted, the archiver's state file is polled every 20 ms, and a
  commit's lag is the time from its commit to the first poll that shows its GTID archived (a closed
  file or the live file's snapshot read back). p50 and p99 over every commit of the load.
- replay: ``restorable restore --gtid <the last commit>`` from a logical backup taken before the load
  (its replay seconds, from the report) against ``mariadb-binlog --start-position=<the backup's>
  <the server's own binlog files> | mariadb`` into another database: transactions/s and MB/s each.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

from devstack.binlog import make_binlog_chain
from devstack.mariadb import MariaDBServer
from devstack.seaweedfs import SeaweedS3


def _pick(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 3) if ordered else 0.0


def bench_binlog(work: Path, s3: SeaweedS3, *, lag_seconds: int = 20, live_interval: int = 1, rounds: int = 2) -> dict:
    bucket = "bench-binlog"
    s3.create_bucket(bucket, object_lock=False, versioning=True)
    with (
        MariaDBServer(work / "mariadb-binlog", name="bench_binlog") as source,
        MariaDBServer(work / "mariadb-binlog-tgt", name="bench_binlog_tgt") as target,
    ):
        source.execute("CREATE DATABASE shop")
        source.execute("CREATE TABLE shop.items (id BIGINT AUTO_INCREMENT PRIMARY KEY, payload VARCHAR(200))")
        spool = work / "binlog-spool"
        spool.mkdir()
        (work / "binlog-chain").mkdir()
        chain = make_binlog_chain(
            work / "binlog-chain",
            source=source.connection("shop"),
            target=target.connection("mysql"),
            s3=s3.connection(),
            bucket=bucket,
            spool_dir=spool,
            live_interval=live_interval,
        )
        backup = chain.run_cli("--json", "backup", "shop")
        assert backup.returncode == 0, backup.stderr[-2000:]
        manifest = chain.services.catalog("restore").read_manifest("shop", json.loads(backup.stdout)["backup_id"])
        position = manifest.metadata.position
        proc = chain.start_archiver(work / "binlog-archiver.log")
        commits: list[tuple[int, float]] = []
        seen: dict[int, float] = {}
        stop = threading.Event()

        def write() -> None:
            conn = source.connect("shop")
            with conn.cursor() as cur:
                while not stop.is_set():
                    cur.execute("INSERT INTO items (payload) VALUES (REPEAT('x', 200))")
                    cur.execute("SELECT @@last_gtid")
                    commits.append((int(cur.fetchone()[0].split("-")[-1]), time.time()))
            conn.close()

        def poll() -> None:
            while not stop.is_set() or len(seen) < 1 or max(seen) < (commits[-1][0] if commits else 0):
                try:
                    state = json.loads((spool / ".restorable-binlog-state.json").read_text())
                    seq = int(state.get("archived_gtid_seq", {}).get("0", -1))
                    seen.setdefault(seq, time.time())
                except (OSError, ValueError):
                    pass
                time.sleep(0.02)
                if stop.is_set() and time.time() - stopped_at[0] > 30:
                    break

        stopped_at = [0.0]
        time.sleep(2)
        threads = [threading.Thread(target=write, daemon=True), threading.Thread(target=poll, daemon=True)]
        for t in threads:
            t.start()
        time.sleep(lag_seconds)
        stopped_at[0] = time.time()
        stop.set()
        threads[0].join(10)
        threads[1].join(40)
        proc.send_signal(15)
        proc.wait(30)
        archived = sorted(seen.items())
        lags = []
        for seq, at in commits:
            first = next((t for s, t in archived if s >= seq), None)
            if first is not None:
                lags.append(max(0.0, first - at))
        last_seq = commits[-1][0]
        files = sorted(p for p in source.data_dir.glob("mariadb-bin.[0-9]*"))
        files = [p for p in files if p.name >= position["binlog_file"]]
        cnf = work / "binlog-target.cnf"
        cnf.write_text(f"[client]\nuser=root\npassword={target.password}\nhost=127.0.0.1\nport={target.port}\n")
        cnf.chmod(0o600)
        ours_times, theirs_times, report = [], [], {}
        for round_ in range(rounds):  # alternating, best counts: the other agents share these cores
            theirs_db = f"theirs{round_}"
            target.execute(f"CREATE DATABASE {theirs_db}")
            target.execute(
                f"CREATE TABLE {theirs_db}.items (id BIGINT AUTO_INCREMENT PRIMARY KEY, payload VARCHAR(200))"
            )
            started = time.monotonic()
            reader = subprocess.Popen(
                [
                    "mariadb-binlog",
                    f"--start-position={position['binlog_position']}",
                    "--database=shop",
                    f"--rewrite-db=shop->{theirs_db}",
                    *map(str, files),
                ],
                stdout=subprocess.PIPE,
                env={**os.environ, "TZ": "UTC"},
            )
            subprocess.run(
                ["mariadb", f"--defaults-extra-file={cnf}", "--binary-mode", theirs_db], stdin=reader.stdout, check=True
            )
            reader.wait()
            theirs_times.append(time.monotonic() - started)
            ours = chain.run_cli(
                "--json",
                "restore",
                "shop",
                "--gtid",
                f"0-1-{last_seq}",
                "--target",
                "tgt",
                "--database",
                f"ours{round_}",
            )
            assert ours.returncode == 0, ours.stderr[-2000:]
            report = json.loads(ours.stdout)
            ours_times.append(report["replay_seconds"])
        cnf.unlink()
        rows = target.query("SELECT COUNT(*) FROM ours0.items")[0][0]
        their_rows = target.query("SELECT COUNT(*) FROM theirs0.items")[0][0]
        tx = report["transactions_in_range"]
        theirs_seconds, ours_seconds = min(theirs_times), min(ours_times)
        return {
            "lag_seconds_of_load": lag_seconds,
            "live_interval": live_interval,
            "commits": len(commits),
            "commits_per_s": round(len(commits) / lag_seconds),
            "lag_p50_seconds": _pick(lags, 0.5),
            "lag_p99_seconds": _pick(lags, 0.99),
            "lag_samples": len(lags),
            "replay_files": len(report["files"]),
            "replay_bytes": report["binlog_bytes"],
            "replay_transactions": tx,
            "ours_replay_seconds": ours_seconds,
            "ours_replay_rounds": ours_times,
            "theirs_rounds": [round(t, 3) for t in theirs_times],
            "ours_restore_seconds": report["restore_seconds"],
            "ours_tx_per_s": round(tx / ours_seconds) if ours_seconds else None,
            "ours_mb_per_s": round(report["binlog_bytes"] / ours_seconds / 1e6, 1) if ours_seconds else None,
            "theirs_seconds": round(theirs_seconds, 3),
            "theirs_tx_per_s": round(tx / theirs_seconds),
            "theirs_mb_per_s": round(sum(p.stat().st_size for p in files) / theirs_seconds / 1e6, 1),
            "rows_equal": rows == their_rows,
        }


def render_binlog(rows: list[dict]) -> str:
    head = (
        "| load | commits/s | archive lag p50 / p99 (live_interval) | replay: transactions, MB "
        "| restorable (replay only) tx/s, MB/s | mariadb-binlog \\| mariadb tx/s, MB/s | same rows |"
    )
    lines = [
        f"| {r['lag_seconds_of_load']} s, {r['commits']} commits | {r['commits_per_s']} "
        f"| {r['lag_p50_seconds']} / {r['lag_p99_seconds']} s ({r['live_interval']} s) "
        f"| {r['replay_transactions']}, {r['replay_bytes'] / 1e6:.1f} "
        f"| {r['ours_tx_per_s']}, {r['ours_mb_per_s']} | {r['theirs_tx_per_s']}, {r['theirs_mb_per_s']} "
        f"| {'yes' if r['rows_equal'] else 'NO'} |"
        for r in rows
    ]
    return "\n".join([head, "|" + "---|" * (head.count("|") - 1), *lines])


def main() -> None:
    """``python scripts/bench_binlog.py [LAG_SECONDS] [LIVE_INTERVAL]``: these rows alone."""
    import tempfile

    lag_seconds = int(sys.argv[1]) if len(sys.argv) > 1 else 20
    live_interval = int(sys.argv[2]) if len(sys.argv) > 2 else 1
    with tempfile.TemporaryDirectory(prefix="restorable-bench-binlog-") as tmp:
        work = Path(tmp)
        with SeaweedS3(work / "s3") as s3:
            row = bench_binlog(work, s3, lag_seconds=lag_seconds, live_interval=live_interval)
    print(json.dumps(row, indent=2))
    print(render_binlog([row]))


if __name__ == "__main__":
    main()
