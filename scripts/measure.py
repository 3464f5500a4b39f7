"""How the benchmark measures a command: wall seconds, CPU, peak RSS (of the process, and of its
whole tree of children), and the machine's and the S3 server's CPU meanwhile.

Every measured process is a child of the benchmark and runs alone; the peak RSS of the process
is the kernel's high-water mark (VmHWM), that of its tree the highest sum of the RSS of the
process and its descendants seen while sampling every 20 ms.
"""

from __future__ import annotations

import os
import resource
import subprocess
import tempfile
import threading
import time
from pathlib import Path

#: The S3 server's pid, set by the benchmark: its CPU during each run is reported apart.
S3_PID: int | None = None


def machine_cpu_seconds() -> float:
    """CPU time used by every process on the machine so far (busy jiffies in /proc/stat)."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def process_cpu_seconds(pid: int | None) -> float:
    """CPU time of one running process (all its threads), 0 when it is not there."""
    if pid is None:
        return 0.0
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    utime, stime = stat[stat.rfind(")") + 2 :].split()[11:13]
    return (int(utime) + int(stime)) / os.sysconf("SC_CLK_TCK")


def _status_kib(pid: int, field: str) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field):
                return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return 0


def _descendants(pid: int) -> list[int]:
    out, todo = [], [pid]
    while todo:
        parent = todo.pop()
        try:
            tasks = os.listdir(f"/proc/{parent}/task")
        except OSError:
            continue
        for task in tasks:
            try:
                children = [int(c) for c in Path(f"/proc/{parent}/task/{task}/children").read_text().split()]
            except OSError:
                continue
            out.extend(children)
            todo.extend(children)
    return out


def run_measured(
    argv: list[str], *, env: dict | None = None, stdout=subprocess.DEVNULL, stdin=None, cwd=None, shell=False
) -> dict:
    """Run a command; return wall seconds, CPU and peak RSS (MiB) of the process and of its tree."""
    machine_before, s3_before = machine_cpu_seconds(), process_cpu_seconds(S3_PID)
    started = time.monotonic()
    # CPU of the process and of the children it waited for (pg_dump under the backup process);
    # measured processes run one at a time, so the delta is theirs. Server processes are not ours.
    cpu_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    proc = subprocess.Popen(argv, env=env, stdout=stdout, stdin=stdin, stderr=subprocess.PIPE, cwd=cwd, shell=shell)
    peak, tree_peak = [0], [0]
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], _status_kib(proc.pid, "VmHWM:"))
            tree = sum(_status_kib(p, "VmRSS:") for p in [proc.pid, *_descendants(proc.pid)])
            tree_peak[0] = max(tree_peak[0], tree)
            time.sleep(0.02)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    out, err = proc.communicate()
    done.set()
    sampler.join()
    seconds = time.monotonic() - started
    machine = machine_cpu_seconds() - machine_before
    s3_cpu = process_cpu_seconds(S3_PID) - s3_before
    cpu_after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (cpu_after.ru_utime - cpu_before.ru_utime) + (cpu_after.ru_stime - cpu_before.ru_stime)
    if proc.returncode != 0:
        name = argv if isinstance(argv, str) and shell else argv[0]
        raise SystemExit(f"{name} failed ({proc.returncode}): {err.decode(errors='replace')[-2000:]}")
    return {
        "seconds": seconds,
        "peak_rss_mib": peak[0] / 1024,
        "tree_peak_rss_mib": max(tree_peak[0], peak[0]) / 1024,
        "cpu_seconds": cpu,
        "machine_cpu_seconds": machine,
        "s3_cpu_seconds": s3_cpu,
        "stderr": err.decode(errors="replace"),
        "stdout": out.decode(errors="replace") if out else "",
    }


def pg_env(conn) -> tuple[dict, str]:
    """A child environment whose PGPASSFILE (a 0600 file) holds the password."""
    fd, path = tempfile.mkstemp(prefix="bench-pgpass-")
    with os.fdopen(fd, "w") as fh:
        fh.write(f"{conn.host}:{conn.port}:*:{conn.login}:{conn.password}\n")
    os.chmod(path, 0o600)
    return {**os.environ, "PGPASSFILE": path}, path


def pg_args(conn, database: str) -> list[str]:
    return ["-h", conn.host, "-p", str(conn.port), "-U", conn.login, "-d", database, "--no-password"]


def postgres_chain(work: Path, name: str, conn, s3, target):
    """A fresh versioned bucket and a chain around one bench database: every PostgreSQL row's set-up."""
    from devstack.chain import make_chain

    bucket = f"{name.replace('_', '-')}-{int(time.time())}"
    s3.create_bucket(bucket, object_lock=False, versioning=True)
    (work / name).mkdir(parents=True, exist_ok=True)
    return make_chain(
        work / name,
        source=conn,
        engine="postgres",
        s3=s3.connection(),
        bucket=bucket,
        target=target.connection("postgres"),
        part_size="16MiB",
    )
