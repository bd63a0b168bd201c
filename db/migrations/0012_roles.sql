-- 0012: database roles (docs/OPERATIONS.md, "Database roles").
--
-- The owner (whoever runs db/migrate) owns every table and function and is
-- the only one that changes the schema. Three group roles, NOLOGIN, get only
-- what their programs need (granted by db/functions/90_roles.sql on every
-- run, so that a new function or table is never left ungranted):
--
--   PREFIX_gateway    ddns-gateway: device updates, the DNS publisher, the
--                     operations listener and the admin API
--   PREFIX_provision  ddns-provision
--   PREFIX_readonly   reports, dashboards, 'ddnsctl token list'
--
-- PREFIX is 'ddns' unless db/migrate was given --role-prefix when this
-- migration ran; it is recorded in db_roles and kept. Roles are shared by
-- all databases of a PostgreSQL cluster: two deployments in one cluster
-- need two prefixes.
--
-- Also here:
--   * BEFORE TRUNCATE triggers on the append-only tables (history,
--     admin_audit, provision_batches): their row triggers do not fire on
--     TRUNCATE, which only the owner may run and now cannot either;
--     provision_batches becomes append-only as well.
--   * admin_tokens.parent_id: the token that created a token. A token
--     created by a token never outlives, out-ranks or survives the
--     revocation of its creator (triggers of db/functions/50_admin_write.sql);
--     the tokens that existing tokens created are linked to them from
--     created_by, and those of revoked or expired creators follow them now.

CREATE TABLE db_roles (
    one    boolean PRIMARY KEY DEFAULT true CHECK (one),
    prefix text NOT NULL CHECK (prefix ~ '^[a-z][a-z0-9_]{0,39}$')
);
INSERT INTO db_roles (prefix)
    VALUES (coalesce(nullif(current_setting('ddns.role_prefix', true), ''), 'ddns'));

CREATE OR REPLACE FUNCTION append_only_refuse() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is append-only', TG_TABLE_NAME;
END $$;

CREATE TRIGGER history_no_truncate BEFORE TRUNCATE ON history
    FOR EACH STATEMENT EXECUTE FUNCTION append_only_refuse();
CREATE TRIGGER admin_audit_no_truncate BEFORE TRUNCATE ON admin_audit
    FOR EACH STATEMENT EXECUTE FUNCTION append_only_refuse();
CREATE TRIGGER provision_batches_no_update BEFORE UPDATE OR DELETE OR TRUNCATE
    ON provision_batches FOR EACH STATEMENT EXECUTE FUNCTION append_only_refuse();

ALTER TABLE admin_tokens ADD COLUMN parent_id bigint REFERENCES admin_tokens (token_id);
UPDATE admin_tokens t SET parent_id = substr(t.created_by, 7)::bigint
    WHERE t.created_by ~ '^token [0-9]{1,18}$'
      AND EXISTS (SELECT 1 FROM admin_tokens p WHERE p.token_id = substr(t.created_by, 7)::bigint);
CREATE INDEX admin_tokens_parent_idx ON admin_tokens (parent_id) WHERE parent_id IS NOT NULL;

-- Descendants of revoked or expiring tokens: revoked with them, and
-- expiring no later than them (ancestors first, so a chain settles in one
-- statement each).
WITH RECURSIVE chain AS (
    SELECT token_id, revoked_at, expires_at FROM admin_tokens WHERE parent_id IS NULL
    UNION ALL
    SELECT c.token_id,
           coalesce(c.revoked_at, p.revoked_at),
           CASE WHEN p.expires_at IS NULL THEN c.expires_at
                WHEN c.expires_at IS NULL THEN p.expires_at
                ELSE least(c.expires_at, p.expires_at) END
    FROM admin_tokens c JOIN chain p ON c.parent_id = p.token_id
)
UPDATE admin_tokens t SET revoked_at = chain.revoked_at, expires_at = chain.expires_at
    FROM chain
    WHERE t.token_id = chain.token_id
      AND (t.revoked_at IS DISTINCT FROM chain.revoked_at
           OR t.expires_at IS DISTINCT FROM chain.expires_at);

-- Objects created by anyone but the owner: none. (PostgreSQL 15 and later
-- already give PUBLIC no CREATE on schema public; older ones did.)
DO $$
BEGIN
    REVOKE CREATE ON SCHEMA public FROM PUBLIC;
EXCEPTION WHEN insufficient_privilege THEN
    RAISE WARNING 'db/migrate: cannot revoke CREATE on schema public from PUBLIC (not its '
                  'owner); do it as a superuser';
END $$;
