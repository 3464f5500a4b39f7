"""A backup in flight holds a lease, and the lifecycle never aborts a live upload (issue 17)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from restorable.commands.backup import run_backup
from restorable.lifecycle.apply import enforce, scan_bucket
from restorable.repository.manifest import utcnow

pytestmark = pytest.mark.integration


def test_a_backup_holds_a_lease_while_it_streams_and_the_cleaner_spares_a_live_one(pg_cli_chain):
    chain = pg_cli_chain
    store = chain.services.store()
    catalog = chain.services.catalog()
    seen: list[bool] = []
    backup = run_backup(
        chain.services,
        "shop",
        backup_id="20261125T020000Z-0000beef",
        on_progress=lambda _: seen.append(store.exists(catalog.layout.lease_key("shop", "20261125T020000Z-0000beef"))),
    )
    assert seen and all(seen), "the lease exists while the dump streams"
    assert not store.exists(catalog.layout.lease_key("shop", backup.backup_id)), "deleted on commit"

    # An upload in flight: data written, no manifest yet, an unexpired lease.
    live = "20261125T030000Z-0000cafe"
    store.put_bytes(catalog.layout.data_key("shop", live, "dump"), b"part of a dump")
    catalog.write_lease("shop", live)
    report = enforce(
        store,
        scan_bucket(store, chain.services.config.storage.prefix),
        {},
        utcnow(),
        dry_run=False,
        orphan_min_age=timedelta(0),
    )
    assert not report.orphans_removed and store.exists(catalog.layout.data_key("shop", live, "dump"))
