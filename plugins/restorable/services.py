"""How the core reaches the outside world: connections, object storage, the catalog.

The CLI resolves connections from the environment (Airflow's ``AIRFLOW_CONN_*`` form); the
Airflow operators pass a resolver backed by Airflow's own connections. Either way the core
sees only ``ConnectionInfo``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from restorable.config import RestorableConfig
from restorable.connections import ConnectionInfo, resolve_connection
from restorable.exceptions import ConfigError
from restorable.repository.catalog import Catalog

if TYPE_CHECKING:
    from restorable.metrics import MetricsSink
    from restorable.storage.protocol import Store

Duty = Literal["backup", "lifecycle", "restore"]
Resolver = Callable[[str], ConnectionInfo]


def age_identity_of(conn: ConnectionInfo) -> str:
    """The age identity a connection holds in its password (ConfigError naming it when it holds none)."""
    secret = (conn.password or "").strip()
    if not secret.startswith("AGE-SECRET-KEY-"):
        raise ConfigError(
            f"connection {conn.conn_id!r} does not hold an age identity in its password",
            hint="Store the AGE-SECRET-KEY-1... line of the key file as the connection's password",
        )
    return secret


@dataclass
class Services:
    config: RestorableConfig
    resolve: Resolver = field(default=resolve_connection)
    #: Builds a boto3 S3 client from an AWS connection (overridable, e.g. by an Airflow hook).
    s3_client_factory: Callable[[ConnectionInfo], Any] | None = None
    #: Where runs report their figures (default: the config's Pushgateway, else nowhere).
    metrics_sink: MetricsSink | None = None

    def storage_conn_id(self, duty: Duty) -> str:
        storage = self.config.storage
        if duty == "lifecycle" and storage.lifecycle_conn_id:
            return storage.lifecycle_conn_id
        if duty == "restore" and storage.restore_conn_id:
            return storage.restore_conn_id
        return storage.conn_id

    def store(self, duty: Duty = "backup") -> Store:
        """The bucket as ``duty``'s credentials see it (lifecycle and restore may use their own)."""
        from restorable.storage.s3 import S3Store, s3_client_from_connection

        conn = self.resolve(self.storage_conn_id(duty))
        if conn.conn_type not in ("aws", "s3"):
            raise ConfigError(
                f"storage connection {conn.conn_id!r} has type {conn.conn_type!r}, expected 'aws'",
                hint="Create it as an Amazon Web Services connection (extra endpoint_url for S3-compatible stores)",
            )
        factory = self.s3_client_factory or s3_client_from_connection
        storage = self.config.storage
        return S3Store(
            factory(conn),
            storage.bucket,
            part_size=storage.part_size,
            max_in_flight=storage.max_in_flight,
            max_attempts=storage.max_attempts,
        )

    def metrics(self) -> MetricsSink:
        if self.metrics_sink is None:
            from restorable.metrics import sink_for

            self.metrics_sink = sink_for(self.config.metrics)
        return self.metrics_sink

    def catalog(self, duty: Duty = "backup") -> Catalog:
        return Catalog(self.store(duty), self.config.storage.prefix)

    def identity(self) -> str:
        """The age identity (private key) for decrypting: the identity connection's password."""
        return age_identity_of(self.resolve(self.config.encryption.identity_conn_id))
