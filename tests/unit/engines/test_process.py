"""The client tools' child processes: environment, stderr tail, failure wording, stopping."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time

import pytest

from restorable.connections import ConnectionInfo
from restorable.engines import process
from restorable.engines.mysql import tools as mysql_tools
from restorable.engines.postgres import tools as pg_tools
from restorable.engines.postgres.listing import list_archive
from restorable.exceptions import Interrupted, ToolError
from restorable.interrupt import stop_on_signals


def _conn(password: str | None = "s3cr3t-pw") -> ConnectionInfo:
    return ConnectionInfo(conn_id="src", conn_type="postgres", host="db", port=5432, login="u", password=password)


@pytest.fixture
def parent_env(monkeypatch):
    for name, value in {
        "PATH": "/usr/bin",
        "HOME": "/home/airflow",
        "LC_CTYPE": "C.UTF-8",
        "AIRFLOW_CONN_SHOP": "postgres://u:pw@db/shop",
        "AIRFLOW_VAR_TOKEN": "t0ken",
        "AWS_SECRET_ACCESS_KEY": "aws-secret",
        "PGPASSWORD": "pg-secret",
        "PGPASSFILE": "/home/airflow/.pgpass",
        "PGSSLMODE": "verify-full",
        "MYSQL_PWD": "my-secret",
        "MYSQL_HOST": "elsewhere",
        "MYSQL_HISTFILE": "/dev/null",
    }.items():
        monkeypatch.setenv(name, value)


def test_child_env_keeps_the_base_and_the_tools_prefix_only(parent_env):
    env = process.child_env(tool_prefixes=("PG",), remove=("PGPASSWORD",), add={"PGAPPNAME": "x"})
    assert env["PATH"] == "/usr/bin" and env["HOME"] == "/home/airflow" and env["LC_CTYPE"] == "C.UTF-8"
    assert env["PGSSLMODE"] == "verify-full" and env["PGAPPNAME"] == "x"
    for gone in ("AIRFLOW_CONN_SHOP", "AIRFLOW_VAR_TOKEN", "AWS_SECRET_ACCESS_KEY", "PGPASSWORD", "MYSQL_PWD"):
        assert gone not in env


def test_postgres_child_env_has_the_passfile_and_no_password(parent_env):
    with pg_tools.password_file(_conn()) as passfile:
        env = pg_tools.child_env(passfile)
        assert env["PGPASSFILE"] == f"/dev/fd/{passfile.fd}" and pg_tools.pass_fds(passfile) == (passfile.fd,)
    assert env["PGAPPNAME"] == pg_tools.APPLICATION_NAME
    assert "PGPASSWORD" not in env and "AIRFLOW_CONN_SHOP" not in env and "MYSQL_HISTFILE" not in env
    assert "PGPASSFILE" not in pg_tools.child_env(None)  # the parent's own file never passes


def test_mysql_child_env_drops_password_and_address(parent_env):
    env = mysql_tools.child_env()
    assert env["MYSQL_HISTFILE"] == "/dev/null"
    assert env["LC_ALL"] == "C.UTF-8"
    for gone in ("MYSQL_PWD", "MYSQL_HOST", "AIRFLOW_CONN_SHOP", "PGSSLMODE", "AWS_SECRET_ACCESS_KEY"):
        assert gone not in env


def test_scrub_masks_the_password():
    assert process.scrub("auth failed for s3cr3t-pw", _conn()) == "auth failed for ********"
    assert process.scrub("nothing to hide", _conn(None)) == "nothing to hide"


def _child(code: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def test_stream_tail_keeps_the_last_lines_masks_the_secret_and_logs(caplog):
    proc = _child("import sys\nfor i in range(100): print(f'line {i} pw=hunter2', file=sys.stderr)\nsys.exit(3)")
    with caplog.at_level(logging.INFO, logger="restorable.engines.process"):
        tail = process.StreamTail(proc.stderr, "fake_dump", lines=5, secret="hunter2")
        returncode = proc.wait()
        tail.join()
    assert tail.count == 100
    assert tail.text().splitlines() == [f"line {i} pw=********" for i in range(95, 100)]
    assert "hunter2" not in caplog.text and "tool=fake_dump" in caplog.text
    error = process.tool_failure("fake_dump", returncode, tail, database="shop", hint="retry")
    assert isinstance(error, ToolError) and error.hint == "retry"
    assert str(error).startswith("fake_dump exited with code 3; stderr tail:\nline 95 pw=********")


def test_failure_message_wording():
    assert process.exit_description("pg_dump", -9) == "pg_dump was killed by signal 9"
    assert process.failure_message("mariadb", 1, "") == "mariadb exited with code 1; nothing on stderr"
    expected = "mariadb exited with code 1; stderr tail:\nERROR 1064"
    assert process.failure_message("mariadb", 1, " ERROR 1064 \n") == expected


def test_stop_process_ends_a_child_with_sigterm():
    proc = _child("import time\ntime.sleep(60)")
    started = time.monotonic()
    process.stop_process(proc, grace=5)
    assert proc.returncode == -15
    assert time.monotonic() - started < 5


def test_stop_process_kills_a_child_that_ignores_sigterm():
    code = "import signal, time\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\nprint(1, flush=True)\ntime.sleep(60)"
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE)
    assert proc.stdout.readline()  # the handler is in place
    started = time.monotonic()
    process.stop_process(proc, grace=0.5)
    assert proc.returncode == -9
    assert 0.4 < time.monotonic() - started < 5
    proc.stdout.close()


def test_stop_process_leaves_a_finished_child_alone():
    proc = _child("pass")
    proc.wait()
    process.stop_process(proc)
    assert proc.returncode == 0


class _SignalledOnStart(subprocess.Popen):
    """A Popen followed at once by a SIGTERM to this process: the signal lands between the
    child's start and whatever code was meant to guard it (a ``try``, an ``ExitStack``)."""

    started: list[subprocess.Popen] = []

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        _SignalledOnStart.started.append(self)
        os.kill(os.getpid(), signal.SIGTERM)


