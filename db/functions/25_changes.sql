-- The change log (migration 0014): what lets a gateway answer a poll that
-- changes nothing from memory and still never answer nochg for an address
-- the database no longer holds (docs/ARCHITECTURE.md, "The quiet cache").
--
-- Writers: the triggers of 0014 append (transaction id, device) for every
-- change of what a quiet answer reads (20_update.sql): a device's kid,
-- generation, status, last_ts, user_agent, firmware, last_result,
-- fail_count, dyndns2 or last_change; a name's owner, label, zone or
-- addresses (not inside ddns_apply_batch(), see below); a
-- deleted device or name; a name added. A statement that adds more than
-- 100 names (a provisioning batch) appends one row with device_id '*' for
-- all of them: every gateway drops its whole cache, which costs one read
-- per device afterwards instead of a row per name now.
--
-- Readers: ddns_changes_since() returns the rows that became visible
-- between a snapshot the caller took before and a new one; a gateway
-- drops what it cached for those devices before it answers from the
-- cache again.

CREATE OR REPLACE FUNCTION ddns_changes_device() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO ddns_changes (device_id) VALUES (OLD.device_id);
    RETURN NULL;
END $$;

-- Inside ddns_apply_batch() (ddns.apply_logs = on) a name's addresses
-- change only together with its device's last_change, whose trigger has
-- logged the device in the same transaction: one row per change, not two.
CREATE OR REPLACE FUNCTION ddns_changes_name() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND NEW.device_id = OLD.device_id
       AND current_setting('ddns.apply_logs', true) = 'on' THEN
        RETURN NULL;
    END IF;
    INSERT INTO ddns_changes (device_id) VALUES (OLD.device_id);
    IF TG_OP = 'UPDATE' AND NEW.device_id <> OLD.device_id THEN
        INSERT INTO ddns_changes (device_id) VALUES (NEW.device_id);
    END IF;
    RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION ddns_changes_names_added() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF (SELECT count(*) FROM (SELECT 1 FROM changes_new LIMIT 101) s) > 100 THEN
        INSERT INTO ddns_changes (device_id) VALUES ('*');
    ELSE
        INSERT INTO ddns_changes (device_id) SELECT DISTINCT device_id FROM changes_new;
    END IF;
    RETURN NULL;
END $$;

-- What changed since p_since (a snapshot this function returned before;
-- NULL the first time), as one line of words separated by spaces: the new
-- snapshot to pass next time, the server's clock in whole seconds, 't' or
-- 'f' (complete: 'f' when p_since is NULL or older than the pruned rows,
-- so that the caller cannot know what changed and drops everything), then
-- for every change visible now and not in p_since its device and
-- transaction id ('*' for every device). Read-only, one index range from
-- p_since's xmin. STABLE: each of its statements reads the caller's one
-- snapshot, the very one it returns (a VOLATILE function would take a new
-- snapshot per statement). One scalar in PL/pgSQL, whose plans are made
-- once per session: a gateway calls it for every barrier, and planning or
-- a set of rows would be most of its cost.
CREATE OR REPLACE FUNCTION ddns_changes_since(p_since pg_snapshot) RETURNS text
LANGUAGE plpgsql STABLE
SET plan_cache_mode = force_generic_plan
AS $$
DECLARE
    complete boolean := coalesce(pg_snapshot_xmin(p_since)
                                 >= (SELECT h.pruned FROM ddns_change_horizon h), false);
    changes text;
BEGIN
    IF complete THEN
        SELECT string_agg(c.device_id || ' ' || c.xid::text, ' ') INTO changes
            FROM ddns_changes c
            WHERE c.xid >= pg_snapshot_xmin(p_since)
              AND NOT pg_visible_in_snapshot(c.xid, p_since);
    END IF;
    RETURN pg_current_snapshot()::text || ' ' || floor(extract(epoch FROM now()))::bigint
           || CASE WHEN complete THEN ' t' ELSE ' f' END || coalesce(' ' || changes, '');
END $$;

-- Deletes the rows older than p_keep (the gateway passes 5 minutes: a
-- reader's snapshot is seconds old) and raises the horizon accordingly;
-- records a mark of now for a later call. Returns the rows deleted.
CREATE OR REPLACE FUNCTION ddns_changes_prune(p_keep interval) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    h xid8;
    n bigint;
BEGIN
    INSERT INTO ddns_change_marks (at, oldest)
        VALUES (now(), pg_snapshot_xmin(pg_current_snapshot()))
        ON CONFLICT (at) DO NOTHING;
    SELECT max(m.oldest) INTO h FROM ddns_change_marks m WHERE m.at < now() - p_keep;
    IF h IS NULL THEN
        RETURN 0;
    END IF;
    DELETE FROM ddns_change_marks m WHERE m.at < now() - p_keep AND m.oldest < h;
    UPDATE ddns_change_horizon SET pruned = greatest(pruned, h);
    DELETE FROM ddns_changes c WHERE c.xid < h;
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END $$;
