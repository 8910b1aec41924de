#!/bin/sh
# Patroni runs this once, on the node that initialises the cluster, with a superuser DSN as its
# argument (the password in its PGPASSFILE): the service's role (APP_USER, APP_PASSWORD) and its
# database of the same name.
set -eu
psql -v ON_ERROR_STOP=1 -v app_role="$APP_USER" -v app_password="$APP_PASSWORD" "$1" <<'SQL'
CREATE ROLE :"app_role" LOGIN PASSWORD :'app_password';
CREATE DATABASE :"app_role" OWNER :"app_role";
SQL
