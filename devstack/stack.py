"""The demo stack: source and drill databases plus S3, left running for Airflow to use.

``start`` brings up, each on free ports bound to 127.0.0.1:

- ``shop_pg``: PostgreSQL with the sample database ``shop``
- ``drill_pg``: a separate PostgreSQL for restore drills
- ``shopdb_mysql``: MariaDB with the sample database ``shopdb``
- ``drill_mysql``: a separate MariaDB for restore drills
- ``s3``: SeaweedFS with the bucket ``restorable-backups`` (versioning + Object Lock)
- with ``monitoring=True``: Prometheus, Pushgateway and Alertmanager (``devstack.monitoring``),
  Prometheus scraping a ``restorable exporter`` on a port chosen here (the demo starts the exporter)

The servers are daemons (sessions of their own) and outlive the command. The state directory
gets ``stack.json`` (PIDs, ports, data paths; mode 0600 since it holds the passwords) and
``stack.env`` (``export AIRFLOW_CONN_...`` lines, mode 0600) to ``source`` before running
Airflow or the CLI. ``stop`` ends all of it and is idempotent; ``status`` shows what runs.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import quote

from devstack.mariadb import MariaDBServer
from devstack.monitoring import DEMO, Monitoring
from devstack.ports import free_port, port_is_open
from devstack.postgres import PostgresServer
from devstack.seaweedfs import SeaweedS3
from restorable.exceptions import ConfigError

log = logging.getLogger(__name__)

DEFAULT_STATE_DIR = Path(".state/stack")
BUCKET = "restorable-backups"
SOURCE_PG_DATABASE = "shop"
SOURCE_MYSQL_DATABASE = "shopdb"
STATE_FILE = "stack.json"
ENV_FILE = "stack.env"
AGE_KEY_FILE = "age-key.txt"  # the demo's age identity (0600), for restores by hand

#: service name -> (Airflow conn_id, database in the connection)
_CONNECTIONS = {
    "shop_pg": ("shop_pg", SOURCE_PG_DATABASE),
    "drill_pg": ("drill_pg", "postgres"),
    "shopdb_mysql": ("shopdb_mysql", SOURCE_MYSQL_DATABASE),
    "drill_mysql": ("drill_mysql", "mysql"),
    "s3": ("restorable_s3", None),
}


def _write_private(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(text)
    os.replace(tmp, path)


def _server_from_record(record: dict[str, Any]):
    kind = record["kind"]
    if kind == "postgres":
        return PostgresServer.from_record(record)
    if kind == "mariadb":
        return MariaDBServer.from_record(record)
    if kind == "seaweedfs":
        return SeaweedS3.from_record(record)
    raise ConfigError(f"unknown service kind {kind!r} in {STATE_FILE}")


def read_state(state_dir: Path = DEFAULT_STATE_DIR) -> dict[str, Any] | None:
    path = Path(state_dir) / STATE_FILE
    if not path.exists():
        return None
    return json.loads(path.read_text())


def _connection_uri(name: str, record: dict[str, Any]) -> str:
    conn_id, database = _CONNECTIONS[name]
    if record["kind"] == "seaweedfs":
        return json.dumps(
            {
                "conn_type": "aws",
                "login": record["access_key"],
                "password": record["secret_key"],
                "extra": {"endpoint_url": record["endpoint_url"], "region_name": "us-east-1"},
            },
            separators=(",", ":"),
        )
    scheme = "postgres" if record["kind"] == "postgres" else "mysql"
    user = "postgres" if scheme == "postgres" else "root"
    return (
        f"{scheme}://{quote(user, safe='')}:{quote(record['password'], safe='')}"
        f"@{record['host']}:{record['port']}/{quote(database, safe='')}"
    )


def env_lines(state: dict[str, Any]) -> list[str]:
    """``export AIRFLOW_CONN_<ID>='<uri or json>'`` for every service, plus the bucket name."""
    lines = []
    for name, record in state["services"].items():
        conn_id, _db = _CONNECTIONS[name]
        lines.append(f"export AIRFLOW_CONN_{conn_id.upper()}='{_connection_uri(name, record)}'")
    lines.append(f"export RESTORABLE_BUCKET='{state['bucket']}'")
    if monitoring := state.get("monitoring"):
        # Runs push to the Pushgateway (metrics.pushgateway_url's fallback); the exporter's port is Prometheus's target.
        lines.append(f"export RESTORABLE_PUSHGATEWAY_URL='{monitoring['urls']['pushgateway']}'")
        lines.append(f"export RESTORABLE_EXPORTER_PORT='{monitoring['exporter_port']}'")
    if state.get("age"):
        # The demo's key pair: the public key for the config, the identity for restores.
        identity = json.dumps({"conn_type": "generic", "password": state["age"]["identity"]})
        lines.append(f"export AIRFLOW_CONN_RESTORABLE_AGE='{identity}'")
        lines.append(f"export RESTORABLE_AGE_RECIPIENT='{state['age']['recipient']}'")
    return lines


def _summary(state: dict[str, Any]) -> dict[str, Any]:
    """What scripts need: ports and endpoints, no secrets."""
    out = {}
    for name, record in state["services"].items():
        entry = {"kind": record["kind"], "pid": record.get("pid"), "conn_id": _CONNECTIONS[name][0]}
        if record["kind"] == "seaweedfs":
            entry.update(
                port=record["ports"].get("s3.port"), endpoint_url=record["endpoint_url"], ports=record["ports"]
            )
        else:
            entry.update(host=record["host"], port=record["port"], database=_CONNECTIONS[name][1])
        out[name] = entry
    return out


def _start_monitoring(state_dir: Path) -> dict[str, Any]:
    exporter_port = free_port()
    monitoring = Monitoring(state_dir / "monitoring", timing=DEMO, exporter=f"127.0.0.1:{exporter_port}").start()
    return {**monitoring.to_record(), "exporter_port": exporter_port}


def _monitoring_is_up(record: dict[str, Any]) -> bool:
    return all(port_is_open(port) for port in record["ports"].values())


def start(
    state_dir: Path = DEFAULT_STATE_DIR, *, scale_mb: float = 20.0, seed: int = 1, monitoring: bool = False
) -> dict[str, Any]:
    """Start the whole stack (or report the one already running). Returns the state."""
    from devstack import sample_mariadb, sample_postgres

    state_dir = Path(state_dir).absolute()
    existing = read_state(state_dir)
    if existing is not None:
        running = {name: _is_up(rec) for name, rec in existing["services"].items()}
        if existing.get("monitoring"):
            running["monitoring"] = _monitoring_is_up(existing["monitoring"])
        if running and all(running.values()):
            if monitoring and not existing.get("monitoring"):
                existing["monitoring"] = _start_monitoring(state_dir)
                _write_private(state_dir / STATE_FILE, json.dumps(existing, indent=2))
                _write_private(state_dir / ENV_FILE, "\n".join(env_lines(existing)) + "\n")
            log.info("stack already running state_dir=%s", state_dir)
            return existing
        log.info("stale stack state found, stopping leftovers state_dir=%s", state_dir)
        stop(state_dir)
    state_dir.mkdir(parents=True, exist_ok=True)
    os.chmod(state_dir, 0o755)  # the postgres user must reach its data directories
    started = time.monotonic()
    from restorable.stream.keys import generate_identity

    identity, recipient = generate_identity()
    _write_private(state_dir / AGE_KEY_FILE, f"# public key: {recipient}\n{identity}\n")
    state: dict[str, Any] = {
        "state_dir": str(state_dir),
        "bucket": BUCKET,
        "age": {"identity": identity, "recipient": recipient, "key_file": str(state_dir / AGE_KEY_FILE)},
        "scale_mb": scale_mb,
        "services": {},
        "timings": {},
    }
    lock = threading.Lock()

    def record(name: str, server, seconds: float) -> None:
        with lock:
            state["services"][name] = server.to_record()
            state["timings"][f"{name}_start_s"] = round(seconds, 2)
            _write_private(state_dir / STATE_FILE, json.dumps(state, indent=2))

    servers = {
        "shop_pg": PostgresServer(state_dir, name="shop_pg"),
        "drill_pg": PostgresServer(state_dir, name="drill_pg"),
        "shopdb_mysql": MariaDBServer(state_dir, name="shopdb_mysql"),
        "drill_mysql": MariaDBServer(state_dir, name="drill_mysql"),
        "s3": SeaweedS3(state_dir / "s3"),
    }

    def bring_up(name: str) -> None:
        t0 = time.monotonic()
        servers[name].start()
        record(name, servers[name], time.monotonic() - t0)

    try:
        with ThreadPoolExecutor(max_workers=len(servers)) as pool:
            for future in [pool.submit(bring_up, name) for name in servers]:
                future.result()

        def fill_pg() -> dict:
            return sample_postgres.create_sample_database(
                servers["shop_pg"].connection(SOURCE_PG_DATABASE), scale_mb=scale_mb, seed=seed
            )

        def fill_mysql() -> dict:
            return sample_mariadb.create_sample_database(
                servers["shopdb_mysql"].connection(SOURCE_MYSQL_DATABASE), scale_mb=scale_mb, seed=seed
            )

        with ThreadPoolExecutor(max_workers=2) as pool:
            pg_future, my_future = pool.submit(fill_pg), pool.submit(fill_mysql)
            servers["s3"].create_bucket(BUCKET, object_lock=True, versioning=True)
            harden_bucket(servers["s3"], BUCKET)
            pg_summary, my_summary = pg_future.result(), my_future.result()
        sample_postgres.create_sample_roles(servers["drill_pg"].connection())
        if monitoring:
            state["monitoring"] = _start_monitoring(state_dir)
    except BaseException:
        log.error("stack start failed, stopping what was started state_dir=%s", state_dir)
        if state.get("monitoring"):
            Monitoring.from_record(state["monitoring"]).stop()
        for server in servers.values():
            try:
                server.stop()
            except Exception as exc:  # keep stopping the others
                log.warning("stop after failed start failed error=%s", exc)
        for name in (STATE_FILE, ENV_FILE, AGE_KEY_FILE):
            (state_dir / name).unlink(missing_ok=True)
        raise
    state["services"] = {name: state["services"][name] for name in servers}  # a stable order
    state["timings"]["total_s"] = round(time.monotonic() - started, 2)
    state["samples"] = {
        "shop_pg": {k: pg_summary[k] for k in ("database", "rows", "data_mb", "seconds")},
        "shopdb_mysql": {k: my_summary[k] for k in ("database", "rows", "data_mb", "seconds")},
    }
    state["summary"] = _summary(state)
    _write_private(state_dir / STATE_FILE, json.dumps(state, indent=2))
    _write_private(state_dir / ENV_FILE, "\n".join(env_lines(state)) + "\n")
    log.info("stack started state_dir=%s seconds=%.1f", state_dir, state["timings"]["total_s"])
    return state


def _is_up(record: dict[str, Any]) -> bool:
    pid = record.get("pid")
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    port = record["ports"].get("s3.port") if record["kind"] == "seaweedfs" else record.get("port")
    return bool(port) and port_is_open(port)


def stop(state_dir: Path = DEFAULT_STATE_DIR) -> list[str]:
    """Stop every service recorded in the state directory and remove their data. Idempotent."""
    state_dir = Path(state_dir).absolute()
    state = read_state(state_dir)
    stopped: list[str] = []
    if state is not None:
        errors = []

        def stop_one(name: str, rec: dict[str, Any]) -> None:
            try:
                _server_from_record(rec).stop()
                stopped.append(name)
            except Exception as exc:  # stop the others, then report
                errors.append(f"{name}: {exc}")

        with ThreadPoolExecutor(max_workers=max(1, len(state["services"]))) as pool:
            for future in [pool.submit(stop_one, n, r) for n, r in state["services"].items()]:
                future.result()
        if state.get("monitoring"):
            Monitoring.from_record(state["monitoring"]).stop()
            shutil.rmtree(state["monitoring"]["state_dir"], ignore_errors=True)
            stopped.append("monitoring")
        if errors:
            raise RuntimeError("could not stop everything: " + "; ".join(errors))
    for name in (STATE_FILE, ENV_FILE, AGE_KEY_FILE):
        (state_dir / name).unlink(missing_ok=True)
    log.info("stack stopped state_dir=%s services=%s", state_dir, ",".join(stopped) or "none")
    return stopped


def status(state_dir: Path = DEFAULT_STATE_DIR) -> dict[str, Any]:
    """What runs: per service, pid, port and whether it answers (no secrets)."""
    state = read_state(Path(state_dir).absolute())
    if state is None:
        return {"running": False, "services": {}}
    services = {}
    for name, entry in _summary(state).items():
        services[name] = {**entry, "up": _is_up(state["services"][name])}
    monitoring = None
    if record := state.get("monitoring"):
        monitoring = {
            "up": _monitoring_is_up(record),
            "urls": record["urls"],
            "exporter": f"http://{record['exporter']}/metrics",
        }
    return {
        "running": all(s["up"] for s in services.values()) and (monitoring is None or monitoring["up"]),
        "monitoring": monitoring,
        "state_dir": state["state_dir"],
        "bucket": state["bucket"],
        "env_file": str(Path(state["state_dir"]) / ENV_FILE),
        "services": services,
    }


def harden_bucket(s3: Any, bucket: str) -> None:
    """Give the demo bucket what production needs (default encryption, the rules aborting stale
    uploads and expiring noncurrent versions) the way an operator would: ``lifecycle audit --fix``."""
    from restorable.lifecycle.audit import BucketExpectations, audit_bucket
    from restorable.storage.s3 import S3Store

    drifts = audit_bucket(S3Store(s3.client(), bucket), BucketExpectations(prefix="restorable/"), fix=True)
    for drift in drifts:
        log.info("demo bucket set bucket=%s setting=%s fixed=%s", bucket, drift.setting, drift.fixed)
