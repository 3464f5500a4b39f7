"""Restorable's Airflow DAGs: backup__<db>, restore_drill__<db>, restore_database, and for databases
with point-in-time recovery base_backup__<db> and monitor__<db>.

Thin on purpose: the DAG factory reads include/restorable.yaml (or $RESTORABLE_CONFIG) and
builds one backup and one restore-drill DAG per configured database. All logic lives in the
``restorable`` package under plugins/.
"""

from restorable.airflow.dag_factory import build_dags

globals().update(build_dags())
