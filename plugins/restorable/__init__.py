"""Restorable: database backups that are proven restorable.

The core (everything outside ``restorable.airflow``) imports no Airflow, so the CLI can
list, verify and restore while Airflow itself is down.
"""

__version__ = "0.1.0"
