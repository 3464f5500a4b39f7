"""A drill on a host that may only read (a copy, during an incident) passes without a record; the
drill DAG, whose proof is the record, still fails such a pass."""

from __future__ import annotations

import pytest

from restorable.commands.drill import drill_verdict
from restorable.exceptions import ValidationFailed


def test_a_pass_without_a_record_fails_the_dags_verdict():
    passed = {"ok": True, "backup_id": "20261204T000000Z-00000000", "record_key": "restorable/shop/x.json"}
    assert drill_verdict(passed, "shop") is passed
    with pytest.raises(ValidationFailed, match="the drill passed but its evidence was not recorded"):
        drill_verdict({**passed, "record_key": None}, "shop")
