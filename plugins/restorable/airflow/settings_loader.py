"""Load an Astro-format ``airflow_settings.yaml`` into plain Airflow.

    python -m restorable.airflow.settings_loader airflow_settings.yaml [--dry-run]

Pools and variables are created or updated; connections are created or updated unless an
``AIRFLOW_CONN_<ID>`` variable already defines them (Airflow prefers the variable anyway).
``${NAME}`` and ``${NAME:-default}`` in values are replaced from the environment; a missing
name without default is an error naming the entry. Needs a migrated metadata DB.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from restorable.exceptions import ConfigError

_ENV_RE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def expand(value: Any, where: str, environ: Mapping[str, str]) -> Any:
    if not isinstance(value, str):
        return value

    def sub(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(2)
        if name in environ:
            return environ[name]
        if default is not None:
            return default
        raise ConfigError(f"{where} refers to ${{{name}}}, which is not set", hint=f"export {name}=...")

    return _ENV_RE.sub(sub, value)


def read_settings(path: str | Path, environ: Mapping[str, str] | None = None) -> dict[str, list[dict[str, Any]]]:
    """Parse and expand the file: {"connections": [...], "pools": [...], "variables": [...]}."""
    environ = os.environ if environ is None else environ
    path = Path(path)
    data = yaml.safe_load(path.read_text()) or {}
    airflow = data.get("airflow") or {}
    if not isinstance(airflow, Mapping):
        raise ConfigError(f"{path}: 'airflow' must be a mapping of connections, pools, variables")
    out: dict[str, list[dict[str, Any]]] = {"connections": [], "pools": [], "variables": []}
    for i, conn in enumerate(airflow.get("connections") or []):
        where = f"{path}: airflow.connections[{i}]"
        if not conn.get("conn_id") or not conn.get("conn_type"):
            raise ConfigError(f"{where}: conn_id and conn_type are required")
        item = {k: expand(v, f"{where}.{k}", environ) for k, v in conn.items()}
        extra = item.get("conn_extra") or {}
        if isinstance(extra, str):
            extra = json.loads(extra) if extra.strip() else {}
        item["conn_extra"] = {k: expand(v, f"{where}.conn_extra.{k}", environ) for k, v in extra.items()}
        out["connections"].append(item)
    for i, pool in enumerate(airflow.get("pools") or []):
        where = f"{path}: airflow.pools[{i}]"
        if not pool.get("pool_name"):
            raise ConfigError(f"{where}: pool_name is required")
        slots = pool.get("pool_slot", 1)
        if not isinstance(slots, int) or slots < 1:
            raise ConfigError(f"{where}.pool_slot: expected a positive integer, found {slots!r}")
        out["pools"].append(
            {"name": str(pool["pool_name"]), "slots": slots, "description": str(pool.get("pool_description") or "")}
        )
    for i, var in enumerate(airflow.get("variables") or []):
        where = f"{path}: airflow.variables[{i}]"
        if not var.get("variable_name"):
            raise ConfigError(f"{where}: variable_name is required")
        out["variables"].append(
            {"key": var["variable_name"], "value": expand(var.get("variable_value", ""), where, environ)}
        )
    return out


def apply_settings(
    settings: dict[str, list[dict[str, Any]]], environ: Mapping[str, str] | None = None, *, dry_run: bool = False
) -> list[str]:
    """Create or update everything in Airflow's metadata DB; return what was done, one line each."""
    environ = os.environ if environ is None else environ
    done: list[str] = []
    if not dry_run:
        from airflow.models.connection import Connection
        from airflow.models.pool import Pool
        from airflow.models.variable import Variable
        from airflow.utils.session import create_session
    for pool in settings["pools"]:
        if not dry_run:
            Pool.create_or_update_pool(
                pool["name"], slots=pool["slots"], description=pool["description"], include_deferred=False
            )
        done.append(f"pool {pool['name']} slots={pool['slots']}")
    for var in settings["variables"]:
        if not dry_run:
            Variable.set(var["key"], var["value"])
        done.append(f"variable {var['key']}")
    for item in settings["connections"]:
        conn_id = item["conn_id"]
        if f"AIRFLOW_CONN_{conn_id.upper()}" in environ:
            done.append(f"connection {conn_id} skipped (AIRFLOW_CONN_{conn_id.upper()} is set)")
            continue
        if not dry_run:
            with create_session() as session:
                existing = session.query(Connection).filter(Connection.conn_id == conn_id).one_or_none()
                conn = existing or Connection(conn_id=conn_id)
                conn.conn_type = item["conn_type"]
                conn.host = item.get("conn_host") or None
                conn.schema = item.get("conn_schema") or None
                conn.login = item.get("conn_login") or None
                conn.password = item.get("conn_password") or None
                conn.port = int(item["conn_port"]) if item.get("conn_port") else None
                conn.set_extra(json.dumps(item["conn_extra"]) if item["conn_extra"] else None)
                if existing is None:
                    session.add(conn)
        done.append(f"connection {conn_id} ({item['conn_type']})")
    return done


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m restorable.airflow.settings_loader",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("path", nargs="?", default="airflow_settings.yaml")
    parser.add_argument("--dry-run", action="store_true", help="show what would be loaded, change nothing")
    args = parser.parse_args(argv)
    try:
        for line in apply_settings(read_settings(args.path), dry_run=args.dry_run):
            print(line)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    return 0


if __name__ == "__main__":
    sys.exit(main())
