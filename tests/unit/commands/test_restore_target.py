"""The one decision "may this restore write here?": non-empty targets, the drill's source, scratch names."""

from __future__ import annotations

import re

import pytest
import yaml

from restorable.commands.restore_target import (
    check_target,
    drill_target,
    is_scratch_name,
    restore_target,
    scratch_database_name,
    target_connection,
    targets_source,
)
from restorable.config import load_config
from restorable.connections import ConnectionInfo, resolve_connection
from restorable.engines.mysql.engine import MySQLEngine
from restorable.engines.postgres.engine import PostgresEngine
from restorable.exceptions import ConfigError, RestoreRefused, SourceUnreachable
from restorable.services import Services

SOURCE = ConnectionInfo("src", "postgres", host="db.example.com", port=5432, login="backup", schema="shop")
DRILL = ConnectionInfo("tgt", "postgres", host="drill.example.com", port=5432, login="drill", schema="postgres")


class StateEngine:
    """Reports a fixed target state and server identities, and remembers what it was asked about;
    names are judged by the real engine ``kind`` (that needs no server)."""

    def __init__(self, state: str, *, kind: str = "postgres", identities: dict[str, str] | None = None) -> None:
        self.state = state
        self.asked: list[tuple[str, str]] = []
        self.real = PostgresEngine() if kind == "postgres" else MySQLEngine()
        self.max_database_name = self.real.max_database_name
        self.database_name_unit = self.real.database_name_unit
        #: conn_id -> identity; a missing one is unreachable.
        self.identities = identities if identities is not None else {"src": "pg:1", "tgt": "pg:2"}

    def target_state(self, conn: ConnectionInfo, database: str) -> str:
        self.asked.append((conn.conn_id, database))
        return self.state

    def server_identity(self, conn: ConnectionInfo) -> str:
        if conn.conn_id not in self.identities:
            raise SourceUnreachable(f"cannot connect to {conn.describe()}")
        return self.identities[conn.conn_id]

    def reserved_databases(self, conn: ConnectionInfo) -> frozenset[str]:
        return self.real.reserved_databases(conn)

    def database_name_length(self, name: str) -> int:
        return self.real.database_name_length(name)


def services(tmp_path, connections: dict[str, ConnectionInfo], **database) -> Services:
    entry = {"id": "shop", "engine": "postgres", "conn_id": "src", **database}
    path = tmp_path / "restorable.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "storage": {"conn_id": "s3", "bucket": "backups"},
                "encryption": {"recipients": ["age1" + "q" * 58], "identity_conn_id": "age"},
                "databases": [entry],
            }
        )
    )
    # An id resolves from ``connections``, anything else as the CLI would (a URL; an unknown id fails).
    return Services(
        load_config(path, {}), resolve=lambda conn_id: connections.get(conn_id) or resolve_connection(conn_id, {})
    )


# --- scratch names -----------------------------------------------------------------------------


def test_scratch_name_is_the_same_for_every_task_of_a_run_and_differs_between_runs():
    one = scratch_database_name("shop", "restore_drill__shop/manual__2026-01-01")
    assert one == scratch_database_name("shop", "restore_drill__shop/manual__2026-01-01")
    assert one != scratch_database_name("shop", "restore_drill__shop/manual__2026-01-02")
    assert re.fullmatch(r"drill_shop_[0-9a-f]{8}", one)


def test_scratch_name_without_a_run_is_random_and_fits_every_engine():
    names = {scratch_database_name("x" * 80) for _ in range(20)}
    assert len(names) == 20
    assert all(len(n) <= 63 and is_scratch_name(n) for n in names)


def test_only_drill_names_are_scratch_names():
    assert is_scratch_name("drill_shop_0123abcd")
    assert not is_scratch_name("shop") and not is_scratch_name("drill_")


# --- the drill never writes to its source ------------------------------------------------------


def test_another_server_is_not_the_source():
    assert not targets_source(SOURCE, DRILL, "drill_shop_0123abcd")


@pytest.mark.parametrize(
    "target",
    [
        ConnectionInfo("tgt", "postgres", host="db.example.com", port=5432, schema="shop"),
        ConnectionInfo("tgt", "postgres", host="DB.Example.COM", port=5432, schema="SHOP"),
        ConnectionInfo("tgt", "postgres", host="db.example.com", port=None, schema="shop"),
    ],
    ids=["same", "other-case", "default-port"],
)
def test_the_source_database_on_the_source_server_is_the_source(target):
    assert targets_source(SOURCE, target, "drill_shop_0123abcd")


def test_a_scratch_name_equal_to_the_source_database_is_the_source():
    other_server = ConnectionInfo("tgt", "postgres", host="drill.example.com", port=5432, schema="postgres")
    source = ConnectionInfo("src", "postgres", host="db.example.com", port=5432, schema="drill_shop_0123abcd")
    assert targets_source(source, other_server, "DRILL_shop_0123abcd")


