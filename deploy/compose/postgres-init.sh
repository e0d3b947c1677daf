#!/bin/sh
# Runs once, when the PostgreSQL volume is new (docker-entrypoint-initdb.d). The `churnops` role owns the churnops
# store and MLflow's database; Grafana reads the store through a role that can only SELECT.
set -eu
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
  -v grafana_password="$GRAFANA_DB_PASSWORD" <<'SQL'
CREATE DATABASE mlflow OWNER churnops;
CREATE ROLE grafana_reader LOGIN PASSWORD :'grafana_password';
GRANT CONNECT ON DATABASE churnops TO grafana_reader;
GRANT USAGE ON SCHEMA public TO grafana_reader;
GRANT SELECT ON ALL TABLES IN SCHEMA public TO grafana_reader;
ALTER DEFAULT PRIVILEGES FOR ROLE churnops IN SCHEMA public GRANT SELECT ON TABLES TO grafana_reader;
SQL
