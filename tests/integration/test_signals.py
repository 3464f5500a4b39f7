"""SIGTERM and SIGKILL to ``restorable backup|verify|restore|drill`` while they work (issue 17, signals).

Each test holds the command in the middle of its work on purpose, then stops it:

- a PostgreSQL backup: a session of the test holds an ACCESS EXCLUSIVE lock on a table, so the
  real pg_dump waits on it with the multipart upload already started;
- a MariaDB backup: no lock can do that (``LOCK TABLES t WRITE`` also holds up the backup's own
  ``FLUSH TABLES WITH READ LOCK``, so the backup fails before its dump starts; every lock that
  lets FTWRL through also lets the dump's snapshot reads through). ``PATH`` finds a
  ``mariadb-dump`` that runs the real one, passes its header and first statements on (the backup
  sees its snapshot open and releases the global lock), then stops reading: the real dump blocks
  on its pipe with its session open and the upload started;
- a restore or drill: ``RESTORABLE_PG_BINDIR`` (PostgreSQL) or ``PATH`` (MariaDB) finds a
  ``pg_restore``/``mariadb`` that records its environment, then sleeps before it execs the real
  one, so the target database exists and the restore is under way;
- a deep verify (PostgreSQL): the same sleeping ``pg_restore``, which ``pg_restore --list`` runs;
- a checksum verify, and a MariaDB deep verify, run no child to hold: the CLI reaches S3 through
  a proxy of the test that holds the response to the data object's GET after its first bytes,
  so the CLI is in the middle of reading the stored object.

After SIGTERM the command must exit with 143 within 5 s, leaving no manifest, no pending
multipart upload, no child process, no database it created, no temporary file and, for a
verify, no verification record (a verdict on a read that never finished would make ``list``
and ``latest`` lie); after SIGKILL no file holding a secret may remain. The children's
environments must hold neither ``AIRFLOW_CONN_*`` nor the S3 secret.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from urllib.parse import urlsplit

import psycopg
import pytest

from devstack.chain import connection_uri

pytestmark = pytest.mark.integration

#: Planted in the CLI's environment: no child may see them.
PLANTED = {"AIRFLOW_CONN_PLANTED": "planted-conn-secret", "AWS_SECRET_ACCESS_KEY": "planted-aws-secret"}
EXIT_SIGTERM = 128 + signal.SIGTERM
REAL_PG_BINDIR = Path("/usr/lib/postgresql/15/bin")
REAL_MARIADB_BINDIR = Path("/usr/bin")

#: A client tool that records its environment, then sleeps before it execs the real one.
_SLOW_TOOL = """#!{python}
import os, sys, time
if "--version" not in sys.argv:
    with open({env_file!r}, "w") as fh:
        fh.write("\\n".join(f"{{k}}={{v}}" for k, v in os.environ.items()))
    time.sleep(60)
os.execv({real!r}, [{real!r}, *sys.argv[1:]])
"""

#: A ``mariadb-dump`` that runs the real one and passes its header and first statements on (so
#: the backup sees the dump's snapshot open and releases its global lock), then records its
#: environment and reads no more: the real dump blocks on its pipe, in its snapshot. SIGTERM
#: ends both.
_HELD_MARIADB_DUMP = """#!{python}
import os, signal, subprocess, sys, time
real = {real!r}
if "--version" in sys.argv:
    os.execv(real, [real, *sys.argv[1:]])
# close_fds=False: the option file is /dev/fd/N, inherited from the backup.
dump = subprocess.Popen([real, *sys.argv[1:]], stdout=subprocess.PIPE, close_fds=False)
def stop(signum, frame):
    dump.kill()
    dump.wait()
    os._exit(128 + signum)
signal.signal(signal.SIGTERM, stop)
passed = b""
while (end := passed.find(b"SQL_NOTES=0 */;\\n")) < 0 or len(passed) < end + 4096:
    chunk = os.read(dump.stdout.fileno(), 4096)
    if not chunk:
        sys.exit("the real dump ended before it was held")
    os.write(1, chunk)
    passed += chunk
