#!/usr/bin/env bash
# make demo: start the local stack and Airflow standalone, run a backup and a restore drill
# through Airflow, print what happened, and leave the UI running (make stop ends it all).
set -euo pipefail
source "$(dirname "$0")/airflow-env.sh"
mkdir -p "$STATE"

echo "==> local stack (PostgreSQL source + drill, MariaDB source + drill, SeaweedFS S3, Prometheus + Pushgateway + Alertmanager)"
# RESTORABLE_DEMO_MONITORING=0 leaves the monitoring out (each of its three programs starts in well under a second).
python -m devstack start --state-dir "$STATE/stack" $([[ ${RESTORABLE_DEMO_MONITORING:-1} == 0 ]] || echo --monitoring)
source "$STATE/stack/stack.env"

exporter_pid=$STATE/exporter.pid
if [[ -n ${RESTORABLE_EXPORTER_PORT:-} ]] && ! { [[ -f $exporter_pid ]] && kill -0 "$(cat "$exporter_pid")" 2>/dev/null; }; then
  echo "==> restorable exporter (freshness from the bucket) on 127.0.0.1:$RESTORABLE_EXPORTER_PORT, scraped by Prometheus"
  setsid python -m restorable.cli exporter --bind 127.0.0.1 --port "$RESTORABLE_EXPORTER_PORT" \
    >"$STATE/exporter.log" 2>&1 </dev/null &
  echo $! >"$exporter_pid"
fi

echo "==> Airflow metadata database ($AIRFLOW_HOME, SQLite)"
mkdir -p "$AIRFLOW_HOME"
airflow db migrate >"$AIRFLOW_HOME/migrate.log" 2>&1 || { tail -30 "$AIRFLOW_HOME/migrate.log"; exit 1; }
python -m restorable.airflow.settings_loader "$ROOT/airflow_settings.yaml"

if [[ -f $AIRFLOW_HOME/standalone.pid ]] && kill -0 "$(cat "$AIRFLOW_HOME/standalone.pid")" 2>/dev/null; then
  echo "==> Airflow standalone already running"
else
  echo "==> starting Airflow standalone (its own process group, so make stop ends every part)"
  setsid airflow standalone >"$AIRFLOW_HOME/standalone.log" 2>&1 < /dev/null &
  echo $! >"$AIRFLOW_HOME/standalone.pid"
fi

python "$ROOT/scripts/demo_run.py"
python -m devstack status --state-dir "$STATE/stack" | grep '^monitoring' || true

echo "==> screenshot of the DAGs page (headless Chromium): docs/screenshots/airflow-dags.png"
python "$ROOT/scripts/screenshot.py" --url "http://127.0.0.1:$AIRFLOW__API__PORT" --airflow-home "$AIRFLOW_HOME" \
  --out "$ROOT/docs/screenshots/airflow-dags.png" \
  || echo "    (screenshot failed; the demo itself succeeded)"
