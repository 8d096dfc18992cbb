-- The five service databases and their owner, run once by the postgres image's entrypoint
-- (mounted into /docker-entrypoint-initdb.d by docker-compose.yml) on an empty data volume.
-- One service, one database: each service's DATABASE_URL names only its own.
--
-- The pbj role's password comes from the PBJ_DB_PASSWORD environment variable of the
-- postgres container (psql 15's \getenv); the script stops if it is not set.
-- On a managed PostgreSQL run it by hand: PBJ_DB_PASSWORD=... psql -f init-databases.sql
\set ON_ERROR_STOP on

\getenv pbj_password PBJ_DB_PASSWORD
\if :{?pbj_password}
\else
  DO $$ BEGIN RAISE EXCEPTION 'PBJ_DB_PASSWORD is not set: no pbj role without a password'; END $$;
\endif

CREATE ROLE pbj WITH LOGIN PASSWORD :'pbj_password';

CREATE DATABASE pbj_assessment OWNER pbj ENCODING 'UTF8' TEMPLATE template0;
CREATE DATABASE pbj_allocation OWNER pbj ENCODING 'UTF8' TEMPLATE template0;
CREATE DATABASE pbj_planning OWNER pbj ENCODING 'UTF8' TEMPLATE template0;
CREATE DATABASE pbj_payments OWNER pbj ENCODING 'UTF8' TEMPLATE template0;
CREATE DATABASE pbj_audit OWNER pbj ENCODING 'UTF8' TEMPLATE template0;

-- Nobody but the owner (and superusers) connects to the service databases.
REVOKE ALL ON DATABASE pbj_assessment, pbj_allocation, pbj_planning, pbj_payments, pbj_audit FROM PUBLIC;
GRANT CONNECT, TEMPORARY ON DATABASE pbj_assessment, pbj_allocation, pbj_planning, pbj_payments, pbj_audit TO pbj;
