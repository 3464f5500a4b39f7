"""Airflow connections as the core's ``ConnectionInfo``.

The core resolves ``conn_id``s through a callable; inside Airflow that callable asks Airflow
(``BaseHook.get_connection``), so connections defined in the metadata DB, in a secrets backend
or as ``AIRFLOW_CONN_*`` variables all work. Outside Airflow the CLI reads the environment.
"""

from __future__ import annotations

from pathlib import Path

from restorable.config import RestorableConfig, load_config
from restorable.connections import _SCHEME_ALIASES, ConnectionInfo
from restorable.exceptions import ConfigError
from restorable.services import Services


def airflow_connection(conn_id: str) -> ConnectionInfo:
    """Resolve ``conn_id`` through Airflow; raise ConfigError (permanent) when it is not defined."""
    from airflow.sdk import BaseHook

    try:
        conn = BaseHook.get_connection(conn_id)
    except Exception as exc:  # AirflowNotFoundException, or the API refusing
        if type(exc).__name__ not in ("AirflowNotFoundException", "AirflowRuntimeError"):
            raise
        raise ConfigError(
            f"Airflow connection {conn_id!r} is not defined",
            hint=f"Create it in Admin > Connections, or set AIRFLOW_CONN_{conn_id.upper()}",
        ) from None
    conn_type = conn.conn_type or ""
    return ConnectionInfo(
        conn_id=conn_id,
        conn_type=_SCHEME_ALIASES.get(conn_type, conn_type).replace("-", "_"),
        host=conn.host or None,
        port=int(conn.port) if conn.port else None,
        login=conn.login or None,
        password=conn.password or None,
        schema=conn.schema or None,
        extra=dict(conn.extra_dejson or {}),
    )


def airflow_services(config: RestorableConfig | str | Path | None = None) -> Services:
    """Core services whose connections come from Airflow."""
    if not isinstance(config, RestorableConfig):
        config = load_config(config)
    return Services(config, resolve=airflow_connection)
