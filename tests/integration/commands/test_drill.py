"""``restorable drill`` on the devstack chain: a pass, a tampered manifest, a target that is the source."""

from __future__ import annotations

import json
import subprocess

import pytest

from devstack.chain import write_tampered_copy

pytestmark = pytest.mark.integration


@pytest.fixture
def chain(pg_cli_chain):
    return pg_cli_chain


def cli(chain, *args: str) -> subprocess.CompletedProcess:
    return chain.run_cli(*args)


def scratch_databases(server) -> list[str]:
    return [r[0] for r in server.query("SELECT datname FROM pg_database WHERE datname LIKE 'drill_%'")]


def drill_records(chain, backup_id: str) -> list[dict]:
    catalog = chain.services.catalog("restore")
    return [r for r in catalog.verifications("shop", backup_id) if r["kind"] == "drill"]


def backed_up_and_verified(chain) -> dict:
    backup = cli(chain, "--json", "backup", "shop")
    assert backup.returncode == 0, backup.stderr
    verify = cli(chain, "verify", "shop", "latest")
    assert verify.returncode == 0, verify.stderr
    return json.loads(backup.stdout)


def test_drill_of_the_latest_backup_passes_records_evidence_and_drops_the_scratch(chain, pg_target_server):
    summary = backed_up_and_verified(chain)
    drill = cli(chain, "drill", "shop", "latest", "--json")
    assert drill.returncode == 0, drill.stderr
    result = json.loads(drill.stdout)
    assert result["ok"] and result["backup_id"] == summary["backup_id"] and result["differences"] == []
    assert result["dropped"] and result["scratch_database"].startswith("drill_shop_")
    assert result["evidence"]["expected_rows"] == result["evidence"]["found_rows"] == summary["rows"]
    (record,) = drill_records(chain, summary["backup_id"])
    assert record["ok"] and record["hashes"]["verified"] and record["run"]["by"] == "cli"
    assert set(record["phases_seconds"]) == {"pick", "restore", "validate"}
    # amcheck ran on the restored copy before Great Expectations, and its figures are evidence.
    integrity = record["validation"]["integrity"]
    assert integrity["ok"] and integrity["checked"]["indexes"] > 0 and integrity["method"].startswith("amcheck")
    assert record["scratch"]["database"] == result["scratch_database"]
    assert scratch_databases(pg_target_server) == []

    table = cli(chain, "drill", "shop")  # the table for people, with a scratch name of its own
    assert table.returncode == 0, table.stderr
    assert table.stdout.startswith("drill of shop: PASSED") and "hashes         verified" in table.stdout
    assert len(drill_records(chain, summary["backup_id"])) == 2
    assert scratch_databases(pg_target_server) == []


def test_a_manifest_whose_count_was_raised_fails_the_drill_naming_the_table(chain, pg_target_server):

    summary = backed_up_and_verified(chain)
    catalog = chain.services.catalog("backup")
    good = catalog.read_manifest("shop", summary["backup_id"])
    table = sorted(good.metadata.row_counts)[0]
    expected = good.metadata.row_counts[table] + 1

    def raise_a_count(data: dict) -> None:
        data["metadata"]["row_counts"][table] = expected

    tampered = write_tampered_copy(catalog, good, raise_a_count)
    assert cli(chain, "verify", "shop", tampered.backup_id).returncode == 0  # same object: the checksum passes

    drill = cli(chain, "drill", "shop", "latest")
    assert drill.returncode == 6, drill.stderr
    assert f"{table}: expect_table_row_count_to_equal expected {expected}, found {expected - 1}" in drill.stderr
    assert "FAILED at validate" in drill.stdout
    (record,) = drill_records(chain, tampered.backup_id)
    assert record["ok"] is False and record["failed_step"] == "validate" and table in record["error"]
    assert drill_records(chain, good.backup_id) == []
    assert scratch_databases(pg_target_server) == []


def test_a_drill_target_that_is_the_source_is_refused_before_anything_is_written(chain, pg_server, pg_target_server):
    summary = backed_up_and_verified(chain)
    refused = cli(chain, "drill", "shop", "latest", "--target", "src")
    assert refused.returncode == 7, refused.stderr
    assert "is the source database" in refused.stderr and "--target" in refused.stderr
    assert drill_records(chain, summary["backup_id"]) == []
    assert scratch_databases(pg_server) == scratch_databases(pg_target_server) == []
