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

echo "==> history for the status board and the charts: two backups and a drill of shop by the CLI"
for step in "backup shop" "backup shop" "drill shop latest"; do
  python -m restorable.cli $step >/dev/null 2>>"$STATE/demo-cli.log" || { tail -20 "$STATE/demo-cli.log"; exit 1; }
done

python "$ROOT/scripts/demo_run.py"
python -m devstack status --state-dir "$STATE/stack" | grep '^monitoring' || true

echo "==> screenshots (headless Chromium): the DAGs page, the Backups status board, the Backups tab of backup__shop"
for shot in "/dags airflow-dags 900" "/plugin/restorable status-board 700" \
  "/dags/backup__shop/plugin/restorable-dag dag-tab 1600"; do
  set -- $shot
  python "$ROOT/scripts/screenshot.py" --url "http://127.0.0.1:$AIRFLOW__API__PORT" --airflow-home "$AIRFLOW_HOME" \
    --path "$1" --out "$ROOT/docs/screenshots/$2.png" --height "$3" --settle 12 \
    || echo "    (screenshot $2 failed; the demo itself succeeded)"
done
