"""Building a boto3 S3 client from an Airflow-style ``aws`` connection (using it is ``store.py``).

Which setting wins, as ``s3_client_from_connection`` does it:

- Credentials: the connection's ``login``/``password``, else ``extra.aws_access_key_id`` /
  ``aws_secret_access_key``; with neither, boto3's default chain decides (``AWS_*`` environment,
  then ``extra.profile_name`` or the default profile, then the instance role). Keys given in the
  connection beat a profile named beside them. ``extra.aws_session_token`` goes with the keys.
- Endpoint: ``extra.endpoint_url``, else ``extra.service_config.s3.endpoint_url``, else boto3's
  own resolution (``AWS_ENDPOINT_URL_S3`` / ``AWS_ENDPOINT_URL`` in the environment, else AWS).
- Region: ``extra.region_name``, else boto3's (``AWS_DEFAULT_REGION``, the profile).
- ``verify``: ``extra.verify`` when present, else boto3's (``AWS_CA_BUNDLE``, the system CAs).
- botocore ``Config``: ``extra.config_kwargs`` (a mapping or its JSON text) first;
  ``extra.addressing_style`` then overrides ``config_kwargs.s3.addressing_style``; a custom
  endpoint gets path-style addressing unless one of them says otherwise. Restorable's defaults
  fill only what is left unset: botocore retries off (``S3Store`` retries, so ``max_attempts``
  is the one knob), 10 s connect / 60 s read timeouts, 16 pooled connections, TCP keepalive,
  checksums only when required, no SigV4 payload signing. Because they reach botocore as an
  explicit ``Config``, they also beat ``AWS_MAX_ATTEMPTS``/``AWS_RETRY_MODE`` in the environment.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from restorable.connections import ConnectionInfo
from restorable.exceptions import ConfigError

log = logging.getLogger(__name__)


def s3_client_from_connection(conn: ConnectionInfo) -> Any:
    """A boto3 S3 client from an Airflow-style ``aws`` connection.

    Fields follow the Amazon provider: ``login``/``password`` are the access key id and
    secret (``extra.aws_access_key_id``/``aws_secret_access_key`` also work); extra keys
    ``aws_session_token``, ``region_name``, ``endpoint_url`` (or
    ``service_config.s3.endpoint_url``), ``verify``, ``profile_name`` and ``config_kwargs``
    (botocore ``Config`` arguments); ``addressing_style`` is a shortcut for
    ``config_kwargs.s3.addressing_style``. Without keys, boto3's default credential chain
    (environment, profile, instance role) is used. A custom endpoint gets path-style
    addressing unless told otherwise: S3-compatible stores rarely serve bucket subdomains.
    """
    import boto3
    from botocore.config import Config

    extra = dict(conn.extra or {})
    if isinstance(extra.get("config_kwargs"), str):
        extra["config_kwargs"] = _json_field(conn, "config_kwargs", extra["config_kwargs"])
    for unsupported in ("role_arn", "assume_role_method"):
        if extra.get(unsupported):
            raise ConfigError(
                f"connection {conn.conn_id!r}: extra.{unsupported} is not supported by Restorable's S3 client",
                hint="Use access keys, a profile_name, or the default credential chain (instance role)",
            )
    key_id = conn.login or extra.get("aws_access_key_id")
    secret = conn.password or extra.get("aws_secret_access_key")
    if bool(key_id) != bool(secret):
        raise ConfigError(
            f"connection {conn.conn_id!r} has an access key id without a secret (or the reverse)",
            hint="Set both login (aws_access_key_id) and password (aws_secret_access_key), or neither",
        )
    service_config = extra.get("service_config") or {}
    endpoint_url = extra.get("endpoint_url") or (service_config.get("s3") or {}).get("endpoint_url")
    region = extra.get("region_name") or None

    config_kwargs: dict[str, Any] = dict(extra.get("config_kwargs") or {})
    s3_config = dict(config_kwargs.pop("s3", None) or {})
    if extra.get("addressing_style"):
        s3_config["addressing_style"] = extra["addressing_style"]
    if endpoint_url and "addressing_style" not in s3_config:
        s3_config["addressing_style"] = "path"
    # Every body we send carries a signed x-amz-checksum-sha256 header the server verifies, so
    # hashing the body a second time for the SigV4 payload hash (botocore does on plain-HTTP
    # endpoints) adds CPU and no integrity.
    s3_config.setdefault("payload_signing_enabled", False)
    config_kwargs.setdefault("retries", {"mode": "standard", "total_max_attempts": 1})
    config_kwargs.setdefault("connect_timeout", 10)
    config_kwargs.setdefault("read_timeout", 60)
    config_kwargs.setdefault("max_pool_connections", 16)
    config_kwargs.setdefault("tcp_keepalive", True)
    # We send SHA-256 checksums ourselves; botocore would otherwise add a CRC32 to every put.
    config_kwargs.setdefault("request_checksum_calculation", "when_required")
    try:
        config = Config(s3=s3_config or None, **config_kwargs)
    except TypeError as exc:
        raise ConfigError(
            f"connection {conn.conn_id!r}: extra.config_kwargs is not valid for botocore: {exc}",
            hint="Use botocore.config.Config argument names (retries, connect_timeout, s3, ...)",
        ) from None

    session = boto3.session.Session(
        aws_access_key_id=key_id or None,
        aws_secret_access_key=secret or None,
        aws_session_token=extra.get("aws_session_token") or None,
        region_name=region,
        profile_name=extra.get("profile_name") or None,
    )
    kwargs: dict[str, Any] = {"config": config}
    if endpoint_url:
        kwargs["endpoint_url"] = endpoint_url
    if "verify" in extra:
        kwargs["verify"] = extra["verify"]
    log.debug(
        "s3 client conn_id=%s endpoint=%s region=%s keys=%s",
        conn.conn_id,
        endpoint_url or "aws",
        region or "default",
        "connection" if key_id else "default-chain",
    )
    return session.client("s3", **kwargs)


def _json_field(conn: ConnectionInfo, name: str, text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"connection {conn.conn_id!r}: extra.{name} is not valid JSON: {exc.msg}") from None
