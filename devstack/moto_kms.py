"""moto's server as a stand-in for the AWS KMS API (``moto_server`` from PyPI's ``moto``, with flask).

Only for the AWS KMS backend's wiring: moto implements Encrypt/Decrypt/ReEncrypt with real AES-GCM,
``RotateKeyOnDemand`` and ``ListKeyRotations``, but enforces no key policy or IAM (any credentials may
do anything), keeps nothing across a restart, and its "rotation" only adds a backing key. What
envelope mode must enforce (an encrypt-only backup role) is proven against OpenBao, not here.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

from devstack import HOST, file_tail, find_program, venv_bin_dir
from devstack.ports import free_port, port_is_open
from restorable.connections import ConnectionInfo
from restorable.exceptions import ToolError

PACKAGE_HINT = "pip install moto==5.2.1 flask flask-cors (moto_server lands in the venv's bin); make bootstrap"
REGION = "us-east-1"


class MotoKms:
    def __init__(self, state_dir: Path) -> None:
        self.state_dir = Path(state_dir)
        self.port = 0
        self.pid: int | None = None
        self._proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def start(self, *, timeout: float = 30) -> MotoKms:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        binary = find_program("moto_server", package=PACKAGE_HINT, extra_dirs=[venv_bin_dir()])
        with open(self.state_dir / "moto.log", "ab") as logfh:
            self._proc = subprocess.Popen(
                [binary, "-H", HOST, "-p", str(self.port)],
                stdin=subprocess.DEVNULL,
                stdout=logfh,
                stderr=subprocess.STDOUT,
                env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(self.state_dir)},
                start_new_session=True,
            )
        self.pid = self._proc.pid
        deadline = time.monotonic() + timeout
        while not port_is_open(self.port):
            if self._proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise ToolError(f"moto_server did not start: {file_tail(self.state_dir / 'moto.log')}")
            time.sleep(0.05)
        return self

    def stop(self) -> None:
        if self.pid is None:
            return
        try:
            os.killpg(self.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        if self._proc is not None:
            self._proc.wait(timeout=15)
        self.pid = None

    def connection(self, conn_id: str = "restorable_kms") -> ConnectionInfo:
        """An Amazon connection to this endpoint (moto accepts any keys)."""
        return ConnectionInfo(
            conn_id,
            "aws",
            login="testing",
            password="testing",
            extra={"endpoint_url": self.url, "region_name": REGION},
        )

    def client(self) -> Any:
        from restorable.keys.aws_kms import kms_client_from_connection

        return kms_client_from_connection(self.connection())

    def create_key(self, alias: str) -> str:
        """A symmetric key under ``alias`` (``alias/...``); returns its key id."""
        key_id = self.client().create_key(Description="restorable envelope test")["KeyMetadata"]["KeyId"]
        self.client().create_alias(AliasName=alias, TargetKeyId=key_id)
        return key_id
