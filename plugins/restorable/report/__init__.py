"""The audit evidence report: what the bucket proves about a period, as an auditor reads it.

``collect.collect_report`` reads only the bucket and the config (no Airflow, no local state), so the
report can be made while Airflow is down, and by someone who does not trust Airflow's own records:

- ``period``: the period and the scheduled runs in it (the config's cron schedules, as Airflow runs them);
- ``collect``: per database, backups taken and verified against the schedule, drills and their RTO/RPO,
  retention, Object Lock and encryption recipients, every failure and what fixed it, the evidence keys;
- ``render``: the same figures as JSON, HTML (Jinja2) or PDF (``pdf``, fpdf2).
"""
