#!/bin/sh
# Run once by PostgreSQL's image on an empty data directory (docker-entrypoint-initdb.d): the
# schema owner ducha (runs ducha migrate), the service's role ducha_app (ducha migrate grants it
# what it needs), and the database, UTF8 with C.UTF-8 collation and ctype as ducha requires.
set -eu
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres \
	-v owner_pw="$DUCHA_DB_PASSWORD" -v app_pw="$DUCHA_APP_PASSWORD" <<'SQL'
CREATE ROLE ducha LOGIN PASSWORD :'owner_pw';
CREATE ROLE ducha_app LOGIN PASSWORD :'app_pw';
CREATE DATABASE ducha OWNER ducha TEMPLATE template0 ENCODING 'UTF8' LC_COLLATE 'C.UTF-8' LC_CTYPE 'C.UTF-8';
SQL
