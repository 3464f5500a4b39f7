#!/usr/bin/env bash
# make stop: end Airflow standalone (the whole process group) and the local stack. Idempotent.
set -uo pipefail
source "$(dirname "$0")/airflow-env.sh"
pidfile=$AIRFLOW_HOME/standalone.pid
if [[ -f $pidfile ]]; then
  pgid=$(cat "$pidfile")
  if kill -0 "$pgid" 2>/dev/null; then
    echo "stopping Airflow standalone (process group $pgid)"
    kill -TERM -- "-$pgid" 2>/dev/null
    for _ in $(seq 1 20); do kill -0 -- "-$pgid" 2>/dev/null || break; sleep 0.5; done
    # LocalExecutor workers ignore TERM.
    kill -KILL -- "-$pgid" 2>/dev/null
  fi
  rm -f "$pidfile"
fi
if [[ -f $STATE/exporter.pid ]]; then
  pid=$(cat "$STATE/exporter.pid")
  kill -0 "$pid" 2>/dev/null && echo "stopping restorable exporter ($pid)" && kill -TERM -- "-$pid" 2>/dev/null
  rm -f "$STATE/exporter.pid"
fi
if [[ -d $STATE/stack ]]; then
  python -m devstack stop --state-dir "$STATE/stack"
fi
echo "stopped"
