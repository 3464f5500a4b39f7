"""The plugin's pages: behind Airflow's login and DAG permissions, and showing what the bucket holds.

Authentication and authorization are Airflow's real ones: the simple auth manager the project ships
with (``airflow standalone``'s default, see scripts/airflow-env.sh), its JWTs, and its multi-team rule
(a team's DAG bundles are readable by that team's members only), read from the metadata database.
"""

from __future__ import annotations

import secrets

import pytest

pytestmark = [pytest.mark.airflow, pytest.mark.integration]

#: database id -> (its DAG bundle, the team owning the bundle)
TEAMS = {"alpha": ("alpha-bundle", "alpha-team"), "beta": ("beta-bundle", "beta-team")}


@pytest.fixture
def auth(airflow_db, monkeypatch):
    """The simple auth manager, initialized as the API server does; ``token(user)`` signs a user's JWT."""
    monkeypatch.setenv("AIRFLOW__API_AUTH__JWT_SECRET", secrets.token_urlsafe(64))
    from airflow.api_fastapi.app import init_auth_manager
    from airflow.api_fastapi.auth.managers.simple.simple_auth_manager import SimpleAuthManager

    manager = init_auth_manager()
    assert isinstance(manager, SimpleAuthManager)
    return manager.generate_jwt


@pytest.fixture
def two_teams(restorable_env):
    """Two databases whose DAGs sit in bundles of two different teams (Airflow's multi-team model)."""
    from airflow.models.dag import DagModel
    from airflow.models.dagbundle import DagBundleModel
    from airflow.models.team import Team, dag_bundle_team_association_table
    from airflow.utils.session import create_session
    from sqlalchemy import delete

    from tests.airflow.conftest import CONFIG_PATH, write_config

    shop = {"engine": "postgres", "conn_id": "shop_pg", "schedule": None, "restore_target_conn_id": "drill_pg"}
    write_config(
        CONFIG_PATH,
        bucket=restorable_env.bucket,
        recipient=restorable_env.services().config.encryption.recipients[0],
        databases=[{"id": db, **shop} for db in TEAMS],
    )
    dag_ids = [f"{prefix}{db}" for db in TEAMS for prefix in ("backup__", "restore_drill__")]
    with create_session() as session:
        for db, (bundle, team) in TEAMS.items():
            session.add_all([DagBundleModel(name=bundle), Team(name=team)])
            session.flush()
            session.execute(dag_bundle_team_association_table.insert().values(dag_bundle_name=bundle, team_name=team))
            for prefix in ("backup__", "restore_drill__"):
                session.add(DagModel(dag_id=prefix + db, bundle_name=bundle, fileloc="/dags/restorable.py"))
    yield
    with create_session() as session:
        session.execute(delete(DagModel).where(DagModel.dag_id.in_(dag_ids)))
        bundles = [bundle for bundle, _team in TEAMS.values()]
        session.execute(
            delete(dag_bundle_team_association_table).where(
                dag_bundle_team_association_table.c.dag_bundle_name.in_(bundles)
            )
        )
        session.execute(delete(Team).where(Team.name.in_([team for _b, team in TEAMS.values()])))
        session.execute(delete(DagBundleModel).where(DagBundleModel.name.in_(bundles)))


def user(name: str, role: str | None, teams: list[str] | None = None):
    from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser

    return SimpleAuthManagerUser(username=name, role=role, teams=teams)


def plugin_routes(app) -> list[str]:
    from fastapi.routing import APIRoute

    return [route.path for route in app.routes if isinstance(route, APIRoute)]


def test_every_route_refuses_anonymous_users_and_the_api_docs_are_off(restorable_env, auth):
    from fastapi.testclient import TestClient

    from restorable.airflow.plugin import RestorablePlugin, create_app

    assert RestorablePlugin.fastapi_apps[0]["url_prefix"] == "/restorable"
    app = create_app()
    client = TestClient(app)
    routes = plugin_routes(app)
    assert {"/", "/api/catalog"} <= set(routes)
    for path in routes:
        assert client.get(path).status_code == 401, path  # no credentials at all
        assert client.get(path, headers={"Authorization": "Bearer not-a-jwt"}).status_code == 403, path
        no_role = auth(user("nobody", None))
        assert client.get(path, headers={"Authorization": f"Bearer {no_role}"}).status_code == 403, path
    viewer = {"Authorization": f"Bearer {auth(user('vera', 'viewer'))}"}
    for path in ("/docs", "/redoc", "/openapi.json", "/docs/oauth2-redirect"):
        assert client.get(path).status_code == 404, path
        assert client.get(path, headers=viewer).status_code == 404, path


