"""``restorable lifecycle plan|apply|audit [--fix]`` on the devstack chain: the core enforce_lifecycle runs."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from devstack.chain import make_chain
from devstack.stack import harden_bucket
from restorable.commands.backup import run_backup
from restorable.commands.lifecycle import run_audit
from restorable.commands.verify import verify_backup
from restorable.services import Services

pytestmark = pytest.mark.integration


def test_a_bare_bucket_fails_the_audit_fix_sets_it_and_the_demo_bucket_passes(pg_cli_chain, seaweed, bucket):
    chain = pg_cli_chain
    bare = chain.run_cli("lifecycle", "audit")
    assert bare.returncode == 5 and "drifted from its expected settings" in bare.stderr
    assert "encryption expected" in bare.stderr and "Traceback" not in bare.stderr

    fixed = chain.run_cli("--json", "lifecycle", "audit", "--fix")
    assert fixed.returncode == 0, fixed.stderr
    assert {d["setting"] for d in json.loads(fixed.stdout)["drifts"] if d["fixed"]} >= {"encryption"}
    again = chain.run_cli("lifecycle", "audit")
    assert again.returncode == 0 and "as expected" in again.stdout, again.stdout + again.stderr

    # The demo stack makes its bucket the same way (devstack.stack.harden_bucket), so it passes its own audit.
    demo = "demo-" + bucket[-20:]
    seaweed.create_bucket(demo, object_lock=True, versioning=True)
    try:
        harden_bucket(seaweed, demo)
        config = replace(chain.services.config, storage=replace(chain.services.config.storage, bucket=demo))
        assert run_audit(Services(config, resolve=chain.services.resolve), fix=False) == []
    finally:
        seaweed.delete_bucket(demo)


def test_plan_changes_nothing_and_apply_deletes_what_the_policy_lets_go(
    tmp_path, pg_sample, pg_target_server, seaweed, bucket
):
    chain = make_chain(
        tmp_path,
        source=pg_sample,
        engine="postgres",
        s3=seaweed.connection(),
        bucket=bucket,
        target=pg_target_server.connection("postgres"),
        retention={"keep_last": 1},
    )
    ids = [run_backup(chain.services, "shop").backup_id for _ in range(3)]
    for backup_id in ids:  # retention lets a backup go only once a newer one is verified
        verify_backup(chain.services, "shop", backup_id)
    catalog = chain.services.catalog()

    plan = chain.run_cli("--json", "lifecycle", "plan")
    assert plan.returncode == 0, plan.stderr
    planned = json.loads(plan.stdout)
    # ids of one second sort by their hash, not by time: compare as sets (ids[-1] is the newest).
    assert planned["dry_run"] and {o["backup_id"] for o in planned["deleted"]} == set(ids[:2])
    assert catalog.backup_ids("shop") == sorted(ids)  # a plan changes nothing

    applied = chain.run_cli("lifecycle", "apply")
    assert applied.returncode == 0, applied.stderr
    assert "lifecycle (did)" in applied.stdout and "deleted 2" in applied.stdout
    assert catalog.backup_ids("shop") == ids[-1:]
