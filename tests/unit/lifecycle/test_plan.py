"""Retention planning: properties (hypothesis) and the reasons people read.

Policy parsing is tested here too (``restorable.lifecycle.policy`` exists to feed ``plan``).
"""

from __future__ import annotations

import random
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from restorable.exceptions import ConfigError
from restorable.lifecycle.plan import BackupSummary, Decision, plan
from restorable.lifecycle.policy import (
    DEFAULT_STORAGE_CLASSES,
    RetentionPolicy,
    parse_duration,
    policy_from_config,
)

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
CLASSES = ["STANDARD", "STANDARD_IA", "GLACIER_IR", None, "DEEP_ARCHIVE"]
WHERE = "include/restorable.yaml: databases[shop].retention"


# --------------------------------------------------------------------------- strategies


_LOCK = st.one_of(
    st.none(),
    st.integers(min_value=-30 * 24 * 60, max_value=60 * 24 * 60).map(lambda m: NOW + timedelta(minutes=m)),
)
_BACKUP_FIELDS = st.tuples(
    st.integers(min_value=-60, max_value=900 * 24 * 60),  # age in minutes (a little clock skew too)
    st.booleans(),  # verified
    st.sampled_from(CLASSES),
    _LOCK,
    st.integers(0, 9),  # legal hold when 0
    st.integers(0, 9),  # incomplete when 0
)


def backups_strategy(*, max_size: int = 40, databases=("shop",)):
    def build(rows):
        return [
            BackupSummary(
                backup_id=f"b{index:04d}",
                database=databases[index % len(databases)],
                created_at=NOW - timedelta(minutes=age),
                verified=verified,
                size=index * 1000,
                storage_class=storage_class,
                retain_until=lock,
                legal_hold=hold == 0,
                complete=incomplete != 0,
            )
            for index, (age, verified, storage_class, lock, hold, incomplete) in enumerate(rows)
        ]

    return st.lists(_BACKUP_FIELDS, max_size=max_size).map(build)


@st.composite
def policy_strategy(draw) -> RetentionPolicy:
    config: dict = {}
    for name in ("keep_last", "keep_daily", "keep_weekly", "keep_monthly", "keep_yearly"):
        if draw(st.booleans()):
            config[name] = draw(st.integers(min_value=0, max_value=8))
    if draw(st.booleans()):
        config["keep_within"] = f"{draw(st.integers(1, 60))}d"
    min_days = draw(st.one_of(st.none(), st.integers(1, 20)))
    if min_days is not None:
        config["min_age"] = f"{min_days}d"
    if draw(st.booleans()):
        config["max_age"] = f"{draw(st.integers((min_days or 0) + 1, 800))}d"
    config["min_verified"] = draw(st.integers(1, 4))
    if draw(st.booleans()):
        hot = draw(st.integers(1, 100))
        warm = hot + draw(st.integers(1, 200))
        cold = warm + draw(st.integers(max(1, (min_days or 0) - warm + 1), 500))
        tiers = {"hot": f"{hot}d", "warm": f"{warm}d", "cold": f"{cold}d", "deleteExpired": draw(st.booleans())}
        if draw(st.booleans()):
            del tiers["warm"]
        config["tiers"] = tiers
    return policy_from_config(config, where=WHERE)


def by_id(decisions: list[Decision]) -> dict[str, Decision]:
    return {d.backup_id: d for d in decisions}


def deleted_ids(decisions: list[Decision]) -> set[str]:
    return {d.backup_id for d in decisions if d.action == "delete"}


def newest_first(backups):
    return sorted(backups, key=lambda b: (b.created_at, b.backup_id), reverse=True)


PROPERTY = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


# --------------------------------------------------------------------------- properties


@PROPERTY
@given(backups=backups_strategy(databases=("shop", "crm")), policy=policy_strategy())
def test_one_decision_per_backup_in_deterministic_order(backups, policy):
    decisions = plan(backups, policy, NOW)
    assert sorted(d.backup_id for d in decisions) == sorted(b.backup_id for b in backups)
    shuffled = list(backups)
    random.Random(4).shuffle(shuffled)
    assert plan(shuffled, policy, NOW) == decisions
    for decision in decisions:
        assert decision.action in ("keep", "transition", "delete")
        assert decision.reason.startswith(("kept: ", "deleted: ", "retained until "))
        assert (decision.target_storage_class is not None) == (decision.action == "transition")


