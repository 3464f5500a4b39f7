"""SIGTERM and SIGKILL to ``restorable backup|restore|drill`` while they work (issue 17, signals).

Each test holds the command in the middle of its work on purpose, then stops it:

- a backup: a session of the test holds an ACCESS EXCLUSIVE lock on a table, so the real pg_dump
  waits on it with the multipart upload already started;
- a restore or drill: ``RESTORABLE_PG_BINDIR`` points at a copy of the client directory whose
  ``pg_restore`` records its environment, then sleeps before it execs the real one, so the
  target database exists and the restore is under way.

After SIGTERM the command must exit with 143 within 5 s, leaving no manifest, no pending
multipart upload, no child process, no database it created and no temporary file; after
SIGKILL no file holding a secret may remain. The children's environments must hold neither
``AIRFLOW_CONN_*`` nor the S3 secret.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import psycopg
import pytest

pytestmark = pytest.mark.integration

#: Planted in the CLI's environment: no child may see them.
PLANTED = {"AIRFLOW_CONN_PLANTED": "planted-conn-secret", "AWS_SECRET_ACCESS_KEY": "planted-aws-secret"}
EXIT_SIGTERM = 128 + signal.SIGTERM
REAL_PG_BINDIR = Path("/usr/lib/postgresql/15/bin")

_SLOW_PG_RESTORE = """#!{python}
import os, sys, time
if "--version" not in sys.argv:
    with open({env_file!r}, "w") as fh:
        fh.write("\\n".join(f"{{k}}={{v}}" for k, v in os.environ.items()))
    time.sleep(60)
