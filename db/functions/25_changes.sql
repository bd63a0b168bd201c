-- The change log (migration 0014): what lets a gateway answer a poll that
-- changes nothing from memory and still never answer nochg for an address
-- the database no longer holds (docs/ARCHITECTURE.md, "The quiet cache").
--
-- Writers: the triggers of 0014 append (transaction id, device) for every
-- change of what a quiet answer reads (20_update.sql): a device's kid,
-- generation, status, last_ts, user_agent, firmware, last_result,
-- fail_count or dyndns2; a name's owner, label, zone or addresses; a
-- deleted device or name; a name added. A statement that adds more than
-- 100 names (a provisioning batch) appends one row with device_id '' for
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

CREATE OR REPLACE FUNCTION ddns_changes_name() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO ddns_changes (device_id) VALUES (OLD.device_id);
    IF TG_OP = 'UPDATE' AND NEW.device_id <> OLD.device_id THEN
        INSERT INTO ddns_changes (device_id) VALUES (NEW.device_id);
    END IF;
    RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION ddns_changes_names_added() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF (SELECT count(*) FROM (SELECT 1 FROM changes_new LIMIT 101) s) > 100 THEN
        INSERT INTO ddns_changes (device_id) VALUES ('');
    ELSE
        INSERT INTO ddns_changes (device_id) SELECT DISTINCT device_id FROM changes_new;
    END IF;
    RETURN NULL;
END $$;

-- What changed since p_since (a snapshot this function returned before;
-- NULL the first time): one row per change (device, transaction id) that
-- is visible now and was not in p_since, each with the new snapshot to
-- pass next time, the server's clock in whole seconds, and complete (false
-- when p_since is NULL or older than the pruned rows: the caller cannot
-- know what changed and drops everything). A row with device NULL when
-- nothing changed. Read-only, one index range from p_since's xmin.
CREATE OR REPLACE FUNCTION ddns_changes_since(p_since pg_snapshot)
RETURNS TABLE (snap pg_snapshot, db_now bigint, complete boolean, device text, xid xid8)
LANGUAGE sql STABLE AS $$
    WITH h AS (
        SELECT pg_current_snapshot() AS s, floor(extract(epoch FROM now()))::bigint AS t,
               coalesce(pg_snapshot_xmin(p_since) >= (SELECT pruned FROM ddns_change_horizon),
                        false) AS complete
    )
    SELECT h.s, h.t, h.complete, c.device_id, c.xid
        FROM h LEFT JOIN ddns_changes c
            ON h.complete AND c.xid >= pg_snapshot_xmin(p_since)
           AND NOT pg_visible_in_snapshot(c.xid, p_since)
$$;

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
