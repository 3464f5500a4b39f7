"""OpenBao / Vault transit: the KMS that wraps per-backup identities, over its HTTP API.

Transit never hands its key out: it encrypts, decrypts and rewraps on the server, and each of those
is a path its policies allow or refuse one by one (``transit/encrypt/<key>`` for the backup writer,
``transit/decrypt/<key>`` for restores, ``transit/rewrap/<key>`` for rotation). A ciphertext names
the key version that made it (``vault:v3:...``); ``min_decryption_version`` retires older versions.

The connection (Airflow's ``vault`` type, or any with these fields): ``host`` (a URL, or a host
name with ``port``), ``password`` = the token. Extra ``use_tls`` (default true when ``host`` is not a
URL) and ``namespace`` (Vault Enterprise / OpenBao namespaces). The token never appears in an error
or a log line; plaintext and ciphertext travel only in request bodies.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from restorable.connections import ConnectionInfo
from restorable.exceptions import ConfigError, KeyServiceError

#: Seconds to wait for the KMS: wrapping is one small request per backup.
TIMEOUT = (5, 30)


@dataclass(frozen=True)
class KeyVersions:
    """What the KMS says about its key: the newest version, the oldest still decrypting, and when each was made."""

    name: str
    latest_version: int
    min_decryption_version: int
    created: dict[int, datetime]


def ciphertext_version(ciphertext: str) -> int:
    """The key version a transit ciphertext (``vault:v<N>:...``) was made with."""
    parts = ciphertext.split(":", 2)
    if len(parts) != 3 or parts[0] != "vault" or not parts[1].startswith("v") or not parts[1][1:].isdigit():
        raise KeyServiceError(
            "a wrapped key is not a transit ciphertext (vault:v<N>:...)",
            hint="The key object was altered or was not written by Restorable",
        )
    return int(parts[1][1:])


class TransitKms:
    """One transit key, as one connection's token may use it."""

    backend = "openbao_transit"

    def __init__(self, conn: ConnectionInfo, *, mount: str, key: str) -> None:
        if not conn.host:
            raise ConfigError(
                f"KMS connection {conn.conn_id!r} has no host",
                hint="Set its host to the OpenBao/Vault address, e.g. http://127.0.0.1:8200",
            )
        if not conn.password:
            raise ConfigError(
                f"KMS connection {conn.conn_id!r} has no token in its password",
                hint="Store the OpenBao/Vault token of this duty (backup: encrypt; restore: decrypt) as its password",
            )
        self.conn_id = conn.conn_id
        self.url = _base_url(conn)
        self.mount = mount.strip("/")
        self.key = key
        self._headers = {"X-Vault-Token": conn.password}
        if conn.extra.get("namespace"):
            self._headers["X-Vault-Namespace"] = str(conn.extra["namespace"])
        import requests

        self._session = requests.Session()

    def __repr__(self) -> str:
        return f"TransitKms(url={self.url!r}, mount={self.mount!r}, key={self.key!r})"

    # -- the three rights ------------------------------------------------------------------
    def encrypt(self, plaintext: bytes) -> str:
        """Wrap ``plaintext`` under the key's newest version."""
        body = {"plaintext": _b64(plaintext)}
        return self._call("POST", f"encrypt/{self.key}", body, right="encrypt")["ciphertext"]

    def decrypt(self, ciphertext: str) -> bytes:
        body = {"ciphertext": ciphertext}
        return base64.b64decode(self._call("POST", f"decrypt/{self.key}", body, right="decrypt")["plaintext"])

    def rewrap(self, ciphertext: str) -> str:
        """The same plaintext under the key's newest version; the plaintext never leaves the KMS."""
        body = {"ciphertext": ciphertext}
        return self._call("POST", f"rewrap/{self.key}", body, right="rewrap")["ciphertext"]

    def version_of(self, ciphertext: str) -> int:
        """The key version that made ``ciphertext`` (transit writes it into the ciphertext)."""
        return ciphertext_version(ciphertext)

    def versions(self) -> KeyVersions:
        data = self._call("GET", f"keys/{self.key}", None, right="read the key of")
        created = {}
        for version, value in (data.get("keys") or {}).items():
            # transit gives a creation time per version (an int timestamp for old key types).
            created[int(version)] = (
                datetime.fromtimestamp(value).astimezone()
                if isinstance(value, int | float)
                else datetime.fromisoformat(str(value).replace("Z", "+00:00"))
            )
        return KeyVersions(self.key, int(data["latest_version"]), int(data["min_decryption_version"]), created)

    def rotate_key(self) -> None:
        """Make a new newest key version (an administrator's right; the yearly rotation)."""
        self._call("POST", f"keys/{self.key}/rotate", {}, right="rotate")

    # -- plumbing ---------------------------------------------------------------------------
    def _call(self, method: str, path: str, body: dict[str, Any] | None, *, right: str) -> dict[str, Any]:
        import requests

        url = f"{self.url}/v1/{self.mount}/{path}"
        try:
            response = self._session.request(method, url, json=body, headers=self._headers, timeout=TIMEOUT)
        except requests.RequestException as exc:
            raise KeyServiceError(
                f"the KMS at {self.url} did not answer ({type(exc).__name__})",
                hint="Check that OpenBao/Vault is up and reachable from here, and unsealed",
            ) from None
        if response.status_code == 403:
            denied = KeyServiceError(
                f"the KMS refused to {right} with key {self.key!r} for connection {self.conn_id!r} (permission denied)",
                hint=f"Give this connection's token a policy allowing {self.mount}/{path.split('/')[0]}/{self.key}, "
                "or use the connection of the duty that holds that right",
            )
            denied.permanent = True  # retrying the same token cannot help
            raise denied
        if response.status_code >= 400:
            raise KeyServiceError(
                f"the KMS answered {response.status_code} to {right} with key {self.key!r}: {_errors(response)}",
                hint="Check the key name and mount in encryption.envelope, and the server's state (sealed?)",
            )
        if response.status_code == 204 or not response.content:
            return {}
        return response.json().get("data") or {}


def _base_url(conn: ConnectionInfo) -> str:
    host = conn.host or ""
    if host.startswith(("http://", "https://")):
        url = host.rstrip("/")
        return f"{url}:{conn.port}" if conn.port and url.count(":") == 1 else url
    scheme = "https" if str(conn.extra.get("use_tls", True)).lower() not in ("false", "0", "no") else "http"
    return f"{scheme}://{host}{f':{conn.port}' if conn.port else ''}"


def _errors(response: Any) -> str:
    """The server's error list (never the request: it holds the plaintext or the ciphertext)."""
    try:
        errors = response.json().get("errors") or []
    except ValueError:
        errors = []
    return "; ".join(str(e) for e in errors)[:500] or response.reason or "no message"


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")
