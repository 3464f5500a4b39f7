"""The run context on log records: every logger and thread, text and JSON, never twice on a line."""

from __future__ import annotations

import io
import json
import logging
import threading

import pytest

from restorable import logs
from restorable.logs import JsonFormatter, KeyValueFormatter, backup_log, bind_run, end_run, start_run


@pytest.fixture
def captured(monkeypatch):
    """A logger of its own (no root handler touched) writing JSON and text lines to two buffers, as
    under the CLI's ``configure_logging`` (our formatters render the run; messages stay bare)."""
    monkeypatch.setattr(logs, "_rendered_by_formatter", True)
    out = {"json": io.StringIO(), "text": io.StringIO()}
    logger = logging.getLogger("restorable.test_logs")
    handlers = []
    for name, formatter in (("json", JsonFormatter()), ("text", KeyValueFormatter())):
        handler = logging.StreamHandler(out[name])
        handler.setFormatter(formatter)
        logger.addHandler(handler)
        handlers.append(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    yield logger, out
    for handler in handlers:
        logger.removeHandler(handler)
    end_run()


def test_records_from_any_thread_carry_the_run_and_json_is_one_object_per_line(captured):
    logger, out = captured
    start_run(database="shop", run_id="scheduled__2026-12-04T02:00:00+00:00")
    logger.info("before the backup is chosen")
    bind_run(backup="20261204T020000Z-aaaaaaaa")
    worker = threading.Thread(target=lambda: logger.info("part %d uploaded", 3))
    worker.start()
    worker.join()
    backup_log("restorable.test_logs", "shop", "20261204T020000Z-aaaaaaaa").info("committed", parts=3, note="a b")
    try:
        raise ValueError("line one\nline two")
    except ValueError:
        logger.exception("failed")
    records = [json.loads(line) for line in out["json"].getvalue().splitlines()]
    assert [r["message"] for r in records] == ["before the backup is chosen", "part 3 uploaded", "committed", "failed"]
    assert all(r["database"] == "shop" and r["run_id"].startswith("scheduled__") for r in records)
    assert "backup" not in records[0] and {r["backup"] for r in records[1:]} == {"20261204T020000Z-aaaaaaaa"}
    assert records[2]["parts"] == 3 and records[2]["note"] == "a b"
    assert "ValueError: line one\nline two" in records[3]["exception"]

    text = out["text"].getvalue().splitlines()
    assert text[1].endswith(
        "part 3 uploaded database=shop run_id=scheduled__2026-12-04T02:00:00+00:00 backup=20261204T020000Z-aaaaaaaa"
    )
    assert text[2].count("database=shop") == 1 and text[2].count("backup=") == 1
    assert text[3].endswith(
        "failed database=shop run_id=scheduled__2026-12-04T02:00:00+00:00 backup=20261204T020000Z-aaaaaaaa"
    )


def test_without_our_formatter_restorable_messages_hold_the_run_inline():
    start_run(database="shop", run_id="r1")
    try:
        record = logging.getLogger("restorable.test_logs").makeRecord(
            "restorable.test_logs", logging.INFO, __file__, 1, "copied %d%% of it", (50,), None
        )
        assert record.getMessage() == "copied 50% of it database=shop run_id=r1"
        other = logging.getLogger("botocore").makeRecord("botocore", logging.INFO, __file__, 1, "x", (), None)
        assert other.getMessage() == "x"  # another library's message is left alone (its fields ride along)
        assert other.restorable_run == {"database": "shop", "run_id": "r1"}
    finally:
        end_run()
    after = logging.getLogger("restorable.test_logs").makeRecord("restorable.test_logs", 20, __file__, 1, "y", (), None)
    assert after.getMessage() == "y"
    bind_run(backup="b")  # outside a run: nothing to bind to
    assert (
        logging.getLogger("restorable.x").makeRecord("restorable.x", 20, __file__, 1, "z", (), None).getMessage() == "z"
    )


def test_a_record_copied_by_make_log_record_during_a_run_is_not_a_logging_error():
    # structlog's ProcessorFormatter (Airflow's task logs) copies each record with
    # logging.makeLogRecord, which builds a blank record (name None) before filling it in.
    start_run(database="shop", run_id="r1")
    try:
        original = logging.getLogger("restorable.test_logs").makeRecord(
            "restorable.test_logs", logging.INFO, __file__, 1, "drill passed rto=%s", (0.4,), None
        )
        copied = logging.makeLogRecord(original.__dict__)
        assert copied.getMessage() == original.getMessage() == "drill passed rto=0.4 database=shop run_id=r1"
    finally:
        end_run()
