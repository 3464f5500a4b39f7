"""``encryption.envelope``: per-backup keys wrapped by a KMS (envelope mode).

Without this block a backup is encrypted to ``encryption.recipients`` alone (the static age
provider, the default). With it, each backup gets a fresh age identity of its own, wrapped by the
KMS key named here; ``encryption.recipients`` stay recipients of every backup as the offline
break-glass keys. The KMS credentials are connections, one per duty, so the backup side holds only
the encrypt right: a stolen backup token cannot read an old backup.

Parsed with the config's own field reader (``config._Fields``), so its mistakes read like the rest.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from restorable.exceptions import ConfigError

#: KMS backends this version can wrap with: OpenBao/Vault transit (``keys/transit.py``), AWS KMS (``keys/aws_kms.py``).
KMS_BACKENDS = ("openbao_transit", "aws_kms")
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,127}$")
#: An AWS KMS key: its id, its ARN, an alias name or an alias ARN.
_AWS_KEY_RE = re.compile(
    r"^(alias/[A-Za-z0-9/_-]{1,250}|arn:aws[a-z-]*:kms:[a-z0-9-]+:\d{12}:(key|alias)/\S+"
    r"|[0-9a-f-]{36}|mrk-[0-9a-f]{32})$"
)


@dataclass(frozen=True)
class EnvelopeConfig:
    #: Which KMS wraps the per-backup identities.
    kms: str
    #: The KMS key's name (OpenBao/Vault transit: the key under ``mount``; AWS: key id, ARN or alias).
    key: str
    #: The backup writer's connection: the KMS's encrypt right only.
    encrypt_conn_id: str
    #: The restore side's connection: the decrypt right (restores, drills, deep verify).
    decrypt_conn_id: str
    #: ``keys rotate``/``keys status``: rewrap, decrypt (to prove each rewrap) and read the key's versions.
    rotate_conn_id: str
    #: The transit secrets engine's mount path.
    mount: str = "transit"
    #: A key version older than this is due for rotation (``keys status`` reports it).
    rotation_period: timedelta = timedelta(days=365)


def parse_envelope(data: Any, where: str, env: Mapping[str, str]) -> EnvelopeConfig | None:
    if data is None:
        return None
    from restorable.config import _Fields
    from restorable.lifecycle.policy import parse_duration

    f = _Fields(data, where, env)
    kms = f.text("kms", required=True)
    if kms not in KMS_BACKENDS:
        raise ConfigError(
            f"{where}.kms: {kms!r} is not a KMS this version wraps keys with",
            hint=f"Use one of: {', '.join(KMS_BACKENDS)}",
        )
    names = {"key": f.text("key", required=True), "mount": f.text("mount", "transit").strip("/")}
    if kms == "aws_kms" and not _AWS_KEY_RE.match(names["key"]):
        raise ConfigError(
            f"{where}.key: {names['key']!r} is not an AWS KMS key",
            hint="Give its key id, ARN, or an alias (alias/restorable)",
        )
    for name, value in names.items():
        if kms == "aws_kms" and name == "key":
            continue
        if not _NAME_RE.match(value):
            raise ConfigError(f"{where}.{name}: {value!r} is not a key or mount name (letters, digits, _ . -)")
    decrypt = f.text("decrypt_conn_id", required=True)
    period = parse_duration(f.text("rotation_period", "365d"), where=f"{where}.rotation_period")
    if period <= timedelta(0):
        raise ConfigError(f"{where}.rotation_period: must be longer than zero", hint='For example "365d"')
    envelope = EnvelopeConfig(
        kms=kms,
        key=names["key"],
        mount=names["mount"],
        encrypt_conn_id=f.text("encrypt_conn_id", required=True),
        decrypt_conn_id=decrypt,
        rotate_conn_id=f.text("rotate_conn_id", decrypt),
        rotation_period=period,
    )
    if envelope.encrypt_conn_id == envelope.decrypt_conn_id:
        raise ConfigError(
            f"{where}: encrypt_conn_id and decrypt_conn_id are the same connection {decrypt!r}",
            hint="Give the backup side a token that may only encrypt, and the restore side another that may decrypt",
        )
    f.check_unknown()
    return envelope
