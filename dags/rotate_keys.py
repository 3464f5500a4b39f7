"""Restorable's yearly key rotation (rotate_keys), built when include/restorable.yaml sets encryption.envelope.

Thin: the logic is in restorable.keys.rotation; the DAG is in restorable.airflow.keys_dag.
"""

from restorable.airflow.keys_dag import build_rotate_keys_dag

rotate_keys = build_rotate_keys_dag()