def test_another_database_on_the_source_server_is_the_source():
    same_server = ConnectionInfo("tgt", "postgres", host="db.example.com", port=5432, schema="postgres")
    assert targets_source(SOURCE, same_server, "drill_shop_0123abcd")


def test_the_source_server_under_another_address_is_refused_by_its_identity():
    alias = ConnectionInfo("tgt", "postgres", host="10.0.0.5", port=6432, schema="postgres")
    engine = StateEngine("absent", identities={"src": "postgres:7715", "tgt": "postgres:7715"})
    with pytest.raises(RestoreRefused, match="is the source database's server"):
        check_target(engine, alias, "drill_shop_0123abcd", overwrite=True, source=SOURCE, database_id="shop")
    assert engine.asked == []  # refused before the target's state was even read


def test_a_source_that_cannot_be_reached_is_judged_by_host_and_port(caplog):
    engine = StateEngine("absent", identities={"tgt": "postgres:2"})
    assert check_target(engine, DRILL, "drill_shop_0123abcd", overwrite=True, source=SOURCE) == "absent"
    assert "deciding by host and port" in caplog.text
    with pytest.raises(RestoreRefused):
        check_target(engine, SOURCE.with_schema("postgres"), "drill_shop_0123abcd", overwrite=True, source=SOURCE)


def test_loopback_spellings_are_one_host():
    source = ConnectionInfo("src", "mysql", host="127.0.0.1", port=3306, schema="shopdb")
    target = ConnectionInfo("tgt", "mysql", host="localhost", port=None, schema="shopdb")
    assert targets_source(source, target, "drill_shopdb_0123abcd")


# --- check_target: the decision every restore goes through -------------------------------------


@pytest.mark.parametrize("state", ["absent", "empty"])
def test_absent_or_empty_targets_may_be_written(state):
    engine = StateEngine(state)
    assert check_target(engine, DRILL, "restored", overwrite=False) == state
    assert engine.asked == [("tgt", "restored")]


def test_a_non_empty_target_is_refused_without_overwrite_in_the_one_wording():
    with pytest.raises(RestoreRefused) as refused:
        check_target(StateEngine("non_empty"), DRILL, "restored", overwrite=False, database_id="shop", backup_id="b1")
    assert refused.value.exit_code == 7
    assert str(refused.value) == str(
        RestoreRefused.not_empty("restored", DRILL.describe(), database_id="shop", backup_id="b1")
    )
    assert "--overwrite" in str(refused.value) and refused.value.backup_id == "b1"


def test_overwrite_allows_a_non_empty_target():
    assert check_target(StateEngine("non_empty"), DRILL, "restored", overwrite=True) == "non_empty"


def test_a_target_that_is_the_source_is_refused_even_with_overwrite_before_it_is_looked_at():
    engine = StateEngine("absent")
    with pytest.raises(RestoreRefused, match="is the source database"):
        check_target(engine, SOURCE, "shop", overwrite=True, source=SOURCE, database_id="shop")
    assert engine.asked == []


# --- names the server keeps for itself, names it would cut ---------------------------------------


@pytest.mark.parametrize(
    ("kind", "name"),
    [
        ("postgres", "template0"),
        ("postgres", "template1"),
        ("postgres", "postgres"),
        ("postgres", "Postgres"),
        ("mysql", "mysql"),
        ("mysql", "sys"),
        ("mysql", "information_schema"),
        ("mysql", "PERFORMANCE_SCHEMA"),
    ],
)
def test_templates_and_maintenance_databases_are_refused_even_with_overwrite(kind, name):
    engine = StateEngine("empty", kind=kind)
    with pytest.raises(RestoreRefused, match="belongs to the server") as refused:
        check_target(engine, DRILL, name, overwrite=True, database_id="shop")
    assert refused.value.exit_code == 7 and engine.asked == []


def test_the_connections_own_maintenance_database_is_refused_too():
    admin = ConnectionInfo("tgt", "postgres", host="drill.example.com", extra={"maintenance_database": "ops"})
    with pytest.raises(RestoreRefused, match="belongs to the server"):
        check_target(StateEngine("empty"), admin, "ops", overwrite=True)