@pytest.fixture
def signalled_on_start(monkeypatch):
    _SignalledOnStart.started = []
    monkeypatch.setattr(subprocess, "Popen", _SignalledOnStart)
    yield _SignalledOnStart.started
    for proc in _SignalledOnStart.started:  # a failing test leaves nothing running
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_running_stops_a_child_whose_start_a_signal_interrupted(signalled_on_start):
    started = time.monotonic()
    with stop_on_signals(), pytest.raises(Interrupted):
        with process.running(["sleep", "60"]):
            time.sleep(30)  # never reached: the signal held during the start is raised first
    (proc,) = signalled_on_start
    assert proc.returncode == -signal.SIGTERM
    assert time.monotonic() - started < 5


def test_a_signal_as_the_dump_listing_starts_its_tools_leaves_neither_running(signalled_on_start):
    # The listing starts two pg_restore and their stderr threads before its guard; a signal
    # there used to leave them waiting on stdin after the command exited.
    with stop_on_signals(), pytest.raises(Interrupted):
        with list_archive():
            pass
    assert signalled_on_start, "no pg_restore started"
    assert [proc.pid for proc in signalled_on_start if proc.poll() is None] == []


def test_remove_quietly(tmp_path):
    path = tmp_path / "restorable-x.cnf"
    path.write_text("[client]\n")
    process.remove_quietly(str(path))
    process.remove_quietly(str(path))  # gone already: not an error
    assert not path.exists()


# -- secrets handed to children as /dev/fd/N --------------------------------------------------
def test_secret_file_is_readable_by_the_child_it_is_passed_to_and_named_nowhere(tmp_path, monkeypatch):
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    with process.secret_file("hunter2\n", "pgpass") as secret:
        assert os.readlink(f"/proc/self/fd/{secret.fd}").startswith("/memfd:restorable-pgpass")
        assert os.stat(secret.path).st_mode & 0o777 == 0o600  # libpq refuses group/world access
        read = subprocess.run(["cat", secret.path], pass_fds=secret.pass_fds, capture_output=True, text=True)
        assert read.stdout == "hunter2\n"
        unpassed = subprocess.run(["cat", secret.path], capture_output=True, text=True)
        assert unpassed.returncode != 0  # close-on-exec: a child not given it cannot open it
        assert list(tmp_path.iterdir()) == []
        fd = secret.fd
    assert secret.pass_fds == () and not os.path.exists(f"/proc/self/fd/{fd}")


def test_mysql_option_file_is_in_memory(parent_env):
    conn = ConnectionInfo(conn_id="m", conn_type="mysql", host="db", port=3306, login="u", password='p"w')
    with mysql_tools.defaults_file(conn) as cnf:
        text = subprocess.run(["cat", cnf.path], pass_fds=cnf.pass_fds, capture_output=True, text=True).stdout
    assert cnf.path.startswith("/dev/fd/") and 'password="p\\"w"' in text