@PROPERTY
@given(backups=backups_strategy(databases=("shop", "crm")), policy=policy_strategy())
def test_never_deletes_the_newest_verified_backup_of_a_database(backups, policy):
    decisions = by_id(plan(backups, policy, NOW))
    for database in ("shop", "crm"):
        verified = newest_first(b for b in backups if b.database == database and b.verified and b.complete)
        if verified:
            assert decisions[verified[0].backup_id].action != "delete"


@PROPERTY
@given(backups=backups_strategy(), policy=policy_strategy())
def test_keeps_the_min_verified_newest_verified_backups(backups, policy):
    decisions = by_id(plan(backups, policy, NOW))
    verified = newest_first(b for b in backups if b.verified and b.complete)
    for backup in verified[: policy.min_verified]:
        assert decisions[backup.backup_id].action != "delete"
    kept_verified = [b for b in verified if decisions[b.backup_id].action != "delete"]
    assert len(kept_verified) >= min(policy.min_verified, len(verified))


@PROPERTY
@given(backups=backups_strategy(), policy=policy_strategy())
def test_never_deletes_under_object_lock_or_legal_hold(backups, policy):
    decisions = by_id(plan(backups, policy, NOW))
    for backup in backups:
        if backup.legal_hold or (backup.retain_until and backup.retain_until > NOW):
            assert decisions[backup.backup_id].action != "delete", backup


@PROPERTY
@given(backups=backups_strategy(), policy=policy_strategy())
def test_never_deletes_unverified_backups_newer_than_the_newest_verified(backups, policy):
    decisions = by_id(plan(backups, policy, NOW))
    verified = newest_first(b for b in backups if b.verified and b.complete)
    for backup in backups:
        if not verified or (backup.created_at, backup.backup_id) > (
            verified[0].created_at,
            verified[0].backup_id,
        ):
            assert decisions[backup.backup_id].action != "delete"


@PROPERTY
@given(backups=backups_strategy(), policy=policy_strategy())
def test_never_deletes_younger_than_min_age_or_incomplete(backups, policy):
    decisions = by_id(plan(backups, policy, NOW))
    for backup in backups:
        young = policy.min_age is not None and NOW - backup.created_at < policy.min_age
        if young or not backup.complete:
            assert decisions[backup.backup_id].action != "delete"


@PROPERTY
@given(backups=backups_strategy(databases=("shop", "crm")), policy=policy_strategy())
def test_applying_the_plan_then_planning_again_deletes_nothing_more(backups, policy):
    first = plan(backups, policy, NOW)
    gone = deleted_ids(first)
    targets = {d.backup_id: d.target_storage_class for d in first if d.action == "transition"}
    remaining = [
        replace(b, storage_class=targets.get(b.backup_id, b.storage_class)) for b in backups if b.backup_id not in gone
    ]
    second = plan(remaining, policy, NOW)
    assert deleted_ids(second) == set()
    assert [d for d in second if d.action == "transition"] == []
    # And what the first plan kept, it still keeps for the same reasons.
    assert {d.backup_id: d.action for d in second} == {d.backup_id: "keep" for d in first if d.action != "delete"}


@PROPERTY
@given(
    backups=backups_strategy(),
    policy=policy_strategy(),
    later=st.integers(min_value=0, max_value=400 * 24),
)
def test_transitions_only_move_forward(backups, policy, later):
    if policy.tiers is None:
        return
    tiers = policy.tiers
    ranks = {t.storage_class: i for i, t in enumerate(tiers.tiers)}
    for now in (NOW, NOW + timedelta(hours=later)):
        for decision, backup in zip(plan(backups, policy, now), newest_first(backups), strict=True):
            assert decision.backup_id == backup.backup_id
            if decision.action != "transition":
                continue
            current = tiers.rank(backup.storage_class)
            assert current is not None
            assert ranks[decision.target_storage_class] > current
            assert not backup.legal_hold and not (backup.retain_until and backup.retain_until > now)
    # Age only grows, so the tier a backup belongs in never goes back.
    for backup in backups:
        early = tiers.tiers.index(tiers.tier_for_age(NOW - backup.created_at))
        late = tiers.tiers.index(tiers.tier_for_age(NOW + timedelta(hours=later) - backup.created_at))
        assert late >= early


