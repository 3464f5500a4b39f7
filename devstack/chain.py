"""A real Restorable config around throwaway servers: used by the chain tests and the benchmark."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import yaml

from restorable.config import load_config
from restorable.connections import ConnectionInfo
from restorable.services import Services
from restorable.stream.keys import generate_identity


def connection_uri(conn: ConnectionInfo) -> str:
    """The AIRFLOW_CONN_* JSON form of a connection (JSON keeps every character of the password)."""
    return json.dumps(
        {
            "conn_type": conn.conn_type,
            "host": conn.host,
            "port": conn.port,
            "login": conn.login,
            "password": conn.password,
            "schema": conn.schema,
            "extra": dict(conn.extra),
        }
    )


@dataclass
class Chain:
    services: Services
    config_path: Path
    env: dict[str, str]
    identity: str
    recipient: str
    database_id: str
    target: ConnectionInfo

    def run_cli(self, *args: str, env_extra: dict[str, str] | None = None) -> subprocess.CompletedProcess:
        """``restorable --config <this chain's config> ARGS`` as an operator runs it: no Airflow, env vars only."""
        return subprocess.run(
            [sys.executable, "-m", "restorable.cli", "--config", str(self.config_path), *args],
            capture_output=True,
            text=True,
            env={**os.environ, **self.env, **(env_extra or {})},
            timeout=300,
        )


def make_chain(
    tmp_path: Path,
    *,
    source: ConnectionInfo,
    engine: str,
    s3: ConnectionInfo,
    bucket: str,
    target: ConnectionInfo,
    database_id: str = "shop",
    part_size: str = "5MiB",
    object_lock: bool = False,
    lifecycle_s3: ConnectionInfo | None = None,
    restore_s3: ConnectionInfo | None = None,
    retention: dict | None = None,
    drill: dict | None = None,
    extra_connections: dict[str, ConnectionInfo] | None = None,
    max_attempts: int = 3,
    copies: list[dict] | None = None,
    kms: dict[str, ConnectionInfo] | None = None,
    kms_backend: str = "openbao_transit",
    kms_key: str = "restorable",
) -> Chain:
    """``s3`` is the backup writer's connection; ``lifecycle_s3``/``restore_s3`` give the other duties theirs.

    ``copies``: ``storage.copies`` entries (their connections in ``extra_connections``).

    ``kms`` (``{"encrypt": conn, "decrypt": conn, "rotate": conn}``) turns envelope mode on, with ``kms_backend``'s
    key ``kms_key`` (OpenBao transit's ``restorable`` by default);
    the chain's own age key stays a recipient of every backup, as the break-glass key.
    """
    identity, recipient = generate_identity()
    connections = {
        "src": source,
        "tgt": target,
        "restorable_s3": s3,
        "restorable_age": ConnectionInfo("restorable_age", "generic", password=identity),
        **(extra_connections or {}),
    }
    storage = {
        "conn_id": "restorable_s3",
        "bucket": bucket,
        "prefix": "restorable",
        "part_size": part_size,
        "max_attempts": max_attempts,
    }
    for duty, conn in (("lifecycle", lifecycle_s3), ("restore", restore_s3)):
        if conn is not None:
            connections[f"restorable_s3_{duty}"] = conn
            storage[f"{duty}_conn_id"] = f"restorable_s3_{duty}"
    if object_lock:
        storage["object_lock"] = {"mode": "GOVERNANCE", "days": 1}
    if copies:
        storage["copies"] = copies
    encryption = {"recipients": [recipient], "identity_conn_id": "restorable_age"}
    if kms:
        encryption["envelope"] = {"kms": kms_backend, "key": kms_key}
        for duty, conn in kms.items():
            connections[f"restorable_kms_{duty}"] = conn
            encryption["envelope"][f"{duty}_conn_id"] = f"restorable_kms_{duty}"
    data = {
        "storage": storage,
        "encryption": encryption,
        "compression": {"level": 1, "threads": 2},
        "databases": [
            {
                "id": database_id,
                "engine": engine,
                "conn_id": "src",
                "schedule": "0 2 * * *",
                "restore_target_conn_id": "tgt",
                **({"retention": retention} if retention else {}),
                **({"drill": drill} if drill else {}),
            }
        ],
    }
    path = tmp_path / "restorable.yaml"
    path.write_text(yaml.safe_dump(data))
    env = {f"AIRFLOW_CONN_{k.upper()}": connection_uri(v) for k, v in connections.items()}
    config = load_config(path, env)
    services = Services(config, resolve=lambda conn_id: connections[conn_id])
    return Chain(services, path, env, identity, recipient, database_id, target)


def write_tampered_copy(catalog, manifest, edit) -> object:
    """Commit a copy of ``manifest`` as a new backup one second newer, changed by ``edit(dict)``.

    The dump is copied under the new backup's own key (a manifest listing another backup's
    object is damaged, and never drilled), so the copy differs from its data only where ``edit``
    changed the manifest: what a drill must then find.
    """
    from datetime import timedelta

    from restorable.repository.manifest import BackupManifest

    data = manifest.to_dict()
    edit(data)
    data["backup_id"] = manifest.backup_id[:-8] + "badc0de0"
    data["created_at"] = (manifest.created + timedelta(seconds=1)).isoformat().replace("+00:00", "Z")
    suffix = manifest.dump.key.rsplit("/", 1)[-1].removeprefix("data.").removesuffix(".zst.age")
    copy = catalog.layout.data_key(manifest.database_id, data["backup_id"], suffix)
    written = catalog.store.put_bytes(copy, catalog.store.get_bytes(manifest.dump.key))
    data["objects"][0].update(key=copy, version_id=written.version_id)
    tampered = BackupManifest.from_dict(data)
    catalog.write_manifest(tampered)
    return tampered
