"""The drill logs in as the application's role on the restored copy and runs its smoke queries."""

from __future__ import annotations

import json

import pytest

from devstack.chain import make_chain
from restorable.connections import ConnectionInfo

pytestmark = pytest.mark.integration

APP_PASSWORD = "app-Pässword-42"


@pytest.fixture
def app_role(pg_target_server):
    """The application's login role on the drill server, a member of the sample's reader role."""
    pg_target_server.execute(
        "DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'shop_reader') THEN "
        "CREATE ROLE shop_reader NOLOGIN; END IF; END $$"
    )
    pg_target_server.execute("DROP ROLE IF EXISTS shop_app")
    pg_target_server.execute(f"CREATE ROLE shop_app LOGIN PASSWORD '{APP_PASSWORD}' IN ROLE shop_reader")
    yield "shop_app"
    pg_target_server.execute("DROP ROLE IF EXISTS shop_app")


def chain_with(tmp_path, pg_sample, pg_target_server, seaweed, bucket, queries):
    tmp_path.mkdir(exist_ok=True)
    return make_chain(
        tmp_path,
        source=pg_sample,
        engine="postgres",
        s3=seaweed.connection(),
        bucket=bucket,
        target=pg_target_server.connection("postgres"),
        drill={"app_role": "shop_app", "app_conn_id": "shop_app", "smoke_queries": queries},
        extra_connections={"shop_app": ConnectionInfo("shop_app", "postgres", password=APP_PASSWORD)},
    )


def test_the_app_logs_in_and_its_queries_work_then_a_missing_grant_fails_the_drill(
    tmp_path, pg_sample, pg_target_server, seaweed, bucket, app_role
):
    good = ["SELECT id, email FROM sales.customers LIMIT 1", {"sql": "SELECT 1 WHERE false", "expect_rows": False}]
    chain = chain_with(tmp_path / "good", pg_sample, pg_target_server, seaweed, bucket, good)
    assert chain.run_cli("backup", "shop").returncode == 0
    drill = chain.run_cli("drill", "shop", "latest", "--json")
    assert drill.returncode == 0, drill.stderr
    (record,) = [
        r
        for r in chain.services.catalog().verifications("shop", json.loads(drill.stdout)["backup_id"])
        if r["kind"] == "drill"
    ]
    app = record["validation"]["app_check"]
    assert app["ok"] and app["role"] == "shop_app" and len(app["queries"]) == 2
    assert APP_PASSWORD not in drill.stdout + drill.stderr

    # The reader role may read four columns of inventory.products, not all of them.
    bad = ["SELECT * FROM inventory.products LIMIT 1", "SELECT 1 FROM sales.customers WHERE false"]
    chain = chain_with(tmp_path / "bad", pg_sample, pg_target_server, seaweed, bucket, bad)
    assert chain.run_cli("backup", "shop").returncode == 0  # a chain of its own has a key of its own
    failed = chain.run_cli("drill", "shop", "latest")
    assert failed.returncode == 6, failed.stderr
    last = failed.stderr.strip().splitlines()[-1]
    assert "app: query 'SELECT * FROM inventory.products LIMIT 1' failed as 'shop_app': permission denied" in last
    assert "returned no rows as 'shop_app'" in last
    assert APP_PASSWORD not in failed.stdout + failed.stderr


def test_a_role_that_cannot_log_in_fails_the_drill_naming_it(tmp_path, pg_sample, pg_target_server, seaweed, bucket):
    pg_target_server.execute("DROP ROLE IF EXISTS shop_app")  # never created on the drill server
    chain = chain_with(tmp_path, pg_sample, pg_target_server, seaweed, bucket, ["SELECT 1"])
    assert chain.run_cli("backup", "shop").returncode == 0
    failed = chain.run_cli("drill", "shop", "latest")
    assert failed.returncode == 6, failed.stderr
    assert "the application role 'shop_app' cannot log in" in failed.stderr.strip().splitlines()[-1]