@PROPERTY
@given(
    days=st.integers(min_value=1, max_value=60),
    keep_daily=st.integers(min_value=1, max_value=20),
    per_day=st.lists(st.integers(min_value=0, max_value=3), min_size=60, max_size=60),
)
def test_keep_daily_keeps_the_newest_backup_of_each_of_the_last_n_days(days, keep_daily, per_day):
    backups = []
    for day in range(days):
        for n in range(1 + per_day[day]):
            created = datetime(2026, 11, 24, 23, 0, tzinfo=UTC) - timedelta(days=day, hours=n)
            backups.append(BackupSummary(f"d{day:02d}n{n}", "shop", created, verified=True))
    policy = policy_from_config({"keep_daily": keep_daily}, where=WHERE)
    kept = {d.backup_id for d in plan(backups, policy, NOW) if d.action != "delete"}
    assert kept == {f"d{day:02d}n0" for day in range(min(days, keep_daily))}


def test_keep_daily_7_over_30_days_keeps_7_plus_the_protected():
    backups = [
        BackupSummary(f"day{i:02d}", "shop", NOW - timedelta(days=i, hours=1), verified=i >= 3) for i in range(30)
    ]
    # Not verified yet: day00..day02 (newer than the newest verified, day03): kept anyway.
    backups[20] = replace(backups[20], legal_hold=True)
    backups[25] = replace(backups[25], retain_until=NOW + timedelta(days=1))
    policy = policy_from_config({"keep_daily": 7}, where=WHERE)
    kept = sorted(d.backup_id for d in plan(backups, policy, NOW) if d.action != "delete")
    assert kept == [f"day{i:02d}" for i in range(7)] + ["day20", "day25"]


def test_keep_weekly_and_monthly_count_periods_that_have_a_backup():
    backups = [
        BackupSummary(f"b{i:03d}", "shop", datetime(2026, 11, 24, 10, tzinfo=UTC) - timedelta(days=i), True)
        for i in range(400)
        if not 30 <= i < 75  # a gap of six weeks without backups
    ]
    policy = policy_from_config({"keep_weekly": 6, "keep_monthly": 4}, where=WHERE)
    decisions = plan(backups, policy, NOW)
    kept = [d for d in decisions if d.action != "delete"]
    weekly = [d.reason for d in kept if "weekly" in d.reason]
    monthly = [d.reason for d in kept if "monthly" in d.reason]
    assert len(weekly) == 6 and len(monthly) == 4
    # The sixth kept week is past the gap: weeks without a backup do not use up the count.
    assert by_id(decisions)["b075"].reason == "kept: weekly 2026-W37; monthly 2026-09"
    assert "monthly 2026-11" in by_id(decisions)["b000"].reason


# --------------------------------------------------------------------------- reasons


def summary(backup_id: str, days_old: float, **kw) -> BackupSummary:
    kw.setdefault("verified", True)
    return BackupSummary(backup_id, "shop", NOW - timedelta(days=days_old), **kw)


def test_reasons_for_gfs_deletion_lock_and_hold():
    policy = policy_from_config({"keep_daily": 2, "keep_last": 1}, where=WHERE)
    backups = [
        summary("new", 0.5),
        summary("yesterday", 1.5),
        summary("old", 10),
        summary("locked", 11, retain_until=datetime(2027, 1, 1, tzinfo=UTC)),
        summary("held", 12, legal_hold=True),
        summary("lock-expired", 13, retain_until=NOW - timedelta(seconds=1)),
    ]
    reasons = {d.backup_id: (d.action, d.reason, d.retained_by) for d in plan(backups, policy, NOW)}
    assert reasons["new"] == (
        "keep",
        "kept: one of the last 1 (keep_last); daily 2026-11-25; newest verified backup",
        None,
    )
    assert reasons["yesterday"] == ("keep", "kept: daily 2026-11-24", None)
    assert reasons["old"] == ("delete", "deleted: outside every retention window", None)
    assert reasons["locked"] == (
        "keep",
        "retained until 2027-01-01T00:00:00Z by Object Lock (otherwise deleted: outside every retention window)",
        "object_lock",
    )
    assert reasons["held"] == (
        "keep",
        "kept: under legal hold (otherwise deleted: outside every retention window)",
        "legal_hold",
    )
    assert reasons["lock-expired"][0] == "delete"


