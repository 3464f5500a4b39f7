# Restorable on the official Airflow image: the tools the chain drives, and the package itself.
#
#   docker build -t restorable-airflow:3.3.2 .      (docker-compose.yaml builds it for every Airflow service)
#
# The base is Debian 12 (bookworm), as apache/airflow:3.3.2 is: the apt packages below are Debian's own
# (tests/unit/test_dockerfile.py resolves each of them in Debian 12). PostgreSQL client tools 15 match
# the servers of the demo (pg_dump must be at least the server's major version: add a newer client
# for newer servers). The official image already has the Celery provider and the Redis client.
FROM apache/airflow:3.3.2-python3.11

USER root
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      postgresql-client-15 \
      mariadb-client \
      age \
      zstd \
 && apt-get clean \
 && rm -rf /var/lib/apt/lists/*

# The package (its provider info, plugin and CLI), pinned by the project's lock file; Great
# Expectations for the drills. Airflow itself stays the image's: pip is told its exact version.
COPY --chown=airflow:0 pyproject.toml requirements.txt /opt/restorable/src/
COPY --chown=airflow:0 plugins/restorable /opt/restorable/src/plugins/restorable
COPY --chown=airflow:0 include /opt/airflow/include
USER airflow
RUN pip install --no-cache-dir -c /opt/restorable/src/requirements.txt \
      "apache-airflow==3.3.2" "great-expectations==1.24.1" /opt/restorable/src

# The SQL the engines run (include/sql), found without walking up from the installed package.
ENV RESTORABLE_INCLUDE_DIR=/opt/airflow/include \
    RESTORABLE_CONFIG=/opt/airflow/include/restorable.yaml
