"""Benchmark rows of the WAL archiver: a burst, the lag under load, and replay from the bucket.

- burst (archive mode, the spool bounded): ``pgbench -i -s SCALE`` writes WAL as fast as this
  machine can (~114 MB/s); produced MB/s (the WAL positions before and after, over the burst's
  time) against archived MB/s (the same bytes over the time until the burst's last segment is in
  the bucket), the spool's highest level (sampled every 50 ms) and whether ``spool-archive.sh``
  ever refused a segment (``pg_stat_archiver.failed_count``: the spool at its bound). It kept up
  when nothing was refused and the last segment was in the bucket within ``KEPT_UP_SECONDS``.
- lag (stream mode): ``pgbench`` TPC-B for ``lag_seconds`` on a server of its own, the archiver
  running ``pg_receivewal``; ``wal-status --json`` gives the archive lag, segment closed (its last
  write) to object read back, p50 and p99, over the segments of the load only (the archiver is
  restarted after ``pgbench -i``: its figures start afresh).
- replay: a base backup taken before the burst, restored to the burst's end LSN twice, alternating,
  from the same extracted copy's settings: once with Restorable's restore_command (``wal-fetch.sh``
  and its prefetcher, from the bucket) and once with ``cp`` from a local directory holding the same
  segments. Replay seconds are read from the copy's log ("redo starts" to "recovery stopping"),
  so the start of the server counts for neither. A third side, for the why: the same fetch with
  the prefetcher started (and one segment cached) before the server starts.
"""

from __future__ import annotations

import json
import os
import pwd
import shutil
import subprocess
import sys
import threading
import time
from datetime import datetime
from pathlib import Path

from measure import pg_env

from devstack.postgres import PostgresServer
from devstack.seaweedfs import SeaweedS3
from devstack.wal import (
    enable_archiving,
    make_wal_chain,
    python_for_postgres,
    read_state,
    stop_archiver,
    switch_segment,
    wait_for,
)
from restorable.repository.layout import Layout
from restorable.wal.names import format_lsn, parse_lsn

#: The spool's bound during the burst: well under the burst's WAL, so a slow archiver would show.
SPOOL_MAX = 256 << 20
#: The burst's last segment in the bucket within this many seconds of its end: the archiver kept up.
KEPT_UP_SECONDS = 5.0
#: What PostgreSQL 15 logs once replay reached recovery_target_lsn with recovery_target_action = pause.
_PAUSED = "pausing at the end of recovery"


def _lsn(server: PostgresServer) -> int:
    return parse_lsn(server.query("select pg_current_wal_lsn()::text")[0][0])


def _pgbench(server: PostgresServer, *args: str) -> tuple[float, str]:
    """Run pgbench against ``postgres``; its seconds and its output."""
    conn = server.connection("postgres")
    env, passfile = pg_env(conn)
    started = time.monotonic()
    try:
        done = subprocess.run(
            [str(server.bindir / "pgbench"), *args, "-h", conn.host, "-p", str(conn.port), "-U", conn.login]
            + ["postgres"],
            env=env,
            check=True,
            capture_output=True,
            text=True,
        )
    finally:
        os.unlink(passfile)
    return time.monotonic() - started, done.stdout


class SpoolLevel:
    """The highest total size of the spool's files, sampled every 50 ms while running."""

    def __init__(self, spool: Path) -> None:
        self.spool, self.peak, self._done = spool, 0, threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._done.is_set():
            total = 0
            for entry in os.scandir(self.spool):
                try:
                    if entry.is_file():
                        total += entry.stat().st_size
                except FileNotFoundError:
                    pass
            self.peak = max(self.peak, total)
            time.sleep(0.05)

    def __enter__(self) -> SpoolLevel:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        self._thread.join(5)


def _in_bucket(chain, name: str) -> bool:
    return chain.services.store("backup").exists(Layout("restorable").wal_key(chain.database_id, name))