def test_reasons_for_verification_guards():
    policy = policy_from_config({"keep_last": 1, "min_verified": 2}, where=WHERE)
    backups = [
        summary("running", 0.1, verified=False),
        summary("v1", 1),
        summary("failed", 2, verified=False),
        summary("v2", 3),
        summary("v3", 4),
        summary("partial", 5, complete=False, verified=False),
    ]
    reasons = {d.backup_id: d.reason for d in plan(backups, policy, NOW)}
    assert reasons == {
        "running": "kept: one of the last 1 (keep_last); not verified yet, newer than the newest verified backup",
        "v1": "kept: newest verified backup",
        "failed": "deleted: outside every retention window",
        "v2": "kept: one of the 2 newest verified backups (min_verified)",
        "v3": "deleted: outside every retention window",
        "partial": "kept: incomplete (data or manifest missing): never deleted automatically",
    }


def test_no_verified_backup_keeps_every_unverified_one():
    policy = policy_from_config({"keep_last": 1}, where=WHERE)
    decisions = plan([summary(f"u{i}", i, verified=False) for i in range(5)], policy, NOW)
    assert deleted_ids(decisions) == set()
    assert decisions[3].reason == "kept: not verified yet, and no backup of this database is verified"


def test_age_windows_and_tier_expiry_reasons():
    policy = policy_from_config(
        {
            "keep_daily": 1000,
            "max_age": "400d",
            "min_age": "2d",
            "tiers": {"hot": "30d", "warm": "90d", "cold": "365d", "deleteExpired": True},
        },
        where=WHERE,
    )
    backups = [
        summary("today", 0.2, storage_class="STANDARD"),
        summary("month", 45, storage_class="STANDARD"),
        summary("month-ia", 46, storage_class="STANDARD_IA"),
        summary("quarter", 120, storage_class="STANDARD"),
        summary("cold-already", 121, storage_class="GLACIER_IR"),
        summary("deep", 122, storage_class="DEEP_ARCHIVE"),
        summary("expired", 366, storage_class="GLACIER_IR"),
    ]
    decisions = by_id(plan(backups, policy, NOW))
    assert decisions["today"].reason == ("kept: daily 2026-11-25; newest verified backup; younger than min_age 2d")
    assert decisions["month"].action == "transition"
    assert decisions["month"].target_storage_class == "STANDARD_IA"
    assert decisions["month"].reason == (
        "kept: daily 2026-10-11; to the warm tier (STANDARD_IA): 45d old, the hot tier ends at 30d"
    )
    assert decisions["month-ia"].action == "keep"
    assert decisions["quarter"].target_storage_class == "GLACIER_IR"
    assert decisions["cold-already"].action == "keep"
    assert decisions["deep"].reason.endswith("storage class DEEP_ARCHIVE is not a configured tier: left as is")
    assert decisions["expired"].reason == "deleted: past the end of the cold tier (365d) with deleteExpired"

    capped = policy_from_config({"keep_yearly": 5, "max_age": "400d"}, where=WHERE)
    old = [summary("recent", 1), summary("last-year", 420)]
    assert by_id(plan(old, capped, NOW))["last-year"].reason == "deleted: older than max_age 400d (420d old)"


def test_policy_without_keep_rules_keeps_everything_until_max_age():
    policy = policy_from_config({"max_age": "30d"}, where=WHERE)
    decisions = by_id(plan([summary("a", 1), summary("b", 29), summary("c", 31)], policy, NOW))
    assert decisions["b"].reason == "kept: policy keeps every backup until max_age 30d"
    assert decisions["c"].action == "delete"


def test_locked_backup_due_for_a_tier_is_not_copied():
    policy = policy_from_config({"keep_last": 5, "tiers": {"hot": "7d", "cold": "90d"}}, where=WHERE)
    locked = summary("locked", 10, retain_until=NOW + timedelta(days=5), storage_class="STANDARD")
    decision = plan([locked], policy, NOW)[0]
    assert decision.action == "keep"
    assert decision.reason.endswith("move to the cold tier (GLACIER_IR) waits for the protection to end")


