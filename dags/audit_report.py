"""Restorable's monthly audit evidence report (report__all): the month before, into the bucket.

Thin: the builder reads include/restorable.yaml (or $RESTORABLE_CONFIG); the report is built by
restorable.report from the bucket alone.
"""

from restorable.airflow.report_dag import build_report_dag

report__all = build_report_dag()
