"""What the CLI and the operators run: backup, verify, restore (core, no Airflow)."""
