"""The age identity connection type (``restorable_age``): the private key backups are decrypted with.

Declared to Airflow in the provider info (``provider.py``): the form shows one password field,
labelled as the private key, and none of host, port, schema, login or extra. The hook reads the key
the way the core does (``Services.identity``), so a connection of any type keeps working.
"""

from __future__ import annotations

from airflow.sdk import BaseHook

CONN_TYPE = "restorable_age"


class AgeIdentityHook(BaseHook):
    """An age identity (``AGE-SECRET-KEY-1...``) kept as a connection's password."""

    conn_name_attr = "age_identity_conn_id"
    default_conn_name = "restorable_age"
    conn_type = CONN_TYPE
    hook_name = "Restorable age identity"

    def __init__(self, age_identity_conn_id: str = default_conn_name, **kwargs) -> None:
        super().__init__(**kwargs)
        self.age_identity_conn_id = age_identity_conn_id

    def get_conn(self) -> str:
        """The identity; a ConfigError naming the connection when it holds none."""
        from restorable.airflow.connections import airflow_connection
        from restorable.services import age_identity_of

        return age_identity_of(airflow_connection(self.age_identity_conn_id))
