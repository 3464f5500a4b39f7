"""Airflow's connection model, read without Airflow.

The CLI must work while Airflow is down, so it resolves a ``conn_id`` the way Airflow does
when no metadata database is involved: from ``AIRFLOW_CONN_<CONN_ID>`` in the environment,
in URI form (``postgres://user:pass@host:5432/db?sslmode=require``) or JSON form
(``{"conn_type": "postgres", "host": ..., "extra": {...}}``). Operators build the same
``ConnectionInfo`` from ``BaseHook.get_connection`` so one model serves both.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from restorable.exceptions import ConfigError

# Airflow spells some schemes differently from the conn_type they stand for.
_SCHEME_ALIASES = {"postgresql": "postgres", "mariadb": "mysql", "s3": "aws"}


@dataclass(frozen=True)
class ConnectionInfo:
    conn_id: str
    conn_type: str
    host: str | None = None
    port: int | None = None
    login: str | None = None
    password: str | None = field(default=None, repr=False)
    schema: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)

    def with_schema(self, schema: str) -> ConnectionInfo:
        """The same server, another database (``schema`` is the database name in Airflow)."""
        return replace(self, schema=schema)

    def describe(self) -> str:
        """A printable address, without the password."""
        user = f"{self.login}@" if self.login else ""
        port = f":{self.port}" if self.port else ""
        db = f"/{self.schema}" if self.schema else ""
        return f"{self.conn_type}://{user}{self.host or ''}{port}{db}"


def env_var_name(conn_id: str) -> str:
    return f"AIRFLOW_CONN_{conn_id.upper()}"


def parse_connection_uri(conn_id: str, uri: str) -> ConnectionInfo:
    """Parse an Airflow connection URI (percent-encoded parts, extras as query params)."""
    parts = urlsplit(uri)
    if not parts.scheme:
        raise ConfigError(
            f"connection {conn_id!r} is not a URI: it has no scheme",
            hint="Write it as postgres://user:password@host:5432/dbname",
        )
    conn_type = _SCHEME_ALIASES.get(parts.scheme, parts.scheme).replace("-", "_")
    query = dict(parse_qsl(parts.query, keep_blank_values=True))
    if "__extra__" in query:
        extra = json.loads(query.pop("__extra__"))
    else:
        extra = query
    try:
        port = parts.port
    except ValueError as exc:
        raise ConfigError(f"connection {conn_id!r} has an invalid port: {exc}") from None
    path = parts.path[1:] if parts.path.startswith("/") else parts.path
    return ConnectionInfo(
        conn_id=conn_id,
        conn_type=conn_type,
        host=unquote(parts.hostname) if parts.hostname else None,
        port=port,
        login=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password else None,
        schema=unquote(path) or None,
        extra=extra,
    )


def parse_connection_json(conn_id: str, text: str) -> ConnectionInfo:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"connection {conn_id!r} is not valid JSON: {exc.msg}") from None
    extra = data.get("extra") or {}
    if isinstance(extra, str):
        extra = json.loads(extra) if extra.strip() else {}
    conn_type = data.get("conn_type")
    if not conn_type:
        raise ConfigError(f"connection {conn_id!r} has no conn_type")
    return ConnectionInfo(
        conn_id=conn_id,
        conn_type=_SCHEME_ALIASES.get(conn_type, conn_type),
        host=data.get("host"),
        port=int(data["port"]) if data.get("port") else None,
        login=data.get("login"),
        password=data.get("password"),
        schema=data.get("schema"),
        extra=extra,
    )


def resolve_connection(conn_id_or_url: str, environ: Mapping[str, str] | None = None) -> ConnectionInfo:
    """Resolve a conn_id from the environment, or accept a connection URI directly."""
    environ = os.environ if environ is None else environ
    if "://" in conn_id_or_url:
        return parse_connection_uri("inline", conn_id_or_url)
    value = environ.get(env_var_name(conn_id_or_url))
    if value is None:
        raise ConfigError(
            f"connection {conn_id_or_url!r} is not defined",
            hint=(
                f"Set {env_var_name(conn_id_or_url)} to its URI or JSON form "
                "(as Airflow reads it), or pass a URI directly"
            ),
        )
    value = value.strip()
    if value.startswith("{"):
        return parse_connection_json(conn_id_or_url, value)
    return parse_connection_uri(conn_id_or_url, value)
