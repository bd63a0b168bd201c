-- The roles of the programs and what each may do (migration 0012;
-- docs/OPERATIONS.md, "Database roles"). Applied on every db/migrate run,
-- last, so that what is granted always matches the tables and functions of
-- this tree. The group roles are created NOLOGIN when absent; login users
-- are made members of them by the operator.
--
--   PREFIX_gateway    reads and updates devices and names, appends to
--                     history and admin_audit, runs the outbox, the
--                     per-minute tallies and the firmware policy; reads
--                     admin_tokens and changes them only through
--                     admin_token_add and admin_token_revoke (SECURITY
--                     DEFINER); reads and prunes the change log. No
--                     DELETE on history, admin_audit, devices or names,
--                     no TRUNCATE, no DDL.
--   PREFIX_provision  registers devices and names, appends to history,
--                     the outbox, provision_batches and the change log;
--                     nothing of the admin API (tokens, audit, policy).
--   PREFIX_readonly   SELECT on every table, admin_tokens without the
--                     hashes.
--
-- Everything is revoked from the three roles first, so that a privilege
-- dropped here is dropped in the database too.

DO $$
DECLARE
    prefix text := (SELECT r.prefix FROM db_roles r);
    asked text := nullif(current_setting('ddns.role_prefix', true), '');
    sch text := quote_ident(current_schema());
    gw text := quote_ident(prefix || '_gateway');
    prov text := quote_ident(prefix || '_provision');
    ro text := quote_ident(prefix || '_readonly');
    role text;
    tbl text;
BEGIN
    IF asked IS NOT NULL AND asked <> prefix THEN
        RAISE EXCEPTION 'this database''s roles are %_*, not %_* (the prefix is chosen once)',
            prefix, asked;
    END IF;
    FOREACH role IN ARRAY ARRAY[prefix || '_gateway', prefix || '_provision',
                                 prefix || '_readonly'] LOOP
        IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = role) THEN
            BEGIN
                EXECUTE format('CREATE ROLE %I NOLOGIN', role);
            EXCEPTION WHEN insufficient_privilege THEN
                RAISE EXCEPTION 'role % does not exist and this user may not create it',
                    role
                    USING HINT = format('as a superuser: CREATE ROLE %I NOLOGIN; (and the '
                                        'same for %s_provision, %s_readonly)',
                                        prefix || '_gateway', prefix, prefix);
            END;
        END IF;
    END LOOP;

    EXECUTE format('REVOKE ALL ON ALL TABLES IN SCHEMA %s FROM %s, %s, %s', sch, gw, prov, ro);
    EXECUTE format('REVOKE ALL ON ALL SEQUENCES IN SCHEMA %s FROM %s, %s, %s', sch, gw, prov, ro);
    EXECUTE format('GRANT USAGE ON SCHEMA %s TO %s, %s, %s', sch, gw, prov, ro);

    -- the gateway (with its publisher, operations listener and admin API)
    EXECUTE format('GRANT SELECT, UPDATE ON devices TO %s', gw);
    EXECUTE format('GRANT SELECT, INSERT, UPDATE ON names TO %s', gw);
    EXECUTE format('GRANT SELECT, INSERT ON history, admin_audit TO %s', gw);
    EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON dns_outbox, source_failures, '
                   'update_minutes TO %s', gw);
    EXECUTE format('GRANT SELECT, INSERT, DELETE ON fleet_deltas, firmware_policy TO %s', gw);
    EXECUTE format('GRANT SELECT, UPDATE ON firmware_policy_state TO %s', gw);
    EXECUTE format('GRANT SELECT ON admin_tokens, provision_batches, schema_version, '
                   'db_roles TO %s', gw);
    EXECUTE format('GRANT SELECT, INSERT, DELETE ON ddns_changes, ddns_change_marks TO %s', gw);
    EXECUTE format('GRANT SELECT, UPDATE ON ddns_change_horizon TO %s', gw);

    -- ddns-provision (its COPY goes to a temporary table)
    EXECUTE format('GRANT SELECT, INSERT, UPDATE ON devices, names TO %s', prov);
    EXECUTE format('GRANT SELECT, INSERT ON history, dns_outbox, provision_batches TO %s', prov);
    EXECUTE format('GRANT INSERT ON fleet_deltas, ddns_changes TO %s', prov);
    EXECUTE format('GRANT SELECT ON schema_version, db_roles TO %s', prov);
    BEGIN
        EXECUTE format('GRANT TEMPORARY ON DATABASE %I TO %s', current_database(), prov);
    EXCEPTION WHEN insufficient_privilege THEN
        -- not the database's owner: PUBLIC's TEMPORARY (the default) must do
        RAISE NOTICE 'db/migrate: cannot grant TEMPORARY on the database to %', prov;
    END;

    -- reading
    EXECUTE format('GRANT SELECT ON devices, names, history, dns_outbox, provision_batches, '
                   'admin_audit, firmware_policy, firmware_policy_state, source_failures, '
                   'update_minutes, fleet_deltas, schema_version, db_roles, ddns_changes, '
                   'ddns_change_horizon, ddns_change_marks TO %s', ro);
    EXECUTE format('GRANT SELECT (token_id, scope, comment, created_at, created_by, expires_at, '
                   'revoked_at, parent_id) ON admin_tokens TO %s', ro);

    -- sequences of the tables each role appends to
    FOR tbl IN SELECT pg_get_serial_sequence(t, c) FROM (VALUES
                   ('names', 'name_id'), ('history', 'id'), ('dns_outbox', 'id'),
                   ('admin_audit', 'audit_id'), ('fleet_deltas', 'id')) v(t, c) LOOP
        EXECUTE format('GRANT USAGE ON SEQUENCE %s TO %s', tbl, gw);
    END LOOP;
    FOR tbl IN SELECT pg_get_serial_sequence(t, c) FROM (VALUES
                   ('names', 'name_id'), ('history', 'id'), ('dns_outbox', 'id'),
                   ('provision_batches', 'batch_id'), ('fleet_deltas', 'id')) v(t, c) LOOP
        EXECUTE format('GRANT USAGE ON SEQUENCE %s TO %s', tbl, prov);
    END LOOP;

    -- The functions that run as the owner: a fixed search_path, and only
    -- the gateway (and the owner) may call them.
    FOR tbl IN SELECT p.oid::regprocedure::text FROM pg_proc p
               WHERE p.pronamespace = current_schema()::regnamespace AND p.prosecdef LOOP
        EXECUTE format('ALTER FUNCTION %s SET search_path = %s, pg_temp', tbl, sch);
        EXECUTE format('REVOKE ALL ON FUNCTION %s FROM PUBLIC', tbl);
        EXECUTE format('GRANT EXECUTE ON FUNCTION %s TO %s', tbl, gw);
    END LOOP;
END $$;