os.execv({real!r}, [{real!r}, *sys.argv[1:]])
"""


def _wait_for(what: str, check: Callable[[], object], proc: subprocess.Popen, timeout: float = 60) -> object:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        if proc.poll() is not None:
            out, err = proc.communicate()
            pytest.fail(f"the CLI ended (exit {proc.returncode}) before {what}:\n{err}")
        time.sleep(0.1)
    proc.kill()
    pytest.fail(f"timed out waiting for {what}")


def _descendants(pid: int) -> list[int]:
    """Every live process below ``pid`` (from /proc's PPid fields)."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            status = (entry / "status").read_text()
        except OSError:
            continue
        state = next((ln.split()[1] for ln in status.splitlines() if ln.startswith("State:")), "")
        if state == "Z":
            continue
        ppid = next(int(ln.split()[1]) for ln in status.splitlines() if ln.startswith("PPid:"))
        parents[int(entry.name)] = ppid
    found, frontier = [], [pid]
    while frontier:
        parent = frontier.pop()
        children = [p for p, pp in parents.items() if pp == parent]
        found += children
        frontier += children
    return found


def _comm(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


def _environ(pid: int) -> dict[str, str]:
    raw = Path(f"/proc/{pid}/environ").read_bytes().decode("utf-8", "replace")
    return dict(item.split("=", 1) for item in raw.split("\0") if "=" in item)


def _files_holding(directory: Path, secret: str) -> list[Path]:
    return [p for p in directory.rglob("*") if p.is_file() and secret.encode() in p.read_bytes()]


_started: list[subprocess.Popen] = []


@pytest.fixture(autouse=True)
def _no_cli_left():
    """A failed assertion must not leave the CLI (or its children) running."""
    yield
    while _started:
        proc = _started.pop()
        if proc.poll() is None:
            children = _descendants(proc.pid)
            proc.kill()
            proc.communicate()
            for pid in children:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass


def _start_cli(chain, tmpdir: Path, *args: str, env_extra: dict[str, str] | None = None) -> subprocess.Popen:
    tmpdir.mkdir(exist_ok=True)
    env = {**os.environ, **chain.env, **PLANTED, "TMPDIR": str(tmpdir), **(env_extra or {})}
    proc = subprocess.Popen(
        [sys.executable, "-m", "restorable.cli", "--config", str(chain.config_path), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    _started.append(proc)
    return proc


def _stop(proc: subprocess.Popen, signum: int = signal.SIGTERM) -> tuple[int, float, str]:
    """Send ``signum``; return the exit code, the seconds it took and stderr."""
    sent = time.monotonic()
    proc.send_signal(signum)
    try:
        _, err = proc.communicate(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        _, err = proc.communicate()
        pytest.fail(f"the CLI was still running 15 s after signal {signum}:\n{err}")
    return proc.returncode, time.monotonic() - sent, err


def _pending_uploads(chain) -> list:
    return chain.services.store("backup").list_multipart_uploads("")


def _databases(server) -> set[str]:
    with psycopg.connect(**_kwargs(server.connection("postgres"))) as pg:
        return {row[0] for row in pg.execute("SELECT datname FROM pg_database")}


def _kwargs(conn) -> dict:
    return dict(host=conn.host, port=conn.port, user=conn.login, password=conn.password, dbname=conn.schema)


class _TableLock:
    """An ACCESS EXCLUSIVE lock on one table of the source: pg_dump waits on it, with its upload started."""

    def __init__(self, source) -> None:
        self.pg = psycopg.connect(**_kwargs(source))
        table = self.pg.execute(
            "SELECT format('%I.%I', schemaname, tablename) FROM pg_tables "
            "WHERE schemaname NOT IN ('pg_catalog', 'information_schema') ORDER BY 1 LIMIT 1"
        ).fetchone()[0]
        self.pg.execute(f"LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE")

    def release(self) -> None:
        self.pg.rollback()
        self.pg.close()


def _pg_dump_waiting(chain, proc: subprocess.Popen) -> Callable[[], int | None]:
    def check() -> int | None:
        dumps = [p for p in _descendants(proc.pid) if _comm(p) == "pg_dump"]
        return dumps[0] if dumps and _pending_uploads(chain) else None

    return check


@pytest.fixture
def source_lock(pg_cli_chain):
    lock = _TableLock(pg_cli_chain.services.resolve("src"))
    yield lock
    lock.release()


def test_sigterm_during_backup_aborts_the_upload_and_stops_pg_dump(pg_cli_chain, source_lock, tmp_path):
    chain = pg_cli_chain
    password = chain.services.resolve("src").password
    tmpdir = tmp_path / "tmp"
    proc = _start_cli(chain, tmpdir, "backup", "shop")
    pg_dump = _wait_for("pg_dump waiting with the upload started", _pg_dump_waiting(chain, proc), proc)

    env = _environ(pg_dump)
    assert not set(PLANTED) & set(env), "pg_dump inherited a planted secret"
    assert not any(v in PLANTED.values() for v in env.values())
    assert "PGPASSWORD" not in env
    assert _files_holding(tmpdir, password) == [], "a file in $TMPDIR holds the password"
    assert not any(Path(p).is_relative_to(tmpdir) for p in [env.get("PGPASSFILE", "/dev/fd")])

    returncode, seconds, stderr = _stop(proc)
    assert returncode == EXIT_SIGTERM, stderr
    assert seconds < 5, f"the CLI took {seconds:.1f} s to stop:\n{stderr}"
    assert "interrupted by SIGTERM" in stderr and "Traceback" not in stderr
    assert _pending_uploads(chain) == []
    assert chain.services.catalog("restore").database_ids() == []
    assert not Path(f"/proc/{pg_dump}").exists() or _comm(pg_dump) != "pg_dump", "pg_dump still runs"
    assert list(tmpdir.iterdir()) == []


def test_sigkill_during_backup_leaves_no_secret_file(pg_cli_chain, source_lock, tmp_path):
    chain = pg_cli_chain
    password = chain.services.resolve("src").password
    tmpdir = tmp_path / "tmp"
    proc = _start_cli(chain, tmpdir, "backup", "shop")
    pg_dump = _wait_for("pg_dump waiting with the upload started", _pg_dump_waiting(chain, proc), proc)
    proc.kill()
    proc.communicate(timeout=15)
    try:
        assert _files_holding(tmpdir, password) == []
        assert [p for p in tmpdir.iterdir() if p.name.startswith("restorable")] == []
    finally:
        # The orphaned pg_dump would end at its next write into the closed pipe; end it now.
        if _comm(pg_dump) == "pg_dump":
            os.kill(pg_dump, signal.SIGKILL)
        for upload in _pending_uploads(chain):
            chain.services.store("backup").abort_multipart_upload(upload.key, upload.upload_id)


@pytest.fixture
def slow_pg_restore(tmp_path) -> tuple[Path, Path]:
    """A client directory whose pg_restore sleeps 60 s (after writing its environment to a file)."""
    bindir = tmp_path / "pgbin"
    bindir.mkdir()
    for tool in REAL_PG_BINDIR.iterdir():
        if tool.name != "pg_restore":
            (bindir / tool.name).symlink_to(tool)
    env_file = tmp_path / "pg_restore.env"
    wrapper = bindir / "pg_restore"
    wrapper.write_text(
        _SLOW_PG_RESTORE.format(python=sys.executable, env_file=str(env_file), real=str(REAL_PG_BINDIR / "pg_restore"))
    )
    wrapper.chmod(0o755)
    return bindir, env_file


def _backed_up(chain) -> None:
    for command in (("backup", "shop"), ("verify", "shop")):  # a drill takes the newest verified backup
        done = chain.run_cli(*command)
        assert done.returncode == 0, done.stderr


def _assert_stopped_clean(proc, chain, tmpdir: Path, env_file: Path) -> str:
    children = _descendants(proc.pid)
    returncode, seconds, stderr = _stop(proc)
    assert returncode == EXIT_SIGTERM, stderr
    assert seconds < 5, f"the CLI took {seconds:.1f} s to stop:\n{stderr}"
    assert "Traceback" not in stderr
    left = [p for p in children if Path(f"/proc/{p}").exists() and _comm(p)]
    assert left == [], f"child processes left: {[(p, _comm(p)) for p in left]}"
    assert [p for p in tmpdir.iterdir()] == []
    env = dict(line.split("=", 1) for line in env_file.read_text().splitlines() if "=" in line)
    assert not set(PLANTED) & set(env), "pg_restore inherited a planted secret"
    return stderr


def test_sigterm_during_restore_drops_the_database_it_created(
    pg_cli_chain, slow_pg_restore, pg_target_server, tmp_path
):
    chain = pg_cli_chain
    _backed_up(chain)
    bindir, env_file = slow_pg_restore
    tmpdir = tmp_path / "tmp"
    args = ("restore", "shop", "--target", "tgt", "--database", "interrupted_restore")
    proc = _start_cli(chain, tmpdir, *args, env_extra={"RESTORABLE_PG_BINDIR": str(bindir)})
    _wait_for("the restore under way", lambda: env_file.exists(), proc)
    assert "interrupted_restore" in _databases(pg_target_server)

    _assert_stopped_clean(proc, chain, tmpdir, env_file)
    assert "interrupted_restore" not in _databases(pg_target_server)


def test_sigterm_during_drill_drops_the_scratch_database(pg_cli_chain, slow_pg_restore, pg_target_server, tmp_path):
    chain = pg_cli_chain
    _backed_up(chain)
    bindir, env_file = slow_pg_restore
    tmpdir = tmp_path / "tmp"
    before = _databases(pg_target_server)
    proc = _start_cli(chain, tmpdir, "drill", "shop", env_extra={"RESTORABLE_PG_BINDIR": str(bindir)})
    _wait_for("the drill's restore under way", lambda: env_file.exists(), proc)
    scratch = _databases(pg_target_server) - before
    assert len(scratch) == 1 and next(iter(scratch)).startswith("drill_shop"), scratch

    _assert_stopped_clean(proc, chain, tmpdir, env_file)
    assert _databases(pg_target_server) == before
