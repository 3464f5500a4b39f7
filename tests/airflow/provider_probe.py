"""Run by ``test_provider_package`` with the fresh virtual environment's Python, not by pytest.

Prints, as JSON, what an Airflow with the package installed (and no plugins folder) finds: the
provider and its connection type through the providers manager, the plugin and where it came
from, and the answers of the API server's app to the Backups page, the plugins list and the
connection forms' metadata.
"""

import json
import sys

from airflow.api_fastapi.app import create_app
from airflow.plugins_manager import _get_plugins
from airflow.providers_manager import ProvidersManager
from fastapi.testclient import TestClient

manager = ProvidersManager()
provider = manager.providers.get("restorable")
behaviour = manager.field_behaviours.get("restorable_age")
hook = manager.hooks.get("restorable_age")
plugins = {p.name: str(p.source) for p in _get_plugins()[0]}

client = TestClient(create_app())
page = client.get("/restorable/")
listed = client.get("/api/v2/plugins")
forms = client.get("/ui/connections/hook_meta")
age_form = [f for f in forms.json() if f.get("connection_type") == "restorable_age"] if forms.is_success else forms.text
with open(sys.argv[1], "w") as out:  # Airflow logs to stdout
    json.dump(
        {
            "restorable_file": __import__("restorable").__file__,
            "provider": provider.data if provider else None,
            "provider_version": provider.version if provider else None,
            "hook": hook.hook_class_name if hook else None,
            "behaviour": behaviour,
            "plugins": plugins,
            "page_status": page.status_code,
            "page": page.text[:20000],
            "plugins_api": listed.json() if listed.is_success else listed.text,
            "age_form": age_form,
        },
        out,
    )
