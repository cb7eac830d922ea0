-- MLflow's own PostgreSQL account, run by the Job qubeflow-postgres-roles as the superuser
-- (Secret qubeflow-postgres-admin, via PGUSER/PGPASSWORD): a LOGIN role with no other
-- attribute, owning its database and that database's public schema; no other role but the
-- superusers may connect to it. Idempotent: every run re-applies the attributes, the owner,
-- the grants and the password (rotation: change the Secret, re-run the Job).
--   psql -X -v ON_ERROR_STOP=1 -f mlflow-role.sql
-- The role's name, password and database come from the environment (\getenv, psql >= 15),
-- never from argv; every name is quoted (%I, :"var") and every value is a literal (:'var').
\set ON_ERROR_STOP 1
\set QUIET 1
-- The password travels in this session's statements: keep them out of the server's log.
SET log_statement = 'none';
SET log_min_duration_statement = -1;
SET log_min_error_statement = 'panic';
\getenv mlflow_user MLFLOW_DB_USER
\getenv mlflow_password MLFLOW_DB_PASSWORD
\getenv mlflow_db MLFLOW_DB_NAME
\if :{?mlflow_user}
\else
  \set mlflow_user ''
\endif
\if :{?mlflow_password}
\else
  \set mlflow_password ''
\endif
\if :{?mlflow_db}
\else
  \set mlflow_db ''
\endif

-- Refuse what would misfire: an empty value, the superuser itself as MLflow's role (it would
-- lose its own attributes), a database name \connect would read as a connection string or
-- strip of its double quotes.
SELECT :'mlflow_user' <> '' AND :'mlflow_password' <> '' AND :'mlflow_db' <> ''
       AND :'mlflow_user' <> current_user
       AND :'mlflow_db' !~ '[="]' AND :'mlflow_db' !~ '^postgres(ql)?://'
       AND :'mlflow_db' NOT IN ('postgres', 'template0', 'template1') AS ok \gset
\if :ok
\else
  DO $$ BEGIN RAISE EXCEPTION 'MLflow role not set up: MLFLOW_DB_USER, MLFLOW_DB_PASSWORD '
    'and MLFLOW_DB_NAME must be set, the role not the superuser running this, the database '
    'not a system one and without = or "'; END $$;
\endif

SELECT format('CREATE ROLE %I', :'mlflow_user')
 WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'mlflow_user') \gexec
ALTER ROLE :"mlflow_user" WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION
  NOBYPASSRLS PASSWORD :'mlflow_password';

SELECT format('CREATE DATABASE %I OWNER %I', :'mlflow_db', :'mlflow_user')
 WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = :'mlflow_db') \gexec
ALTER DATABASE :"mlflow_db" OWNER TO :"mlflow_user";
-- PUBLIC may connect to (and make temporary tables in) every new database: not to this one.
REVOKE ALL ON DATABASE :"mlflow_db" FROM PUBLIC;
GRANT CONNECT, TEMPORARY ON DATABASE :"mlflow_db" TO :"mlflow_user";

-- MLflow's migrations create their tables in the public schema of its database.
\connect -reuse-previous=on :"mlflow_db"
ALTER SCHEMA public OWNER TO :"mlflow_user";
REVOKE ALL ON SCHEMA public FROM PUBLIC;
GRANT USAGE, CREATE ON SCHEMA public TO :"mlflow_user";
\echo 'MLflow role ready'
