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
    targets_source,
)
from restorable.config import load_config
from restorable.connections import ConnectionInfo
from restorable.exceptions import ConfigError, RestoreRefused
from restorable.services import Services

SOURCE = ConnectionInfo("src", "postgres", host="db.example.com", port=5432, login="backup", schema="shop")
DRILL = ConnectionInfo("tgt", "postgres", host="drill.example.com", port=5432, login="drill", schema="postgres")


class StateEngine:
    """Reports a fixed target state and remembers what it was asked about."""

    def __init__(self, state: str) -> None:
        self.state = state
        self.asked: list[tuple[str, str]] = []

    def target_state(self, conn: ConnectionInfo, database: str) -> str:
        self.asked.append((conn.conn_id, database))
        return self.state


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
    return Services(load_config(path, {}), resolve=lambda conn_id: connections[conn_id])


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
    same_server = ConnectionInfo("tgt", "postgres", host="db.example.com", port=5432, schema="postgres")
    source = ConnectionInfo("src", "postgres", host="db.example.com", port=5432, schema="drill_shop_0123abcd")
    assert targets_source(source, same_server, "DRILL_shop_0123abcd")
    assert not targets_source(SOURCE, same_server, "drill_shop_0123abcd")  # same server, other database


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


# --- the drill's target, the DAG's parameters ---------------------------------------------------


def test_drill_target_is_the_configured_drill_server(tmp_path):
    svc = services(tmp_path, {"src": SOURCE, "tgt": DRILL}, restore_target_conn_id="tgt")
    target = drill_target(svc, "shop", "drill_shop_0123abcd")
    assert target.server == DRILL and target.source == SOURCE
    assert target.conn.schema == "drill_shop_0123abcd"


def test_drill_target_given_explicitly_wins_and_is_refused_when_it_is_the_source(tmp_path):
    svc = services(tmp_path, {"src": SOURCE, "tgt": DRILL}, restore_target_conn_id="tgt")
    with pytest.raises(RestoreRefused, match="is the source database") as refused:
        drill_target(svc, "shop", "drill_shop_0123abcd", target_conn_id="src")
    assert refused.value.database == "shop" and "--target" in str(refused.value)


def test_a_drill_without_a_drill_server_is_a_config_error(tmp_path):
    svc = services(tmp_path, {"src": SOURCE})
    with pytest.raises(ConfigError, match="restore_target_conn_id"):
        drill_target(svc, "shop", "drill_shop_0123abcd")


def test_a_drill_refuses_a_scratch_name_it_would_not_drop(tmp_path):
    svc = services(tmp_path, {"src": SOURCE, "tgt": DRILL}, restore_target_conn_id="tgt")
    with pytest.raises(RestoreRefused, match="not a scratch database name"):
        drill_target(svc, "shop", "orders")


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
