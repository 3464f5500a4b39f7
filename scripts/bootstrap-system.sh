#!/usr/bin/env bash
# Installs the system programs Restorable drives, when they are missing: PostgreSQL 15 server and
# client tools, MariaDB server and client, the age CLI (restores by hand), zstd, jq, pgBackRest (only
# for the benchmark's physical row), Prometheus with its Pushgateway and Alertmanager (promtool checks
# the alert rules), Redis (the CeleryExecutor test's broker) and Chromium (only for the UI screenshot). As root it uses apt-get; otherwise it
# prints the exact command.
set -euo pipefail

missing=()
need() { # need <package> <file-or-command>...
  local pkg=$1; shift
  for probe in "$@"; do
    if [[ $probe == /* ]]; then [[ -e $probe ]] || { missing+=("$pkg"); return; }
    else command -v "$probe" >/dev/null 2>&1 || { missing+=("$pkg"); return; }
    fi
  done
}

need postgresql-15 /usr/lib/postgresql/15/bin/initdb /usr/lib/postgresql/15/bin/pg_ctl /usr/lib/postgresql/15/bin/postgres
need postgresql-client-15 /usr/lib/postgresql/15/bin/pg_dump /usr/lib/postgresql/15/bin/pg_restore
need mariadb-server mariadbd mariadb-install-db
need mariadb-client mariadb mariadb-dump
need age age
need zstd zstd
need jq jq  # the README's restore by hand of an envelope backup reads key.json with it (and its test)
need pgbackrest pgbackrest
need prometheus prometheus promtool
need prometheus-pushgateway prometheus-pushgateway
need prometheus-alertmanager prometheus-alertmanager amtool
need redis-server redis-server  # the Celery broker of the CeleryExecutor test
[[ ${RESTORABLE_SKIP_CHROMIUM:-} == 1 ]] || need chromium chromium

if [[ ${#missing[@]} -eq 0 ]]; then
  echo "bootstrap: system packages present"
  exit 0
fi
cmd="apt-get install -y --no-install-recommends ${missing[*]}"
if [[ $(id -u) -ne 0 ]]; then
  echo "bootstrap: missing system packages: ${missing[*]}" >&2
  echo "bootstrap: run as root:  apt-get update && $cmd" >&2
  exit 1
fi
echo "bootstrap: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# Debian's server packages try to start a cluster/service; we only want the binaries.
printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d.restorable
[[ -e /usr/sbin/policy-rc.d ]] || { cp /usr/sbin/policy-rc.d.restorable /usr/sbin/policy-rc.d; chmod +x /usr/sbin/policy-rc.d; trap 'rm -f /usr/sbin/policy-rc.d' EXIT; }
rm -f /usr/sbin/policy-rc.d.restorable
$cmd
