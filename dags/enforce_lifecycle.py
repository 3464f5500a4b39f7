"""Restorable's daily lifecycle DAG (enforce_lifecycle): retention per database, then a bucket audit.

Thin: the factory reads include/restorable.yaml (or $RESTORABLE_CONFIG); the logic is in
restorable.lifecycle. Trigger it with {"dry_run": true} to see the plan without changing anything.
"""

from restorable.airflow.dag_factory import build_lifecycle_dag

enforce_lifecycle = build_lifecycle_dag()
