#!/bin/sh
# The login users of the programs' database roles (docs/OPERATIONS.md,
# "Database roles"), run by the postgres image when it initialises its data
# directory (/docker-entrypoint-initdb.d), as POSTGRES_USER, the owner that
# db/migrate runs as. Idempotent: on a data directory made before roles
# existed, run it once by hand:
#   docker compose exec postgres sh /docker-entrypoint-initdb.d/20-ddns-roles.sh
#
#   ddns_gateway, ddns_provision, ddns_readonly   group roles, NOLOGIN (the
#       migration grants them their privileges)
#   ddns_gateway_login    the gateways, password DDNS_DB_GATEWAY_PASSWORD
#   ddns_provision_login  ddns-provision (service tools), password
#                         DDNS_DB_PROVISION_PASSWORD
# The passwords go to PostgreSQL as psql variables, never on a command line.
set -eu
: "${DDNS_DB_GATEWAY_PASSWORD:?set DDNS_DB_GATEWAY_PASSWORD}"
: "${DDNS_DB_PROVISION_PASSWORD:?set DDNS_DB_PROVISION_PASSWORD}"
psql -X -v ON_ERROR_STOP=1 --username "${POSTGRES_USER:-ddns}" --dbname "${POSTGRES_DB:-ddns}" \
     -v gw_pw="$DDNS_DB_GATEWAY_PASSWORD" -v prov_pw="$DDNS_DB_PROVISION_PASSWORD" <<'SQL'
SELECT format('CREATE ROLE %I NOLOGIN', r)
    FROM unnest(ARRAY['ddns_gateway', 'ddns_provision', 'ddns_readonly']) r
    WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = r) \gexec
SELECT format('CREATE ROLE %I LOGIN', u)
    FROM unnest(ARRAY['ddns_gateway_login', 'ddns_provision_login']) u
    WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = u) \gexec
GRANT ddns_gateway TO ddns_gateway_login;
GRANT ddns_provision TO ddns_provision_login;
SELECT format('ALTER ROLE ddns_gateway_login PASSWORD %L', :'gw_pw') \gexec
SELECT format('ALTER ROLE ddns_provision_login PASSWORD %L', :'prov_pw') \gexec
SQL
