"""Base backups and their WAL under retention: every moment of the PITR window stays reachable.

Hypothesis draws base backups (some incomplete, locked or unverified), a retention policy and a
pitr_window; the archive holds every segment from the oldest backup's start to now. After the plan
and the WAL pruning, every moment of the window must have a kept, complete base backup that ended
at or before it, with every segment from that backup's start to the archive's newest still there.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from hypothesis import given
from hypothesis import strategies as st

from restorable.lifecycle.plan import BackupSummary, plan
from restorable.lifecycle.policy import policy_from_config
from restorable.lifecycle.wal_plan import wal_not_needed
from restorable.wal.names import Segment, parse_segment
from tests.unit.lifecycle.test_plan import NOW, PROPERTY, policy_strategy

#: Segments written per hour of the drawn history (the archive grows with time).
PER_HOUR = 4


def _segment_at(age_minutes: int, span_minutes: int) -> int:
    return (span_minutes - age_minutes) * PER_HOUR // 60


_BASES = st.lists(st.tuples(st.integers(0, 40 * 24 * 60), st.booleans(), st.integers(0, 9)), min_size=0, max_size=25)


def _history(rows):
    span = max([age for age, _, _ in rows], default=0) + 60
    bases = [
        BackupSummary(
            backup_id=f"p{i:03d}",
            database="shop",
            created_at=NOW - timedelta(minutes=age),
            verified=verified,
            complete=incomplete != 0,
            kind="physical",
            wal_start=Segment(1, _segment_at(age, span)).name(),
        )
        for i, (age, verified, incomplete) in enumerate(rows)
    ]
    archive = [Segment(1, n).name() for n in range(0, _segment_at(0, span) + 1)] + ["00000002.history"]
    return bases, archive


@PROPERTY
@given(rows=_BASES, policy=policy_strategy(), window_days=st.integers(1, 30))
def test_every_moment_of_the_window_stays_reachable_after_plan_and_pruning(rows, policy, window_days):
    bases, archive = _history(rows)
    policy = replace(policy, pitr_window=timedelta(days=window_days))
    decisions = {d.backup_id: d for d in plan(bases, policy, NOW)}
    kept = [b for b in bases if decisions[b.backup_id].action != "delete"]
    doomed, _ = wal_not_needed(archive, [b.wal_start for b in kept])
    left = set(archive) - set(doomed)
    assert "00000002.history" in left
    complete = sorted((b for b in kept if b.complete), key=lambda b: b.created_at)
    window_start = NOW - policy.pitr_window
    if any(b.complete and b.created_at <= window_start for b in bases):
        # The window's first moment: some kept base ended at or before it.
        assert complete and complete[0].created_at <= window_start
    for base in complete:
        first = parse_segment(base.wal_start).number
        needed = [Segment(1, n).name() for n in range(first, len(archive) - 1)]
        assert needed and all(name in left for name in needed)
    # Every complete base inside the window is kept.
    for base in bases:
        if base.complete and base.created_at >= window_start:
            assert decisions[base.backup_id].action != "delete"


def test_dumps_and_base_backups_are_planned_apart():
    dump = BackupSummary("d1", "shop", NOW - timedelta(days=1), verified=True)
    base = BackupSummary("p1", "shop", NOW - timedelta(days=2), verified=True, kind="physical", wal_start="0" * 24)
    decisions = {d.backup_id: d for d in plan([dump, base], policy_from_config({"keep_last": 1}, where="t"), NOW)}
    assert decisions["d1"].action == "keep" and decisions["p1"].action == "keep"  # one of each kind


def test_without_a_kept_base_backup_no_wal_is_deleted():
    assert wal_not_needed(["000000010000000000000001"], []) == ([], None)
    doomed, oldest = wal_not_needed(
        ["000000010000000000000001", "000000010000000000000001.00000028.backup", "000000010000000000000002"],
        ["000000010000000000000002"],
    )
    assert doomed == ["000000010000000000000001", "000000010000000000000001.00000028.backup"]
    assert oldest == "000000010000000000000002"
