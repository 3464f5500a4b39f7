"""AWS KMS as the KMS of envelope mode: ``kms:Encrypt`` / ``Decrypt`` / ``ReEncrypt`` through boto3.

The same three rights as transit, granted per duty by key policy or IAM: the backup writer
``kms:Encrypt`` (plus ``kms:DescribeKey`` and ``kms:ListKeyRotations``, to record which key version it
wrapped under), restores ``kms:Decrypt``, rotation ``kms:ReEncrypt*``, ``kms:Decrypt`` and the two reads
(``kms:RotateKeyOnDemand`` for ``--rotate-kms-key``).

AWS does not say which backing key a ciphertext was made with, and never retires an old one. So a
"key version" here is 1 + the number of rotations the key has had when the wrap was made (read from
``ListKeyRotations`` just after it), and ``min_decryption_version`` is always 1. Rewrapping after a
rotation (``ReEncrypt`` to the same key) moves a key object onto the newest backing key.

The connection is an Amazon one (``aws``), read as for the bucket: ``login``/``password`` (or
``extra.aws_access_key_id``/``aws_secret_access_key``), ``extra.aws_session_token``, ``region_name``,
``endpoint_url`` (or ``service_config.kms.endpoint_url``), ``profile_name`` and ``verify``.
"""

from __future__ import annotations

import base64
from datetime import datetime
from typing import Any

from restorable.connections import ConnectionInfo
from restorable.exceptions import KeyServiceError
from restorable.keys.transit import KeyVersions

PREFIX = "aws-kms:"
#: Error codes that mean "this principal may not", which retrying cannot change.
_DENIED = {"AccessDeniedException", "AccessDenied", "UnauthorizedOperation"}


def kms_client_from_connection(conn: ConnectionInfo) -> Any:
    import boto3
    from botocore.config import Config

    extra = dict(conn.extra or {})
    service_config = extra.get("service_config") or {}
    endpoint_url = extra.get("endpoint_url") or (service_config.get("kms") or {}).get("endpoint_url")
    session = boto3.session.Session(
        aws_access_key_id=conn.login or extra.get("aws_access_key_id") or None,
        aws_secret_access_key=conn.password or extra.get("aws_secret_access_key") or None,
        aws_session_token=extra.get("aws_session_token") or None,
        region_name=extra.get("region_name") or None,
        profile_name=extra.get("profile_name") or None,
    )
    kwargs: dict[str, Any] = {
        "config": Config(connect_timeout=5, read_timeout=30, retries={"mode": "standard", "total_max_attempts": 3})
    }
    if endpoint_url:
        kwargs["endpoint_url"] = endpoint_url
    if "verify" in extra:
        kwargs["verify"] = extra["verify"]
    return session.client("kms", **kwargs)


class AwsKms:
    """One AWS KMS key (id, ARN or ``alias/...``), as one connection's principal may use it."""

    backend = "aws_kms"

    def __init__(self, conn: ConnectionInfo, *, key: str) -> None:
        self.conn_id = conn.conn_id
        self.key = key
        self._client = kms_client_from_connection(conn)

    def __repr__(self) -> str:
        return f"AwsKms(key={self.key!r})"

    def encrypt(self, plaintext: bytes) -> str:
        blob = self._call("Encrypt", "encrypt", KeyId=self.key, Plaintext=plaintext)["CiphertextBlob"]
        return PREFIX + base64.b64encode(blob).decode("ascii")

    def decrypt(self, ciphertext: str) -> bytes:
        return self._call("Decrypt", "decrypt", KeyId=self.key, CiphertextBlob=_blob(ciphertext))["Plaintext"]

    def rewrap(self, ciphertext: str) -> str:
        answer = self._call(
            "ReEncrypt", "re-encrypt", CiphertextBlob=_blob(ciphertext), SourceKeyId=self.key, DestinationKeyId=self.key
        )
        return PREFIX + base64.b64encode(answer["CiphertextBlob"]).decode("ascii")

    def version_of(self, ciphertext: str) -> int:
        """The key version a wrap made just now is under (AWS encrypts with the newest backing key)."""
        return self.versions().latest_version

    def versions(self) -> KeyVersions:
        meta = self._call("DescribeKey", "describe", KeyId=self.key)["KeyMetadata"]
        rotations = self._call("ListKeyRotations", "list the rotations of", KeyId=meta["KeyId"]).get("Rotations", [])
        created: dict[int, datetime] = {1: meta["CreationDate"]}
        for number, rotation in enumerate(sorted(rotations, key=lambda r: r["RotationDate"]), start=2):
            created[number] = rotation["RotationDate"]
        return KeyVersions(self.key, len(created), 1, created)

    def rotate_key(self) -> None:
        meta = self._call("DescribeKey", "describe", KeyId=self.key)["KeyMetadata"]
        self._call("RotateKeyOnDemand", "rotate", KeyId=meta["KeyId"])

    def _call(self, operation: str, right: str, **kwargs: Any) -> dict[str, Any]:
        from botocore.exceptions import BotoCoreError, ClientError

        method = getattr(self._client, "_".join(_words(operation)))
        try:
            return method(**kwargs)
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            denied = code in _DENIED
            error = KeyServiceError(
                f"AWS KMS refused to {right} with key {self.key!r} for connection {self.conn_id!r}: "
                f"{'permission denied' if denied else code} ({exc.response.get('Error', {}).get('Message', '')[:300]})",
                hint=f"Allow kms:{operation} on this key to this connection's principal, or use the duty that has it",
            )
            error.permanent = denied
            raise error from None
        except BotoCoreError as exc:
            raise KeyServiceError(
                f"AWS KMS did not answer ({type(exc).__name__})",
                hint="Check the connection's region and endpoint_url, and the network path to KMS",
            ) from None


def _blob(ciphertext: str) -> bytes:
    if not ciphertext.startswith(PREFIX):
        raise KeyServiceError(
            "a wrapped key is not an AWS KMS ciphertext (aws-kms:...)",
            hint="The key object was altered, or written with another KMS than encryption.envelope.kms names",
        )
    return base64.b64decode(ciphertext[len(PREFIX) :])


def _words(camel: str) -> list[str]:
    words, current = [], ""
    for char in camel:
        if char.isupper() and current:
            words.append(current.lower())
            current = ""
        current += char
    return [*words, current.lower()]
