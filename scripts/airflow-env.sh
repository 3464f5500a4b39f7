# Sourced by the demo scripts: where the demo's Airflow lives and how it is configured.
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
STATE=${STATE:-$ROOT/.state}
export AIRFLOW_HOME=$STATE/airflow
export AIRFLOW__CORE__DAGS_FOLDER=$ROOT/dags
# The plugin (Backups page) and the provider (age identity form) come from the installed package's entry
# points (make venv installs it editable): a plugins folder holding plugin.py too would register it twice.
export AIRFLOW__CORE__PLUGINS_FOLDER=$AIRFLOW_HOME/plugins
mkdir -p "$AIRFLOW__CORE__PLUGINS_FOLDER"
export AIRFLOW__CORE__LOAD_EXAMPLES=False
export AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS=admin:admin
export AIRFLOW__API__HOST=127.0.0.1
export AIRFLOW__API__PORT=${AIRFLOW_PORT:-8080}
# Task processes reach the API server here; the default (localhost:8080) is wrong on any other port.
export AIRFLOW__CORE__EXECUTION_API_SERVER_URL=http://127.0.0.1:$AIRFLOW__API__PORT/execution/
export AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL=5
export AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK=False
export RESTORABLE_CONFIG=$ROOT/include/restorable.yaml
export PATH=$ROOT/.venv/bin:$PATH
# devstack/ (the throwaway servers) is imported from the checkout, not installed with the product.
export PYTHONPATH=$ROOT${PYTHONPATH:+:$PYTHONPATH}
# The local stack's connections (AIRFLOW_CONN_*) and the demo's age public key.
if [[ -f $STATE/stack/stack.env ]]; then source "$STATE/stack/stack.env"; fi
