-- The tables that are only ever appended to: history (one row per record
-- change) and admin_audit (every write through the admin API). Their
-- triggers (0001, 0006) refuse UPDATE and DELETE.

CREATE OR REPLACE FUNCTION history_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'history is append-only';
END $$;

CREATE OR REPLACE FUNCTION admin_audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'admin_audit is append-only';
END $$;
