"""Who may see what in the plugin's pages: a database's rows belong to its DAGs.

A user sees a database (its status row, its charts, its evidence) when Airflow's auth manager lets
them read at least one of that database's DAGs (``backup__<id>``, ``restore_drill__<id>``, ...). The
auth manager decides, whichever the deployment uses (the simple one, FAB, Keycloak), including
multi-team deployments where a team's DAG bundles are visible to that team only: the same rule
Airflow's own DAG list applies.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

#: The DAG id of each per-database DAG is one of these followed by the database id (``dag_factory``).
DATABASE_DAG_PREFIXES = ("backup__", "restore_drill__", "base_backup__", "pitr_drill__", "monitor__")


def database_dag_ids(database_id: str) -> set[str]:
    return {prefix + database_id for prefix in DATABASE_DAG_PREFIXES}


def database_of_dag(dag_id: str, database_ids: Iterable[str]) -> str | None:
    """The configured database a DAG belongs to, or None for any other DAG (Restorable's or not)."""
    for prefix in DATABASE_DAG_PREFIXES:
        if dag_id.startswith(prefix) and dag_id[len(prefix) :] in set(database_ids):
            return dag_id[len(prefix) :]
    return None


def readable_dag_ids(user: Any) -> set[str]:
    """The DAGs ``user`` may read, as the auth manager says (what the UI's own DAG list shows)."""
    from airflow.api_fastapi.app import get_auth_manager

    return get_auth_manager().get_authorized_dag_ids(user=user, method="GET")


def readable_databases(user: Any, database_ids: Iterable[str]) -> set[str]:
    readable = readable_dag_ids(user)
    return {db for db in database_ids if database_dag_ids(db) & readable}
