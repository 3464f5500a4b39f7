"""Restorable as an Airflow provider: found through the ``apache_airflow_provider`` entry point.

A deployment that installs the package (``pip install restorable``) gets the age identity connection
form from here and the Backups page from the plugin (``airflow.plugins`` entry point, ``plugin.py``),
without copying ``plugins/``. Airflow requires ``package-name`` to be the distribution's name. The
form is declared as data (``ui-field-behaviour``), as Airflow 3.2+ prefers to hook methods.
"""

from __future__ import annotations

from typing import Any

from restorable.airflow.hooks import CONN_TYPE

PACKAGE = "restorable"


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(PACKAGE)
    except PackageNotFoundError:  # imported from a source tree (plugins/ on sys.path)
        return "0+unknown"


def get_provider_info() -> dict[str, Any]:
    return {
        "package-name": PACKAGE,
        "name": "Restorable",
        "description": "Database backups that are proven restorable: capture, stream, verify, drill.",
        "versions": [_version()],
        "connection-types": [
            {
                "connection-type": CONN_TYPE,
                "hook-class-name": "restorable.airflow.hooks.AgeIdentityHook",
                "hook-name": "Restorable age identity",
                "ui-field-behaviour": {
                    "hidden-fields": ["host", "port", "schema", "login", "extra"],
                    "relabeling": {"password": "Age identity (private key)"},
                    "placeholders": {"password": "AGE-SECRET-KEY-1..."},
                },
            }
        ],
    }