def test_a_viewer_sees_the_page_and_only_the_databases_of_dags_they_may_read(two_teams, auth):
    from fastapi.testclient import TestClient

    from restorable.airflow.plugin import create_app

    client = TestClient(create_app())

    def databases(who, *, cookie: bool = False) -> list[str]:
        token = auth(who)
        if cookie:
            response = TestClient(client.app, cookies={"_token": token}).get("/api/catalog")
        else:
            response = client.get("/api/catalog", headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 200, response.text
        return [item["database_id"] for item in response.json()]

    both = user("vera", "viewer", ["alpha-team", "beta-team"])
    assert databases(both) == ["alpha", "beta"]
    # The UI's iframe sends the session cookie, not a header.
    assert databases(user("ana", "viewer", ["alpha-team"]), cookie=True) == ["alpha"]
    assert databases(user("bo", "viewer", ["beta-team"])) == ["beta"]
    assert databases(user("cy", "viewer", ["gamma-team"])) == []

    page = TestClient(client.app, cookies={"_token": auth(user("ana", "viewer", ["alpha-team"]))}).get("/")
    assert page.status_code == 200
    assert "<b>alpha</b>" in page.text and "beta" not in page.text


def test_catalog_without_a_storage_connection_says_so(restorable_env, auth, monkeypatch):
    from fastapi.testclient import TestClient

    from restorable.airflow.plugin import create_app

    monkeypatch.delenv("AIRFLOW_CONN_RESTORABLE_S3")
    response = TestClient(create_app()).get(
        "/api/catalog", headers={"Authorization": f"Bearer {auth(user('vera', 'viewer'))}"}
    )
    assert response.status_code == 503
    assert response.json()["error"] == "ConfigError" and "restorable_s3" in response.json()["detail"]


@pytest.fixture
def shop_dags_known(airflow_db):
    """The shop DAGs in the metadata DB (what the DAG processor writes), so the auth manager can grant them."""
    from airflow.models.dag import DagModel
    from airflow.models.dagbundle import DagBundleModel
    from airflow.utils.session import create_session
    from sqlalchemy import delete, select

    made: list[str] = []
    with create_session() as session:
        if session.get(DagBundleModel, "dags-folder") is None:
            session.add(DagBundleModel(name="dags-folder"))
            session.flush()
        for dag_id in ("backup__shop", "restore_drill__shop"):
            if session.scalar(select(DagModel).where(DagModel.dag_id == dag_id)) is None:
                session.add(DagModel(dag_id=dag_id, bundle_name="dags-folder", fileloc="/dags/restorable.py"))
                made.append(dag_id)
    yield
    with create_session() as session:
        session.execute(delete(DagModel).where(DagModel.dag_id.in_(made)))


def test_the_board_and_the_dag_tab_after_backups_and_a_drill(restorable_env, shop_dags_known, auth):
    from fastapi.testclient import TestClient

    from restorable.airflow.plugin import create_app
    from restorable.commands.backup import run_backup
    from restorable.commands.drill import run_drill
    from restorable.commands.verify import verify_backup
    from tests.airflow.conftest import CONFIG_PATH, write_config

    shop = {"engine": "postgres", "conn_id": "shop_pg", "schedule": None, "restore_target_conn_id": "drill_pg"}
    services = restorable_env.services()
    write_config(
        CONFIG_PATH,
        bucket=restorable_env.bucket,
        recipient=services.config.encryption.recipients[0],
        databases=[{"id": "shop", **shop}],  # no expectations file: the drill checks counts and schema only
    )
    services = restorable_env.services()
    client = TestClient(create_app(), headers={"Authorization": f"Bearer {auth(user('vera', 'viewer'))}"})
    assert client.get("/api/status").json()[0]["state"] == "red"  # nothing backed up yet

    ids = []
    for _ in range(2):
        ids.append(run_backup(services, "shop").backup_id)
        verify_backup(services, "shop", ids[-1])
    drill = run_drill(services, "shop", "latest")
    assert drill.ok, drill.differences

    status = client.get("/api/status").json()
    assert [s["database_id"] for s in status] == ["shop"]
    shop_status = status[0]
    assert shop_status["reasons"] == [] and shop_status["state"] == "green", shop_status
    assert shop_status["newest_backup"] == ids[-1] and shop_status["newest_verified"] == ids[-1]
    assert shop_status["drill_passed"] is True and shop_status["drill_rto_seconds"] > 0
    assert shop_status["backups"] == 2 and shop_status["stored_bytes"] > 0

    board = client.get("/")
    assert board.status_code == 200
    assert 'class="state green"' in board.text and ids[-1] in board.text and "passed" in board.text
    assert "<script" not in board.text and "http" not in board.text.split("</style>", 1)[0]  # nothing fetched

    tab = client.get("/dag/backup__shop")
    assert tab.status_code == 200
    assert tab.text.count("<svg") == 4 and "Restore time (RTO) per drill" in tab.text
    assert "would take about" in tab.text and ids[-1] in tab.text
    other = client.get("/dag/some_teams_etl")
    assert other.status_code == 200 and "is not one of Restorable's" in other.text

    evidence = client.get(f"/restorable-not-a-prefix/api/evidence/shop/{ids[-1]}")
    assert evidence.status_code == 404
    records = client.get(f"/api/evidence/shop/{ids[-1]}").json()
    assert {r["kind"] for r in records} >= {"checksum", "drill"}
    assert client.get("/api/evidence/shop/..%2F..%2Fx").status_code == 404
    assert client.get(f"/api/evidence/nope/{ids[-1]}").status_code == 404
