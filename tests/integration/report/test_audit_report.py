"""The audit evidence report of a period with a failed backup and a failed drill, made for real.

The period is three hours of an hourly schedule (drills at half past). Runs carry their logical dates
as Airflow's do, so the report matches them to the schedule: 00:00 backed up and verified, its drill
at 00:30 passes; 01:00's backup fails against an unreachable source (nothing is committed); the drill
at 01:30 drills a backup whose manifest was altered, and its validation fails; 02:00 backed up, its
drill at 02:30 passes. Backups: 2 of 3 scheduled succeeded; drills: 2 of 3 passed.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
import yaml

from devstack.chain import write_tampered_copy
from devstack.ports import free_port
from restorable.commands.backup import run_backup
from restorable.commands.drill import run_drill
from restorable.commands.verify import verify_backup
from restorable.config import load_config
from restorable.exceptions import RestorableError
from restorable.repository.manifest import iso, new_backup_id
from restorable.services import Services

pytestmark = pytest.mark.integration

START = datetime(2026, 11, 2, 0, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)


def airflow_run(dag_id: str, logical: datetime) -> dict:
    """What ``run_info`` records for a scheduled run."""
    run_id = f"scheduled__{iso(logical)}"
    return {"by": "airflow", "dag_id": dag_id, "run_id": run_id, "logical_date": iso(logical), "try_number": 1}


@pytest.fixture
def hourly(pg_cli_chain):
    """The chain's config with an hourly backup and a drill at half past every hour."""
    data = yaml.safe_load(pg_cli_chain.config_path.read_text())
    data["databases"][0].update(schedule="0 * * * *", drill_schedule="30 * * * *")
    data["report"] = {"backup_success": 99.5, "drill_pass": 100, "rto": "10m"}
    pg_cli_chain.config_path.write_text(yaml.safe_dump(data))
    services = Services(load_config(pg_cli_chain.config_path, pg_cli_chain.env), resolve=pg_cli_chain.services.resolve)
    return pg_cli_chain, services


def backup_at(services: Services, slot: datetime) -> str:
    run = airflow_run("backup__shop", slot)
    manifest = run_backup(services, "shop", backup_id=new_backup_id(slot, f"backup__shop/{run['run_id']}"), run=run)
    verify_backup(services, "shop", manifest.backup_id)
    return manifest.backup_id


def drill_at(services: Services, slot: datetime, backup_id: str, identity: str) -> bool:
    run = airflow_run("restore_drill__shop", slot)
    return run_drill(services, "shop", backup_id, run=run, identity=identity, verified_only=False).ok