def burst(server: PostgresServer, chain, scale: int) -> dict:
    """``pgbench -i -s scale`` with the archiver draining a bounded spool."""
    ((failed_before,),) = server.query("select failed_count from pg_stat_archiver")
    start_lsn, started = _lsn(server), time.monotonic()
    with SpoolLevel(chain.spool_dir) as level:
        seconds, _ = _pgbench(server, "-i", "-q", "-s", str(scale))
        end_lsn, ended = _lsn(server), time.monotonic()
        last = switch_segment(server)
        wait_for(lambda: _in_bucket(chain, last), 300, f"{last} in the bucket", interval=0.05)
        archived = time.monotonic()
    ((failed_after,),) = server.query("select failed_count from pg_stat_archiver")
    wal_bytes = end_lsn - start_lsn
    drain = archived - ended
    return {
        "burst_scale": scale,
        "burst_wal_bytes": wal_bytes,
        "burst_seconds": seconds,
        "burst_produced_mb_s": wal_bytes / (ended - started) / 1e6,
        "burst_archived_mb_s": wal_bytes / (archived - started) / 1e6,
        "burst_drain_seconds": drain,
        "burst_spool_max_bytes": SPOOL_MAX,
        "burst_spool_peak_bytes": level.peak,
        "burst_refused_segments": failed_after - failed_before,
        "burst_kept_up": failed_after == failed_before and drain <= KEPT_UP_SECONDS,
        "burst_end_lsn": end_lsn,
        "burst_last_segment": last,
    }


# ------------------------------------------------------------------------------ replay
def _log_time(line: str) -> float:
    # log_line_prefix '%m [%p] ...': "2026-12-03 10:00:00.123 UTC [pid] ..."
    stamp = " ".join(line.split()[:2])
    return datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S.%f").timestamp()


