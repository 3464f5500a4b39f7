"""The plugin's catalog page: behind Airflow's login, and showing what the bucket holds."""

from __future__ import annotations

import pytest

pytestmark = [pytest.mark.airflow, pytest.mark.integration]


def test_catalog_routes_require_a_user_and_show_the_bucket(restorable_env):
    from airflow.api_fastapi.core_api.security import get_user
    from fastapi.testclient import TestClient

    from restorable.airflow.plugin import RestorablePlugin, create_app

    assert RestorablePlugin.fastapi_apps[0]["url_prefix"] == "/restorable"
    app = create_app()
    client = TestClient(app)
    assert client.get("/api/catalog").status_code in (401, 403)
    assert client.get("/").status_code in (401, 403)

    app.dependency_overrides[get_user] = lambda: object()
    body = client.get("/api/catalog").json()
    assert [item["database_id"] for item in body] == ["shop", "shopdb"]
    assert body[0]["backups"] == 0 and body[0]["last_drill"] is None
    page = client.get("/")
    assert page.status_code == 200 and "<td>shop</td>" in page.text


def test_catalog_without_a_storage_connection_says_so(restorable_env, monkeypatch):
    from airflow.api_fastapi.core_api.security import get_user
    from fastapi.testclient import TestClient

    from restorable.airflow.plugin import create_app

    monkeypatch.delenv("AIRFLOW_CONN_RESTORABLE_S3")
    app = create_app()
    app.dependency_overrides[get_user] = lambda: object()
    response = TestClient(app).get("/api/catalog")
    assert response.status_code == 503
    assert response.json()["error"] == "ConfigError" and "restorable_s3" in response.json()["detail"]