def test_a_failed_backup_and_a_failed_drill_are_listed_with_their_fixes_and_rates(hourly, tmp_path):
    chain, services = hourly
    first = backup_at(services, START)
    assert drill_at(services, START + HOUR / 2, first, chain.identity)

    # 01:00: the source is unreachable; the backup fails and commits nothing.
    closed = free_port()
    down = Services(
        services.config,
        resolve=lambda c: replace(services.resolve(c), port=closed) if c == "src" else services.resolve(c),
    )
    with pytest.raises(RestorableError):
        backup_at(down, START + HOUR)
    assert services.catalog().backup_ids("shop") == [first]

    # 01:30: the drill restores a backup whose manifest promises one row more than was dumped.
    catalog = services.catalog()
    good = catalog.read_manifest("shop", first)
    table = sorted(good.metadata.row_counts)[0]
    tampered = write_tampered_copy(
        catalog, good, lambda d: d["metadata"]["row_counts"].update({table: good.metadata.row_counts[table] + 1})
    )
    verify_backup(services, "shop", tampered.backup_id)  # the same bytes: its checksum passes
    assert not drill_at(services, START + HOUR * 1.5, tampered.backup_id, chain.identity)

    last = backup_at(services, START + 2 * HOUR)
    assert drill_at(services, START + HOUR * 2.5, last, chain.identity)

    period = ["--from", "2026-11-02T00:00Z", "--to", "2026-11-02T03:00Z"]
    done = chain.run_cli("report", *period, "--format", "json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    (db,) = report["databases"]
    assert db["backups"] == {
        "scheduled": 3,
        "taken": 3,  # 00:00, its altered copy (the same run), 02:00
        "verified": 2,  # the altered copy failed its drill
        "succeeded": 2,
        "success_rate": round(2 / 3, 6),
        "objective": 0.995,
        "met": False,
        "damaged": [],
    }
    assert db["drills"] == {
        "scheduled": 3,
        "run": 3,
        "passed": 2,
        "pass_rate": round(2 / 3, 6),
        "objective": 1.0,
        "met": False,
    }
    failed_backup, failed_drill = db["failures"]
    assert failed_backup["kind"] == "backup" and failed_backup["at"] == "2026-11-02T01:00:00Z"
    assert failed_backup["fixed_by"]["backup_id"] == last and failed_backup["fixed_by"]["at"] == "2026-11-02T02:00:00Z"
    assert failed_backup["runbook"].endswith("backup-failed.md")
    assert failed_drill["kind"] == "validation" and failed_drill["at"] == "2026-11-02T01:30:00Z"
    assert tampered.backup_id in failed_drill["what"] and table in failed_drill["what"]
    assert failed_drill["fixed_by"]["at"] == "2026-11-02T02:30:00Z"
    assert failed_drill["runbook"].endswith("validation-mismatch.md")
    rows = {r["scheduled_for"]: r for r in db["drill_runs"]}
    assert [rows[k]["ok"] for k in sorted(rows)] == [True, False, True]
    passed = rows["2026-11-02T02:30:00Z"]
    assert passed["rto_seconds"] > 0 and passed["rto_met"] and passed["rto_objective_seconds"] == 600
    assert passed["rpo_seconds"] is not None and passed["rpo_met"]  # seconds since the backup before it
    assert failed_drill["evidence"] in db["evidence_keys"] and passed["key"] in db["evidence_keys"]
    (recipient,) = db["encryption"]
    assert recipient["recipient"] == chain.recipient and recipient["backups_in_period"] == 3
    assert report["totals"]["failures"] == 2 and chain.identity not in done.stdout

    html = chain.run_cli("report", *period, "--format", "html")
    assert html.returncode == 0, html.stderr
    assert "no backup of shop was committed for the run scheduled at 2026-11-02T01:00:00Z" in html.stdout
    assert f"drill of backup {tampered.backup_id} failed" in html.stdout

    pdf_path = tmp_path / "report.pdf"
    pdf = chain.run_cli("report", *period, "--format", "pdf", "--out", str(pdf_path), "--store")
    assert pdf.returncode == 0, pdf.stderr
    assert "2/3 succeeded, drills 2/3 passed, 2 failure(s)" in pdf.stderr
    stored = services.catalog().layout.report_key(START, START + 3 * HOUR, "pdf")
    assert services.store().get_bytes(stored) == pdf_path.read_bytes()
    text, png = first_page(pdf_path, tmp_path / "audit-report.png")
    for headline in ("Backup audit evidence report", "2 of 3 = 66.7 %", "99.5 %", "100.0 %", "NOT met"):
        assert headline in text, headline
    if os.environ.get("RESTORABLE_SCREENSHOTS"):  # set to docs/screenshots to refresh the committed image
        shutil.copy(png, os.path.join(os.environ["RESTORABLE_SCREENSHOTS"], "audit-report.png"))


def first_page(pdf_path, png_path):
    """The first page's text, and the page rendered to PNG (PDFium, from the pypdfium2 wheel)."""
    import pypdfium2

    document = pypdfium2.PdfDocument(str(pdf_path))
    page = document[0]
    text = page.get_textpage().get_text_range()
    image = page.render(scale=1.5).to_pil()
    image.save(png_path)
    assert image.width > 800 and len(set(image.convert("L").getdata())) > 2  # drawn, not blank
    document.close()
    return text, png_path
