"""Validation of restored databases (Great Expectations Core, called directly; no Airflow)."""
