"""Physical base backups and point-in-time restores (PostgreSQL): no Airflow here."""