@pytest.mark.parametrize(
    ("kind", "name", "refused"),
    [
        ("postgres", "a" * 63, False),
        ("postgres", "a" * 64, True),
        ("postgres", "é" * 32, True),  # 64 bytes in UTF-8: PostgreSQL counts bytes
        ("postgres", "é" * 31 + "a", False),
        ("mysql", "a" * 64, False),
        ("mysql", "é" * 64, False),  # MySQL counts characters
        ("mysql", "a" * 65, True),
    ],
)
def test_names_longer_than_the_server_keeps_are_refused_before_anything_is_looked_at(kind, name, refused):
    engine = StateEngine("absent", kind=kind)
    if not refused:
        assert check_target(engine, DRILL, name, overwrite=True) == "absent"
        return
    with pytest.raises(RestoreRefused, match="long; the server keeps") as info:
        check_target(engine, DRILL, name, overwrite=True, database_id="shop")
    assert info.value.exit_code == 7 and engine.asked == []


# --- --target: a connection id, never a password in argv ----------------------------------------


def test_a_target_url_with_a_password_is_refused_without_echoing_it(tmp_path):
    svc = services(tmp_path, {"src": SOURCE})
    with pytest.raises(ConfigError) as refused:
        target_connection(svc, "postgres://restore:s3cr3t-pw@drill.example.com:5432/postgres")
    message = str(refused.value)
    assert refused.value.exit_code == 2 and "s3cr3t-pw" not in message
    assert "connection id" in message and "AIRFLOW_CONN_" in message


def test_a_target_url_without_a_password_and_a_connection_id_are_accepted(tmp_path):
    svc = services(tmp_path, {"src": SOURCE, "tgt": DRILL})
    assert target_connection(svc, "tgt") == DRILL
    inline = target_connection(svc, "postgres://restore@drill.example.com:5432/postgres")
    assert inline.host == "drill.example.com" and inline.password is None


# --- the drill's target, the DAG's parameters ---------------------------------------------------


def test_drill_target_is_the_configured_drill_server(tmp_path):
    svc = services(tmp_path, {"src": SOURCE, "tgt": DRILL}, restore_target_conn_id="tgt")
    target = drill_target(svc, "shop", "drill_shop_0123abcd", engine=StateEngine("absent"))
    assert target.server == DRILL and target.source == SOURCE
    assert target.conn.schema == "drill_shop_0123abcd"


def test_drill_target_given_explicitly_wins_and_is_refused_when_it_is_the_source(tmp_path):
    svc = services(tmp_path, {"src": SOURCE, "tgt": DRILL}, restore_target_conn_id="tgt")
    with pytest.raises(RestoreRefused, match="is the source database") as refused:
        drill_target(svc, "shop", "drill_shop_0123abcd", target_conn_id="src", engine=StateEngine("absent"))
    assert refused.value.database == "shop" and "--target" in str(refused.value)


def test_a_drill_without_a_drill_server_is_a_config_error(tmp_path):
    svc = services(tmp_path, {"src": SOURCE})
    with pytest.raises(ConfigError, match="restore_target_conn_id"):
        drill_target(svc, "shop", "drill_shop_0123abcd", engine=StateEngine("absent"))


def test_a_drill_refuses_a_scratch_name_it_would_not_drop(tmp_path):
    svc = services(tmp_path, {"src": SOURCE, "tgt": DRILL}, restore_target_conn_id="tgt")
    with pytest.raises(RestoreRefused, match="not a scratch database name"):
        drill_target(svc, "shop", "orders", engine=StateEngine("absent"))


def test_dag_parameters_left_blank_mean_the_drill_server_and_the_scratch(tmp_path):
    svc = services(tmp_path, {"src": SOURCE, "tgt": DRILL}, restore_target_conn_id="tgt")
    assert restore_target(svc, "shop", target_conn_id="None", target_database=" ", scratch="drill_x") == (
        DRILL,
        "drill_x",
    )
    assert restore_target(svc, "shop", target_conn_id=" src ", target_database="restored_shop", scratch="drill_x") == (
        SOURCE,
        "restored_shop",
    )


def test_dag_parameters_without_any_target_connection_are_a_config_error(tmp_path):
    svc = services(tmp_path, {"src": SOURCE})
    with pytest.raises(ConfigError, match="no target connection"):
        restore_target(svc, "shop", target_conn_id=None, target_database=None, scratch="drill_x")


def test_a_restore_interrupted_while_its_target_is_prepared_counts_as_having_written_it():
    # The engine creates the database before its tool starts: an interrupt in between must
    # still lead the restore to drop what it created (``_unusable_target``), so the sink says
    # "started" from the moment the restore is opened, not once it is open.
    import signal
    from contextlib import ExitStack

    from restorable.commands.restore import _StartOnFirstWrite
    from restorable.exceptions import Interrupted

    def preparing_then_interrupted():
        raise Interrupted(signal.SIGTERM)

    with ExitStack() as stack:
        sink = _StartOnFirstWrite(preparing_then_interrupted, stack)
        assert not sink.started
        with pytest.raises(Interrupted):
            sink.write(b"first plain bytes")
        assert sink.started