with open({env_file!r}, "w") as fh:
    fh.write("\\n".join(f"{{k}}={{v}}" for k, v in os.environ.items()))
time.sleep(60)
stop(signal.SIGTERM, None)
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
        _SLOW_TOOL.format(python=sys.executable, env_file=str(env_file), real=str(REAL_PG_BINDIR / "pg_restore"))
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
    assert not set(PLANTED) & set(env), "the child tool inherited a planted secret"
    assert not any(v in PLANTED.values() for v in env.values())
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
    (entry,) = chain.services.catalog("restore").entries("shop")
    records = chain.services.catalog("restore").verifications("shop", entry.backup_id)
    proc = _start_cli(chain, tmpdir, "drill", "shop", env_extra={"RESTORABLE_PG_BINDIR": str(bindir)})
    _wait_for("the drill's restore under way", lambda: env_file.exists(), proc)
    scratch = _databases(pg_target_server) - before
    assert len(scratch) == 1 and next(iter(scratch)).startswith("drill_shop"), scratch

    _assert_stopped_clean(proc, chain, tmpdir, env_file)
    assert _databases(pg_target_server) == before
    assert chain.services.catalog("restore").verifications("shop", entry.backup_id) == records, (
        "the interrupted drill recorded evidence"
    )


# -- verify --------------------------------------------------------------------------------
class _HeldS3:
    """A TCP proxy in front of the S3 endpoint that holds the response to a GET of a backup's data
    object once its first bytes have passed: the CLI is then in the middle of reading it, as on a
    stalled network. Everything else (the manifest, HEADs, puts) passes untouched."""

    DATA_GET = re.compile(rb"^GET /\S*/data\.\S* HTTP/1\.1", re.MULTILINE)
    PASSED_BYTES = 64 * 1024

    def __init__(self, endpoint_url: str) -> None:
        parts = urlsplit(endpoint_url)
        self._upstream = (parts.hostname, parts.port)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.endpoint_url = f"http://127.0.0.1:{self._listener.getsockname()[1]}"
        #: Set once a data GET is held.
        self.holding = threading.Event()
        self._release = threading.Event()
        threading.Thread(target=self._accept, name="held-s3", daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(self._upstream)
            hold = threading.Event()
            threading.Thread(target=self._requests, args=(client, upstream, hold), daemon=True).start()
            threading.Thread(target=self._responses, args=(upstream, client, hold), daemon=True).start()

    def _requests(self, client: socket.socket, upstream: socket.socket, hold: threading.Event) -> None:
        try:
            while data := client.recv(65536):
                if self.DATA_GET.search(data):
                    hold.set()  # before the request goes out: its whole response is under the hold
                upstream.sendall(data)
        except OSError:
            pass
        finally:
            _close(upstream)

    def _responses(self, upstream: socket.socket, client: socket.socket, hold: threading.Event) -> None:
        passed = 0
        try:
            while data := upstream.recv(65536):
                if hold.is_set():
                    data = data[: self.PASSED_BYTES - passed]
                    passed += len(data)
                client.sendall(data)
                if hold.is_set() and passed >= self.PASSED_BYTES:
                    self.holding.set()
                    self._release.wait()
                    return
        except OSError:
            pass
        finally:
            _close(client)

    def close(self) -> None:
        self._release.set()
        self._listener.close()


def _close(sock: socket.socket) -> None:
    try:
        sock.close()
    except OSError:
        pass


@pytest.fixture
def held_s3(seaweed) -> Callable[[object], dict[str, str]]:
    """``env_extra`` for ``_start_cli`` that sends the chain's S3 connection through a ``_HeldS3``."""
    proxy = _HeldS3(seaweed.endpoint_url)

    def through_proxy(chain) -> dict[str, str]:
        conn = chain.services.resolve("restorable_s3")
        proxied = replace(conn, extra={**conn.extra, "endpoint_url": proxy.endpoint_url})
        return {"AIRFLOW_CONN_RESTORABLE_S3": connection_uri(proxied)}

    through_proxy.proxy = proxy  # type: ignore[attr-defined]
    yield through_proxy
    proxy.close()


def _unverified_backup(chain) -> str:
    """A committed backup with no verification record yet: whatever a verify records is new."""
    done = chain.run_cli("backup", "shop", "--no-verify")
    assert done.returncode == 0, done.stderr
    (entry,) = chain.services.catalog("restore").entries("shop")
    assert chain.services.catalog("restore").verifications("shop", entry.backup_id) == []
    return entry.backup_id


def _assert_not_recorded(chain, backup_id: str) -> None:
    """The interrupted verify left no pass or fail beside the backup, and ``list`` shows none."""
    assert chain.services.catalog("restore").verifications("shop", backup_id) == []
    listed = chain.run_cli("--json", "list", "shop")
    assert listed.returncode == 0, listed.stderr
    (row,) = json.loads(listed.stdout)
    assert (row["backup_id"], row["verified"], row["last_check"]) == (backup_id, False, None)


def _assert_verify_stopped_clean(proc, tmpdir: Path) -> str:
    children = _descendants(proc.pid)
    returncode, seconds, stderr = _stop(proc)
    assert returncode == EXIT_SIGTERM, stderr
    assert seconds < 5, f"the CLI took {seconds:.1f} s to stop:\n{stderr}"
    assert "interrupted by SIGTERM" in stderr and "Traceback" not in stderr
    left = [p for p in children if Path(f"/proc/{p}").exists() and _comm(p)]
    assert left == [], f"child processes left: {[(p, _comm(p)) for p in left]}"
    assert list(tmpdir.iterdir()) == []
    return stderr


# A PostgreSQL deep verify runs pg_restore, held like a restore's (the next test); MariaDB's deep
# verify parses the dump in the CLI itself, so it is held, like a checksum verify, at the read.
@pytest.mark.parametrize(
    ("chain_fixture", "deep"),
    [("pg_cli_chain", False), ("mariadb_cli_chain", False), ("mariadb_cli_chain", True)],
    ids=["postgres-checksum", "mariadb-checksum", "mariadb-deep"],
)
def test_sigterm_while_verify_reads_the_stored_object_records_no_verdict(
    request, chain_fixture, deep, held_s3, tmp_path
):
    chain = request.getfixturevalue(chain_fixture)
    backup_id = _unverified_backup(chain)
    tmpdir = tmp_path / "tmp"
    proc = _start_cli(chain, tmpdir, "verify", "shop", *(["--deep"] if deep else []), env_extra=held_s3(chain))
    _wait_for("the verify reading the data object", held_s3.proxy.holding.is_set, proc)

    _assert_verify_stopped_clean(proc, tmpdir)
    _assert_not_recorded(chain, backup_id)


def test_sigterm_during_deep_verify_stops_pg_restore_and_records_no_verdict(
    pg_cli_chain, slow_pg_restore, pg_target_server, tmp_path
):
    chain = pg_cli_chain
    backup_id = _unverified_backup(chain)
    bindir, env_file = slow_pg_restore
    tmpdir = tmp_path / "tmp"
    before = _databases(pg_target_server)
    proc = _start_cli(chain, tmpdir, "verify", "shop", "--deep", env_extra={"RESTORABLE_PG_BINDIR": str(bindir)})
    _wait_for("pg_restore --list under way", lambda: env_file.exists(), proc)
    assert {_comm(p) for p in _descendants(proc.pid)} >= {"pg_restore"}

    _assert_verify_stopped_clean(proc, tmpdir)
    env = dict(line.split("=", 1) for line in env_file.read_text().splitlines() if "=" in line)
    assert not set(PLANTED) & set(env) and "PGPASSWORD" not in env, "pg_restore inherited a secret"
    _assert_not_recorded(chain, backup_id)
    # A deep verify parses the archive without a server: it must not have left a database anywhere.
    assert _databases(pg_target_server) == before


# -- MariaDB ---------------------------------------------------------------------------------
def _mariadb_bindir(tmp_path: Path, tool: str, template: str) -> tuple[Path, Path]:
    """A directory to put first on ``PATH`` holding ``tool`` made from ``template``, and the file
    it writes its environment to."""
    bindir = tmp_path / "mariadbbin"
    bindir.mkdir()
    env_file = tmp_path / f"{tool}.env"
    wrapper = bindir / tool
    wrapper.write_text(
        template.format(python=sys.executable, env_file=str(env_file), real=str(REAL_MARIADB_BINDIR / tool))
    )
    wrapper.chmod(0o755)
    return bindir, env_file


def _on_path(bindir: Path) -> dict[str, str]:
    return {"PATH": f"{bindir}{os.pathsep}{os.environ['PATH']}"}


def _mariadb_databases(server) -> set[str]:
    return {row[0] for row in server.query("SHOW DATABASES")}


def test_sigterm_during_mariadb_backup_aborts_the_upload_and_stops_the_dump(mariadb_cli_chain, tmp_path):
    chain = mariadb_cli_chain
    password = chain.services.resolve("src").password
    bindir, env_file = _mariadb_bindir(tmp_path, "mariadb-dump", _HELD_MARIADB_DUMP)
    tmpdir = tmp_path / "tmp"
    proc = _start_cli(chain, tmpdir, "backup", "shop", env_extra=_on_path(bindir))
    _wait_for("mariadb-dump held with the upload started", lambda: env_file.exists() and _pending_uploads(chain), proc)
    dumps = [p for p in _descendants(proc.pid) if _comm(p) == "mariadb-dump"]
    assert len(dumps) == 2, "the wrapper and the real dump, in its snapshot"
    real_env = _environ(dumps[-1])
    assert not set(PLANTED) & set(real_env) and "MYSQL_PWD" not in real_env
    assert not any(v in PLANTED.values() for v in real_env.values())
    assert _files_holding(tmpdir, password) == [], "a file in $TMPDIR holds the password"

    stderr = _assert_stopped_clean(proc, chain, tmpdir, env_file)
    assert "interrupted by SIGTERM" in stderr
    assert _pending_uploads(chain) == []
    assert chain.services.catalog("restore").database_ids() == []


def test_sigterm_during_mariadb_restore_drops_the_database_it_created(
    mariadb_cli_chain, mariadb_target_server, tmp_path
):
    chain = mariadb_cli_chain
    _backed_up(chain)
    bindir, env_file = _mariadb_bindir(tmp_path, "mariadb", _SLOW_TOOL)
    tmpdir = tmp_path / "tmp"
    args = ("restore", "shop", "--target", "tgt", "--database", "interrupted_restore")
    proc = _start_cli(chain, tmpdir, *args, env_extra=_on_path(bindir))
    _wait_for("the restore under way", lambda: env_file.exists(), proc)
    assert "interrupted_restore" in _mariadb_databases(mariadb_target_server)

    stderr = _assert_stopped_clean(proc, chain, tmpdir, env_file)
    assert "interrupted by SIGTERM" in stderr
    assert "interrupted_restore" not in _mariadb_databases(mariadb_target_server)


def test_sigterm_during_mariadb_drill_drops_the_scratch_database(mariadb_cli_chain, mariadb_target_server, tmp_path):
    chain = mariadb_cli_chain
    _backed_up(chain)
    bindir, env_file = _mariadb_bindir(tmp_path, "mariadb", _SLOW_TOOL)
    tmpdir = tmp_path / "tmp"
    before = _mariadb_databases(mariadb_target_server)
    (entry,) = chain.services.catalog("restore").entries("shop")
    records = chain.services.catalog("restore").verifications("shop", entry.backup_id)
    proc = _start_cli(chain, tmpdir, "drill", "shop", env_extra=_on_path(bindir))
    _wait_for("the drill's restore under way", lambda: env_file.exists(), proc)
    scratch = _mariadb_databases(mariadb_target_server) - before
    assert len(scratch) == 1 and next(iter(scratch)).startswith("drill_shop"), scratch

    stderr = _assert_stopped_clean(proc, chain, tmpdir, env_file)
    assert "interrupted by SIGTERM" in stderr
    assert _mariadb_databases(mariadb_target_server) == before
    assert chain.services.catalog("restore").verifications("shop", entry.backup_id) == records, (
        "the interrupted drill recorded evidence"
    )
