"""The status board's verdicts, the fitted restore-time forecast and the SVG charts (no services)."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from restorable.charts import Series, chart, fit_line, restore_forecast
from restorable.status_board import DatabaseStatus, _judge, human_age

DAY = 86400.0
OBJECTIVES = {"backup_age": 26 * 3600, "verified_age": 26 * 3600, "drill_age": 8 * DAY, "rpo": 300}


def status(**changes) -> DatabaseStatus:
    base = {
        "backups": 3,
        "newest_age_seconds": 3600,
        "verified_age_seconds": 3600,
        "drill_passed": True,
        "drill_age_seconds": DAY,
        "objectives": dict(OBJECTIVES),
    }
    return DatabaseStatus("shop", "postgres", **{**base, **changes})


@pytest.mark.parametrize(
    ("changes", "failed_checks", "failing", "state", "reason"),
    [
        ({}, 0, 0, "green", None),
        ({"newest_age_seconds": 27 * 3600, "verified_age_seconds": 27 * 3600}, 0, 0, "red", "above its objective"),
        ({"newest_age_seconds": 22 * 3600, "verified_age_seconds": 22 * 3600}, 0, 0, "amber", "near its objective"),
        ({"backups": 0, "newest_age_seconds": None, "verified_age_seconds": None}, 0, 0, "red", "no committed backup"),
        ({"verified_age_seconds": None}, 0, 0, "red", "no backup passed its newest check"),
        ({"drill_passed": False}, 0, 0, "red", "the last drill failed"),
        ({}, 2, 0, "red", "2 validation check(s) failed"),
        ({}, 0, 1, "red", "1 backup(s) failed their newest check"),
        ({"drill_age_seconds": None, "drill_passed": None}, 0, 0, "amber", "never drilled"),
        ({"drill_age_seconds": 9 * DAY}, 0, 0, "amber", "overdue"),
        ({"rpo_seconds": 600}, 0, 0, "red", "RPO now is 10 min, above its objective of 5 min"),
        ({"wal_archiver_running": False}, 0, 0, "amber", "the WAL archiver is not running"),
    ],
)
def test_red_amber_green_follow_the_objectives(changes, failed_checks, failing, state, reason):
    s = status(**changes)
    _judge(s, failed_checks, failing)
    assert s.state == state, s.reasons
    if reason is None:
        assert s.reasons == []
    else:
        assert any(reason in r for r in s.reasons), s.reasons


def test_red_wins_over_amber():
    s = status(drill_passed=False, drill_age_seconds=9 * DAY)
    _judge(s, 0, 0)
    assert s.state == "red" and len(s.reasons) == 2


def test_fit_and_forecast():
    assert fit_line([(1, 3), (2, 5), (3, 7)]) == pytest.approx((1.0, 2.0))
    assert fit_line([(5, 1), (5, 2)]) is None
    # A rising trend: the line; one size only: the mean rate times the size.
    assert restore_forecast([(100e6, 10), (200e6, 20)], 400e6) == pytest.approx(40)
    assert restore_forecast([(100e6, 10)], 300e6) == pytest.approx(30)
    assert restore_forecast([], 1e6) is None
    assert human_age(42) == "42 s" and human_age(3 * 3600 + 60) == "3 h 1 min" and human_age(3 * DAY) == "3 d 0 h"


def test_charts_are_well_formed_svg_with_escaped_names():
    svg = chart(
        "Size <&>",
        [Series("a<b", [(1.7e9, 1.0), (1.7e9 + 60, 2.0)]), Series("c", [(1.7e9, 3.0)])],
        y_label="bytes",
        trend=(0.0, 1e-9),
    )
    root = ET.fromstring(svg)
    ns = {"s": "http://www.w3.org/2000/svg"}
    assert len(root.findall(".//s:circle", ns)) == 3 and root.find("s:title", ns).text == "Size <&>"
    assert root.findall(".//s:polyline", ns) and root.findall(".//s:line[@stroke-dasharray]", ns)
    empty = ET.fromstring(chart("Nothing", [], y_label="s"))
    assert "no data yet" in "".join(empty.itertext())