def replay(server: PostgresServer, target_dir: Path, env: dict, port: int, *, restore_command: str | None) -> dict:
    """Start the restored copy in ``target_dir``, wait until it paused at its target, stop it; return
    the replay seconds from its log and the gaps between restored files (a slow fetch shows as one).
    ``restore_command`` replaces the one Restorable wrote."""
    if restore_command is not None:
        with open(target_dir / "postgresql.auto.conf", "a") as fh:
            fh.write(f"restore_command = '{restore_command}'\n")
    log = target_dir / "replay.log"
    as_postgres = ["runuser", "-u", "postgres", "--"]
    subprocess.run(
        [*as_postgres, str(server.bindir / "pg_ctl"), "start", "-D", str(target_dir), "-l", str(log), "-w"]
        + ["-t", "300"],
        env=env,
        check=True,
        capture_output=True,
    )
    try:
        text = wait_for(
            lambda: (t := log.read_text(errors="replace")) and (_PAUSED in t or " FATAL: " in t) and t,
            600,
            "replay to the target",
            interval=0.1,
        )
    finally:
        subprocess.run(
            [*as_postgres, str(server.bindir / "pg_ctl"), "stop", "-D", str(target_dir), "-m", "immediate", "-w"],
            capture_output=True,
        )
    if " FATAL: " in text:
        raise SystemExit(f"replay failed in {target_dir}: {text[-2000:]}")
    lines = text.splitlines()
    redo = next(ln for ln in lines if "redo starts at" in ln)
    stop = next(ln for ln in lines if "recovery stopping" in ln)
    restored = [(_log_time(ln), ln.split('"')[1]) for ln in lines if "restored log file" in ln]
    steps = [(b[0] - a[0], b[1]) for a, b in zip(restored, restored[1:], strict=False)]
    gaps = sorted(g for g, _ in steps)
    return {
        "seconds": _log_time(stop) - _log_time(redo),
        "files": len(restored),
        "median_gap": gaps[len(gaps) // 2] if gaps else None,
        "slow_gaps": sum(1 for g in gaps if g > 0.3),
        "slow_gap_seconds": sum(g for g in gaps if g > 0.3),
        "slow_files": [f"{name} {g:.2f}" for g, name in steps if g > 0.3],
    }


def warm_prefetcher(target_dir: Path, database_id: str, first: str, env: dict) -> None:
    """Start Restorable's prefetcher for the copy in ``target_dir`` before its server starts, as
    ``wal-fetch`` would on the first fetch, and wait until it has cached a segment: what replay
    would be if the prefetcher's start-up (imports, client) did not overlap the first fetches."""
    from restorable.physical.restore import RECOVERY_CONFIG
    from restorable.wal.fetch import CACHE_DIR_NAME, WANTED_FILE

    cache = target_dir / "pg_wal" / CACHE_DIR_NAME
    python, extra = python_for_postgres()
    subprocess.run(["runuser", "-u", "postgres", "--", "mkdir", "-m", "700", "-p", str(cache)], check=True)
    subprocess.run(["runuser", "-u", "postgres", "--", "sh", "-c", f"echo {first} > {cache / WANTED_FILE}"], check=True)
    subprocess.Popen(
        ["runuser", "-u", "postgres", "--", python, "-m", "restorable.wal.prefetch"]
        + ["--config", str(target_dir / RECOVERY_CONFIG), str(cache), database_id],
        env={**env, **extra},
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    wait_for(lambda: any(len(p.name) == 24 for p in cache.iterdir()), 60, "the prefetcher's first segment")


def local_wal_copy(server: PostgresServer, first: str, last: str) -> Path:
    """The segments ``first`` .. ``last`` from the source's pg_wal, plain, where postgres can read them."""
    copy = server.base_dir / "wal-copy"
    copy.mkdir(mode=0o700)
    names = sorted(p.name for p in (server.data_dir / "pg_wal").iterdir() if len(p.name) == 24)
    wanted = [n for n in names if first <= n <= last]
    for name in wanted:
        shutil.copyfile(server.data_dir / "pg_wal" / name, copy / name)
    user = pwd.getpwnam("postgres")
    for path in [copy, *copy.iterdir()]:
        os.chown(path, user.pw_uid, user.pw_gid)
    if not wanted or wanted[0] != first or wanted[-1] != last:
        raise SystemExit(f"pg_wal no longer holds {first} .. {last}")
    return copy


def bench_replay(server: PostgresServer, chain, base_id: str, burst_row: dict, *, rounds: int) -> dict:
    from devstack.ports import free_port

    manifest = chain.services.catalog("restore").read_manifest(chain.database_id, base_id)
    start_lsn = parse_lsn(manifest.physical["start_lsn"])
    target = burst_row["burst_end_lsn"]
    target_text = format_lsn(target)
    copy = local_wal_copy(server, manifest.wal["start_segment"], burst_row["burst_last_segment"])
    env = {**os.environ, **chain.env}
    runs: dict[str, list[dict]] = {"fetch": [], "cp": [], "warm": []}
    for _ in range(rounds):
        for side in ("fetch", "cp", "warm"):
            target_dir = server.base_dir / "restores" / side
            port = free_port()
            done = chain.run_cli(
                "--json", "restore", chain.database_id, "--target-dir", str(target_dir), "--lsn", target_text,
                "--port", str(port), timeout=600,
            )  # fmt: skip
            if done.returncode != 0:
                raise SystemExit(f"restore for replay failed: {done.stderr[-2000:]}")
            command = f"cp {copy}/%f %p" if side == "cp" else None
            try:
                if side == "warm":
                    warm_prefetcher(target_dir, chain.database_id, manifest.wal["start_segment"], env)
                runs[side].append(replay(server, target_dir, env, port, restore_command=command))
            finally:
                shutil.rmtree(target_dir, ignore_errors=True)
    shutil.rmtree(copy)
    replayed = target - start_lsn
    best = {side: min(r, key=lambda m: m["seconds"]) for side, r in runs.items()}
    return {
        "replay_wal_bytes": replayed,
        **{f"replay_{side}_seconds": m["seconds"] for side, m in best.items()},
        **{f"replay_{side}_runs": [m["seconds"] for m in r] for side, r in runs.items()},
        **{f"replay_{side}_mb_s": replayed / m["seconds"] / 1e6 for side, m in best.items()},
        # Between two restored files: the median, and the gaps over 0.3 s (a fetch that started Python).
        **{f"replay_{side}_files": m["files"] for side, m in best.items()},
        **{f"replay_{side}_median_gap_seconds": m["median_gap"] for side, m in best.items()},
        **{f"replay_{side}_slow_gaps": m["slow_gaps"] for side, m in best.items()},
        **{f"replay_{side}_slow_gap_seconds": m["slow_gap_seconds"] for side, m in best.items()},
        **{f"replay_{side}_slow_files": m["slow_files"] for side, m in best.items()},
        "replay_ratio": best["cp"]["seconds"] / best["fetch"]["seconds"],
        "replay_warm_ratio": best["cp"]["seconds"] / best["warm"]["seconds"],
    }


# -------------------------------------------------------------------------------- lag
def stream_lag(work: Path, s3: SeaweedS3, lag_seconds: int) -> dict:
    """TPC-B for ``lag_seconds`` in stream mode; the archive lag's p50/p99 from ``wal-status``."""
    with PostgresServer(work / "pgstream", name="bench_stream") as server:

        def as_in_production() -> None:
            # The dev stack turns full-page writes off; a production server writes them after each
            # checkpoint (every 30 s here), most of TPC-B's WAL: segments then fill at a realistic rate.
            with open(server.data_dir / "postgresql.conf", "a") as fh:
                fh.write("full_page_writes = on\ncheckpoint_timeout = '30s'\n")

        server.restart_with(as_in_production)
        bucket = f"bench-walstream-{int(time.time())}"
        s3.create_bucket(bucket, object_lock=False, versioning=True)
        spool = work / "streamspool"
        spool.mkdir()
        (work / "streamchain").mkdir()
        chain = make_wal_chain(
            work / "streamchain",
            source=server.connection("postgres"),
            s3=s3.connection(),
            bucket=bucket,
            spool_dir=spool,
            mode="stream",
            partial_interval=1,
        )
        log = work / "stream-archiver.log"
        archiver = chain.start_archiver(log)
        try:
            wait_for(lambda: (read_state(chain).get("streamer") or {}).get("pid"), 30, "pg_receivewal running")
            _pgbench(server, "-i", "-q", "-s", "10")
            last = switch_segment(server)
            wait_for(lambda: _in_bucket(chain, last), 120, f"{last} in the bucket")
            # A fresh archiver: its lag figures are then those of the load alone.
            stop_archiver(archiver)
            archiver = chain.start_archiver(log)
            wait_for(lambda: (read_state(chain).get("streamer") or {}).get("pid"), 30, "pg_receivewal running")
            server.execute("checkpoint")  # full-page writes from the first update of each page on
            start_lsn = _lsn(server)
            seconds, out = _pgbench(server, "-c", "4", "-j", "2", "-T", str(lag_seconds), "-n")
            tps = next((float(ln.split()[2]) for ln in out.splitlines() if ln.startswith("tps = ")), None)
            wal_bytes = _lsn(server) - start_lsn
            last = switch_segment(server)
            wait_for(lambda: _in_bucket(chain, last), 120, f"{last} in the bucket")
            time.sleep(1.5)  # the state file is written every second
            status = json.loads(chain.run_cli("wal-status", chain.database_id, "--json").stdout)
        finally:
            stop_archiver(archiver)
    lag = status["archive_lag_seconds"] or {}
    return {
        "lag_load_seconds": seconds,
        "lag_tps": tps,
        "lag_wal_mb_s": wal_bytes / seconds / 1e6,
        "lag_p50_seconds": lag.get("p50"),
        "lag_p99_seconds": lag.get("p99"),
        "lag_samples": lag.get("samples"),
    }


# ------------------------------------------------------------------------------ the row
def bench_wal(scale: int, work: Path, s3: SeaweedS3, *, rounds: int = 2, lag_seconds: int = 60) -> dict:
    """The burst and the replay on one server (archive mode), then the lag on another (stream mode)."""
    with PostgresServer(work / "pgwal", name="bench_wal") as server:
        bucket = f"bench-wal-{int(time.time())}"
        s3.create_bucket(bucket, object_lock=False, versioning=True)
        spool = server.base_dir / "spool"
        enable_archiving(server, spool, SPOOL_MAX)
        python_for_postgres()  # the restored copies' restore_command runs this checkout as postgres
        (work / "walchain").mkdir()
        chain = make_wal_chain(
            work / "walchain",
            source=server.connection("postgres"),
            s3=s3.connection(),
            bucket=bucket,
            spool_dir=spool,
            spool_max=str(SPOOL_MAX),
            spool_alarm=str(SPOOL_MAX // 2),
        )
        archiver = chain.start_archiver(work / "wal-archiver.log")
        try:
            wait_for(lambda: read_state(chain).get("running"), 30, "the archiver's first state file")
            done = chain.run_cli("--json", "base-backup", chain.database_id, timeout=300)
            if done.returncode != 0:
                raise SystemExit(f"base-backup failed: {done.stderr[-2000:]}")
            base_id = json.loads(done.stdout)["backup_id"]
            row = burst(server, chain, scale)
            row.update(bench_replay(server, chain, base_id, row, rounds=rounds))
        finally:
            stop_archiver(archiver)
    row.update(stream_lag(work, s3, lag_seconds))
    row.update(
        kept_up=row["burst_kept_up"],
        lag_p99_ok=row["lag_p99_seconds"] is not None and row["lag_p99_seconds"] <= 2.0,
        replay_ok=row["replay_ratio"] >= 0.8,
    )
    return row


def render_wal(rows: list[dict]) -> str:
    head = (
        "| burst WAL | produced / archived MB/s | drain after the burst | spool peak / bound | refused | kept up "
        "| stream lag p50 / p99 (TPC-B) | replay MB/s wal-fetch / cp | wal-fetch/cp "
        "| slow fetches (> 0.3 s) | prefetcher started first: MB/s, /cp |"
    )
    lines = [
        f"| {r['burst_wal_bytes'] / 1e6:.0f} MB (pgbench -i -s {r['burst_scale']}) "
        f"| {r['burst_produced_mb_s']:.0f} / {r['burst_archived_mb_s']:.0f} | {r['burst_drain_seconds']:.1f} s "
        f"| {r['burst_spool_peak_bytes'] / 2**20:.0f} / {r['burst_spool_max_bytes'] / 2**20:.0f} MiB "
        f"| {r['burst_refused_segments']} | {'yes' if r['burst_kept_up'] else 'no'} "
        f"| {r['lag_p50_seconds']} / {r['lag_p99_seconds']} s ({r['lag_samples']} segments, "
        f"{r['lag_wal_mb_s']:.1f} MB/s) "
        f"| {r['replay_fetch_mb_s']:.0f} / {r['replay_cp_mb_s']:.0f} | {r['replay_ratio']:.2f}x "
        f"| {r['replay_fetch_slow_gaps']} of {r['replay_fetch_files']}, {r['replay_fetch_slow_gap_seconds']:.1f} s "
        f"| {r['replay_warm_mb_s']:.0f}, {r['replay_warm_ratio']:.2f}x |"
        for r in rows
    ]
    return "\n".join([head, "|" + "---|" * (head.count("|") - 1), *lines])


def main() -> None:
    """``python scripts/bench_wal.py [SCALE] [ROUNDS] [LAG_SECONDS]``: these rows alone."""
    import tempfile

    import measure

    scale = int(sys.argv[1]) if len(sys.argv) > 1 else 30
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 2
    lag_seconds = int(sys.argv[3]) if len(sys.argv) > 3 else 60
    with tempfile.TemporaryDirectory(prefix="restorable-bench-wal-") as tmp:
        work = Path(tmp)
        with SeaweedS3(work / "s3") as s3:
            measure.S3_PID = s3.pid
            row = bench_wal(scale, work, s3, rounds=rounds, lag_seconds=lag_seconds)
    print(json.dumps(row, indent=2))
    print(render_wal([row]))


if __name__ == "__main__":
    main()
