"""``pgbench`` (TPC-B-like) against a throwaway server: the load PITR must stay exact under."""

from __future__ import annotations

import os
import subprocess

from devstack.postgres import PostgresServer, postgres_bindir


class Pgbench:
    """``pgbench -i`` once, then (as a context manager) clients committing until the block ends.

    The server's throwaway password reaches pgbench in its environment, never on its command line.
    """

    def __init__(self, server: PostgresServer, *, scale: int = 1, clients: int = 2) -> None:
        self.server = server
        self.clients = clients
        self.argv = [str(postgres_bindir() / "pgbench"), "-h", server.host, "-p", str(server.port), "-U", "postgres"]
        self.env = {**os.environ, "PGPASSWORD": server.password}
        init = subprocess.run([*self.argv, "-i", "-s", str(scale), "-q", "postgres"], env=self.env, capture_output=True)
        if init.returncode != 0:
            raise RuntimeError(f"pgbench -i failed: {init.stderr.decode(errors='replace')[-1000:]}")
        self.proc: subprocess.Popen | None = None

    def __enter__(self) -> Pgbench:
        self.proc = subprocess.Popen(
            [*self.argv, "-n", "-c", str(self.clients), "-T", "3600", "postgres"],
            env=self.env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        return self

    def transactions(self) -> int:
        """Transactions committed so far (one ``pgbench_history`` row each)."""
        with self.server.connect("postgres") as pg:
            return pg.execute("SELECT count(*) FROM pgbench_history").fetchone()[0]

    def __exit__(self, *exc) -> None:
        assert self.proc is not None
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