def test_plan_refuses_naive_times():
    with pytest.raises(ValueError):
        plan([], RetentionPolicy(), datetime(2026, 1, 1))
    with pytest.raises(ValueError):
        BackupSummary("x", "shop", datetime(2026, 1, 1))


# --------------------------------------------------------------------------- policy parsing


def test_parse_duration():
    assert parse_duration("30d") == timedelta(days=30)
    assert parse_duration("12h") == timedelta(hours=12)
    assert parse_duration("2w") == timedelta(weeks=2)
    assert parse_duration(" 90s ") == timedelta(seconds=90)
    for bad in ("30", "d", "1.5d", "30 days", "", 30, None, True):
        with pytest.raises(ConfigError, match="is not a duration"):
            parse_duration(bad, where="x.max_age")


def test_policy_from_config_full():
    policy = policy_from_config(
        {
            "keep_last": 3,
            "keep_daily": 7,
            "keep_weekly": 4,
            "keep_monthly": 12,
            "keep_yearly": 2,
            "keep_within": "2d",
            "max_age": "800d",
            "min_age": "1d",
            "min_verified": 2,
            "tiers": {
                "hot": "30d",
                "warm": "90d",
                "cold": "365d",
                "deleteExpired": True,
                "storage_classes": {"cold": "GLACIER"},
            },
            "object_lock": {"mode": "compliance", "days": 30},
        },
        where=WHERE,
    )
    assert policy.keep_yearly == 2 and policy.min_verified == 2
    assert [t.storage_class for t in policy.tiers.tiers] == ["STANDARD", "STANDARD_IA", "GLACIER"]
    assert policy.expiry == timedelta(days=365)
    assert policy.object_lock.mode == "COMPLIANCE" and policy.object_lock.days == 30
    assert DEFAULT_STORAGE_CLASSES["cold"] == "GLACIER_IR"
    assert policy_from_config(None, where=WHERE) == RetentionPolicy()


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"keep_daly": 7}, r"databases\[shop\]\.retention: unknown field\(s\) keep_daly"),
        ({"keep_daily": "7"}, r"retention\.keep_daily: '7' is not a whole number"),
        ({"keep_daily": -1}, r"retention\.keep_daily: -1 is below the minimum of 0"),
        ({"keep_last": True}, r"retention\.keep_last: True is not a whole number"),
        ({"min_verified": 0}, r"retention\.min_verified: 0 is below the minimum of 1"),
        ({"max_age": "400x"}, r"retention\.max_age: '400x' is not a duration"),
        ({"max_age": "0d"}, r"retention\.max_age: must be longer than zero"),
        ({"max_age": "10d", "min_age": "10d"}, r"retention\.min_age: 10d is not shorter than max_age 10d"),
        ({"tiers": {"hot": "90d", "warm": "30d"}}, r"retention\.tiers\.warm: 30d must be longer than hot"),
        ({"tiers": {"hot": "3d", "frozen": "9d"}}, r"retention\.tiers: unknown key\(s\) frozen"),
        ({"tiers": {"deleteExpired": True}}, r"retention\.tiers: names no tier"),
        ({"tiers": {"hot": "3d", "deleteExpired": "yes"}}, r"retention\.tiers\.deleteExpired: 'yes'"),
        (
            {"tiers": {"hot": "3d", "warm": "9d", "storage_classes": {"warm": "STANDARD"}}},
            r"retention\.tiers\.storage_classes: two tiers use the same storage class",
        ),
        ({"object_lock": {"mode": "STRICT", "days": 3}}, r"retention\.object_lock\.mode: 'STRICT'"),
        ({"object_lock": {"mode": "GOVERNANCE"}}, r"retention\.object_lock\.days: missing"),
        ({"object_lock": {"days": 0}}, r"retention\.object_lock\.days: 0 is below the minimum of 1"),
        ([1, 2], r"retention: expected a mapping, got list"),
    ],
)
def test_policy_errors_name_the_field(config, message):
    with pytest.raises(ConfigError, match=message) as caught:
        policy_from_config(config, where=WHERE)
    assert str(caught.value).startswith(WHERE)
