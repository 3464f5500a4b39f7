#!/usr/bin/env bash
# make demo: start the local stack and Airflow standalone, run a backup and a restore drill
# through Airflow, print what happened, and leave the UI running (make stop ends it all).
set -euo pipefail
source "$(dirname "$0")/airflow-env.sh"
mkdir -p "$STATE"

echo "==> local stack (PostgreSQL source + drill, MariaDB source + drill, SeaweedFS S3)"
python -m devstack start --state-dir "$STATE/stack"
source "$STATE/stack/stack.env"

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

echo "==> screenshot of the DAGs page (headless Chromium): docs/screenshots/airflow-dags.png"
python "$ROOT/scripts/screenshot.py" --url "http://127.0.0.1:$AIRFLOW__API__PORT" --airflow-home "$AIRFLOW_HOME" \
  --out "$ROOT/docs/screenshots/airflow-dags.png" \
  || echo "    (screenshot failed; the demo itself succeeded)"
