"""The Airflow plugin: a "Backups" page in the UI showing the catalog, straight from the bucket.

Mounted on the API server at ``/restorable``: ``/restorable/`` (an HTML table, also shown in
the UI's navigation as an external view) and ``/restorable/api/catalog`` (JSON). What they show
comes from the manifests and verification records in the bucket, the same source the CLI reads
while Airflow is down.

Plugin apps are mounted without Airflow's login, so the app guards itself: every route needs a
logged-in user allowed to read DAGs (``requires_access_dag``), each database's rows are shown only
to users who may read one of its DAGs (``access``), and FastAPI's ``/docs``, ``/redoc`` and
``/openapi.json``, public by default, are switched off.
"""

from __future__ import annotations

import html
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

    def overview(user: Any) -> list[dict[str, Any]]:
        from restorable.airflow.access import readable_databases
        from restorable.airflow.connections import airflow_services

        services = airflow_services()
        return catalog_overview(services, readable_databases(user, services.config.databases))

    @app.get("/api/catalog")
    def catalog_json(user: Any = logged_in) -> list[dict[str, Any]]:
        return overview(user)

    @app.get("/", response_class=HTMLResponse)
    def catalog_page(user: Any = logged_in) -> str:
        rows = []
        for item in overview(user):
            newest = item["newest"] or {}
            drill = item["last_drill"] or {}
            verdict = {True: "passed", False: "FAILED"}.get(drill.get("ok"), "never")
            cells = [
                item["database_id"],
                item["engine"],
                str(item["backups"]),
                newest.get("backup_id") or "-",
                item["newest_verified"] or "-",
                f"{verdict} {drill.get('checked_at') or ''}",
                str(drill.get("rto_seconds") or "-"),
            ]
            rows.append("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in cells) + "</tr>")
        head = "".join(
            f"<th>{h}</th>"
            for h in ("database", "engine", "backups", "newest", "newest verified", "last drill", "RTO (s)")
        )
        return (
            "<!doctype html><meta charset=utf-8><title>Restorable</title>"
            "<style>body{font-family:sans-serif;margin:1.5em}td,th{padding:.3em .8em;border-bottom:1px solid #ddd;"
            "text-align:left}</style><h2>Backups</h2>"
            f"<table><tr>{head}</tr>{''.join(rows)}</table>"
        )

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
        }
    ]
