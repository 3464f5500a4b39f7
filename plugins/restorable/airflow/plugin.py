"""The Airflow plugin: the Backups status board and a Backups tab on each DAG page, straight from the bucket.

Mounted on the API server at ``/restorable``: ``/`` the status board (``status_board``; in the UI's
navigation), ``/dag/{dag_id}`` a tab on each DAG's page with the database's charts and drills
(``pages``), and JSON at ``/api/status``, ``/api/catalog`` and ``/api/evidence/{db}/{backup}``. What
they show comes from the manifests and verification records in the bucket, the same source the CLI
reads while Airflow is down.

Plugin apps are mounted without Airflow's login, so the app guards itself: every route needs a
logged-in user allowed to read DAGs (``requires_access_dag``), each database's rows are shown only
to users who may read one of its DAGs (``access``), and FastAPI's ``/docs``, ``/redoc`` and
``/openapi.json``, public by default, are switched off.
"""

from __future__ import annotations

from typing import Any

from airflow.plugins_manager import AirflowPlugin

URL_PREFIX = "/restorable"


def catalog_overview(services: Any, databases: set[str] | None = None) -> list[dict[str, Any]]:
    """Per configured database (only those in ``databases`` when given): backups, newest, newest verified,
    last drill."""
    catalog = services.catalog("restore")
    out = []
    for db in services.config.databases.values():
        if databases is not None and db.id not in databases:
            continue  # never read what the user may not see
        entries = catalog.entries(db.id)
        verified = [e for e in entries if e.verified]
        drills = [v for e in entries for v in e.verifications if v.get("kind") == "drill"]
        last_drill = max(drills, key=lambda v: v.get("checked_at", ""), default=None)
        out.append(
            {
                "database_id": db.id,
                "engine": db.engine,
                "backups": len(entries),
                "newest": entries[-1].manifest.summary() if entries else None,
                "newest_verified": verified[-1].backup_id if verified else None,
                "last_drill": None
                if last_drill is None
                else {k: last_drill.get(k) for k in ("backup_id", "ok", "checked_at", "rto_seconds", "failed_step")},
            }
        )
    return out


def create_app():
    from airflow.api_fastapi.core_api.security import get_user, requires_access_dag
    from fastapi import Depends, FastAPI, Request
    from fastapi.responses import HTMLResponse, JSONResponse

    from restorable.exceptions import RestorableError

    # Depends() as a default, not an Annotated alias: this module uses postponed annotations.
    # FastAPI resolves get_user once per request, for both the guard and the route.
    logged_in = Depends(get_user)

    app = FastAPI(
        title="Restorable",
        description="Backup catalog (from the bucket)",
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
        # Every route: a logged-in user who may read DAGs at all (401 without a login, 403 without the right).
        dependencies=[Depends(requires_access_dag("GET"))],
    )

    @app.exception_handler(RestorableError)
    def unavailable(request: Request, exc: RestorableError) -> JSONResponse:
        # A missing connection or an unreachable bucket: say which, in words, not a stack trace.
        return JSONResponse(status_code=503, content={"detail": str(exc), "error": type(exc).__name__})

    def readable(user: Any):
        """The services and the ids of the databases ``user`` may see (``access``)."""
        from restorable.airflow.access import readable_databases
        from restorable.airflow.connections import airflow_services

        services = airflow_services()
        return services, readable_databases(user, services.config.databases)

    @app.get("/api/catalog")
    def catalog_json(user: Any = logged_in) -> list[dict[str, Any]]:
        return catalog_overview(*readable(user))

    @app.get("/api/status")
    def status_json(user: Any = logged_in) -> list[dict[str, Any]]:
        from restorable.status_board import board

        return [status.to_dict() for status in board(*readable(user))]

    @app.get("/", response_class=HTMLResponse)
    def board_html(user: Any = logged_in) -> str:
        from restorable.airflow.pages import board_page
        from restorable.status_board import board

        services, databases = readable(user)
        locks = {db: services.config.object_lock_for(db) for db in databases}
        return board_page(board(services, databases), locks, URL_PREFIX)

    @app.get("/dag/{dag_id}", response_class=HTMLResponse)
    def dag_tab(dag_id: str, user: Any = logged_in) -> str:
        # The app's guard has checked this very DAG (requires_access_dag reads dag_id from the path).
        from restorable.airflow.access import database_of_dag
        from restorable.airflow.pages import dag_tab_page, not_restorable_page
        from restorable.status_board import history

        services, databases = readable(user)
        database_id = database_of_dag(dag_id, databases)
        if database_id is None:
            return not_restorable_page(dag_id)
        engine = services.config.database(database_id).engine
        return dag_tab_page(database_id, engine, history(services, database_id), URL_PREFIX)

    @app.get("/api/evidence/{database_id}/{backup_id}")
    def evidence(database_id: str, backup_id: str, user: Any = logged_in) -> list[dict[str, Any]]:
        """A backup's check and drill records, as stored (ids, figures and verdicts; no secrets)."""
        from fastapi import HTTPException

        from restorable.repository.layout import is_backup_id

        services, databases = readable(user)
        if database_id not in databases or not is_backup_id(backup_id):
            raise HTTPException(status_code=404, detail="no such backup among the databases you may see")
        return services.catalog("restore").verifications(database_id, backup_id)

    return app


class RestorablePlugin(AirflowPlugin):
    name = "restorable"
    fastapi_apps = [{"app": create_app(), "url_prefix": URL_PREFIX, "name": "Restorable catalog"}]
    external_views = [
        {
            "name": "Backups",
            "href": f"{URL_PREFIX}/",
            "destination": "nav",
            "category": "browse",
            "url_route": "restorable",
        },
        {
            # A tab on every DAG's page; for DAGs that are not Restorable's it says so.
            "name": "Backups",
            "href": f"{URL_PREFIX}/dag/{{DAG_ID}}",
            "destination": "dag",
            "url_route": "restorable-dag",
        },
    ]
