"""What every Restorable operator shares: the core services behind Airflow connections, and the
run's identity (who did it, at which point in time) as the core records it."""

from __future__ import annotations

import socket
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from airflow.sdk import BaseOperator


def run_info(context: Any) -> dict[str, Any]:
    """The Airflow run doing the work, as recorded in manifests and evidence."""
    from restorable.repository.manifest import iso

    ti = context["ti"]
    logical = context.get("logical_date")
    dag_run = context.get("dag_run")
    run_after = getattr(dag_run, "run_after", None)
    return {
        "by": "airflow",
        "dag_id": ti.dag_id,
        "run_id": ti.run_id,
        "logical_date": iso(logical) if logical else None,
        "run_after": iso(run_after) if run_after else None,
        "try_number": ti.try_number,
        "host": socket.gethostname(),
    }


def run_time(context: Any) -> datetime:
    """The run's point in time: its logical date, else (asset-triggered, manual) its run_after."""
    logical = context.get("logical_date")
    if logical:
        return logical
    dag_run = context.get("dag_run")
    return getattr(dag_run, "run_after", None) or datetime.now().astimezone()


def run_key(context: Any) -> str:
    """``dag_id/run_id``: what makes ids and scratch names the same for every try of a run."""
    ti = context["ti"]
    return f"{ti.dag_id}/{ti.run_id}"


def as_bool(value: Any) -> bool:
    """A rendered template parameter ("True", "false", "1") as a bool."""
    if isinstance(value, bool):
        return value
    return str(value).strip().lower() in ("1", "true", "yes", "on")


class RestorableOperator(BaseOperator):
    """Base: one configured database, core services backed by Airflow connections."""

    template_fields: Sequence[str] = ("database_id",)
    ui_color = "#e8f4ea"

    def __init__(self, *, database_id: str, config_path: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.database_id = database_id
        self.config_path = config_path
        self._services = None

    @property
    def services(self):
        """The core services, built on first use (not at parse time) from Airflow's connections."""
        if self._services is None:
            from restorable.airflow.connections import airflow_services

            self._services = airflow_services(self.config_path)
        return self._services

    @property
    def database(self):
        return self.services.config.database(self.database_id)

    def pre_execute(self, context: Any) -> None:
        """Name this task's run for every log line it writes (``restorable.logs``): database, run id, DAG."""
        from restorable.logs import start_run

        ti = context["ti"]
        start_run(database=self.database_id, run_id=ti.run_id, dag_id=ti.dag_id)

    def observed(self, context: Any, kind: str):
        """Report this task's run to the configured metrics sink when it ends (``restorable.metrics``)."""
        from restorable.metrics import observed

        attempt = getattr(context["ti"], "try_number", None) or 1
        return observed(self.services, kind, self.database_id, attempt=attempt, max_attempts=(self.retries or 0) + 1)

    def on_kill(self) -> None:
        """Stop the running duty cleanly when Airflow stops the task.

        Airflow 3's task runner (``airflow/sdk/execution_time/task_runner.py``, ``_on_term``)
        answers SIGTERM by calling ``on_kill()`` from its signal handler, in the main thread, in
        the middle of ``execute``; it raises nothing itself, and SIGKILL follows 5 s later.
        Raising :class:`~restorable.exceptions.Interrupted` here (``restorable.interrupt.stop_now``)
        unwinds ``execute`` through the same clean-up paths as a failure or the CLI's SIGTERM:
        children stopped, upload aborted, the database a restore created dropped, temp files
        removed; the task then fails (and retries if it has retries left).

        The runner also calls ``on_kill()`` after ``execute`` ended on its execution timeout, while
        handling that ``AirflowTaskTimeout``; the clean-up has run by then, and raising would hide
        the timeout, so an exception being handled means there is nothing to stop.
        """
        import signal
        import sys

        from restorable.interrupt import stop_now

        handled = sys.exc_info()[1]
        if handled is not None:
            self.log.info("on_kill while %s is handled: clean-up already under way", type(handled).__name__)
            return
        self.log.warning("task stopped (SIGTERM): stopping the children and cleaning up")
        stop_now(signal.SIGTERM)  # raises now, or as soon as a child being started is guarded

    def scratch_name(self, context: Any) -> str:
        """The run's scratch database: the same for every task and try of one drill run."""
        from restorable.commands.restore_target import scratch_database_name

        return scratch_database_name(self.database_id, run_key(context))


class ConfigErrorOperator(BaseOperator):
    """Stands in for the tasks of a database entry that did not validate: fails with its error.

    The message (file, entry, field, what to do) was taken at parse time; the config is not read
    again here, so the failure is the one the DAG's description shows.
    """

    ui_color = "#f4c7c3"

    def __init__(self, *, error: str, database_id: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.error = error
        #: What the alert names (the entry's id, or its position when the id is unusable).
        self.database_id = database_id

    def execute(self, context: Any) -> None:
        from restorable.exceptions import ConfigError

        raise ConfigError(self.error)
