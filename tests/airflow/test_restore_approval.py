"""The overwrite approval of ``restore_database``: a second person, by name and id.

``dag.test()`` cannot answer a Human-in-the-loop task (it waits for the UI or the HITL API), so
the approval's check is tested here directly, through the operator's ``execute_complete`` that
Airflow calls with the response.
"""

from __future__ import annotations

from datetime import UTC, datetime
from types import SimpleNamespace

import pytest

from restorable.commands.restore_target import check_approval
from restorable.exceptions import RestoreRefused

pytestmark = pytest.mark.airflow


def response(option: str, name: str | None, user_id: str | None = None) -> dict:
    user = {"id": user_id or name, "name": name} if name else None
    return {
        "chosen_options": [option],
        "params_input": {},
        "responded_at": datetime(2026, 1, 1, tzinfo=UTC),
        "responded_by_user": user,
    }


def operator():
    from restorable.airflow.operators.restore import OverwriteApprovalOperator

    return OverwriteApprovalOperator(task_id="approve_overwrite", database_id="shop", subject="s")


def context(triggered_by: str) -> dict:
    return {"dag_run": SimpleNamespace(triggering_user_name=triggered_by)}


def test_an_approval_by_another_user_lets_the_restore_run():
    result = operator().execute_complete(context("alice"), response("Approve", "bob"))
    assert result["chosen_options"] == ["Approve"]


@pytest.mark.parametrize(("name", "user_id"), [("alice", "1"), ("Alice ", "7"), ("Alice Smith", "alice")])
def test_an_approval_by_the_user_who_triggered_the_run_is_refused(name, user_id):
    with pytest.raises(RestoreRefused, match="who triggered the restore") as refused:
        operator().execute_complete(context("alice"), response("Approve", name, user_id))
    assert refused.value.exit_code == 7 and "second person" in str(refused.value)


def test_a_rejection_fails_the_task():
    from airflow.providers.standard.exceptions import HITLRejectException

    with pytest.raises(HITLRejectException):
        operator().execute_complete(context("alice"), response("Reject", "bob"))


def test_a_timeout_rejects():
    from airflow.providers.standard.exceptions import HITLTimeoutError

    with pytest.raises(HITLTimeoutError):
        operator().execute_complete(context("alice"), {"error": "timed out", "error_type": "timeout"})


def test_an_approval_without_a_named_user_is_refused():
    with pytest.raises(RestoreRefused, match="not approved by a named user"):
        check_approval("alice", None, database_id="shop")
