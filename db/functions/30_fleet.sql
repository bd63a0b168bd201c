-- The fleet's counts (admin_fleet(), GET /api/v1/fleet) as deltas in
-- fleet_deltas: (dimension, value, +n or -n), kept by the triggers on
-- devices (0006) and folded every minute, so that the overview never scans
-- devices.

CREATE OR REPLACE FUNCTION fleet_rows_delta() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- one statement: every row inserted (COPY, INSERT ... SELECT) or deleted
    IF TG_OP = 'INSERT' THEN
        INSERT INTO fleet_deltas (dim, key, n)
            SELECT 'status', status, count(*) FROM fleet_new GROUP BY status
            UNION ALL SELECT 'model', coalesce(model, ''), count(*) FROM fleet_new GROUP BY 2
            UNION ALL SELECT 'firmware', coalesce(firmware, ''), count(*) FROM fleet_new GROUP BY 2
            UNION ALL SELECT 'kid', kid, count(*) FROM fleet_new GROUP BY kid
            UNION ALL SELECT 'seen_day', seen_day::text, count(*) FROM fleet_new GROUP BY 2;
    ELSE
        INSERT INTO fleet_deltas (dim, key, n)
            SELECT 'status', status, -count(*) FROM fleet_old GROUP BY status
            UNION ALL SELECT 'model', coalesce(model, ''), -count(*) FROM fleet_old GROUP BY 2
            UNION ALL SELECT 'firmware', coalesce(firmware, ''), -count(*) FROM fleet_old GROUP BY 2
            UNION ALL SELECT 'kid', kid, -count(*) FROM fleet_old GROUP BY kid
            UNION ALL SELECT 'seen_day', seen_day::text, -count(*) FROM fleet_old GROUP BY 2;
    END IF;
    RETURN NULL;
END $$;

-- One device whose counted values changed (fires only then: the update
-- path's writes of last_seen and last_ts never reach it).
CREATE OR REPLACE FUNCTION fleet_row_delta() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO fleet_deltas (dim, key, n)
        SELECT t.dim, t.key, t.n FROM (VALUES
            ('status', OLD.status, -1, OLD.status IS DISTINCT FROM NEW.status),
            ('status', NEW.status, 1, OLD.status IS DISTINCT FROM NEW.status),
            ('model', coalesce(OLD.model, ''), -1, OLD.model IS DISTINCT FROM NEW.model),
            ('model', coalesce(NEW.model, ''), 1, OLD.model IS DISTINCT FROM NEW.model),
            ('firmware', coalesce(OLD.firmware, ''), -1, OLD.firmware IS DISTINCT FROM NEW.firmware),
            ('firmware', coalesce(NEW.firmware, ''), 1, OLD.firmware IS DISTINCT FROM NEW.firmware),
            ('kid', OLD.kid, -1, OLD.kid IS DISTINCT FROM NEW.kid),
            ('kid', NEW.kid, 1, OLD.kid IS DISTINCT FROM NEW.kid),
            ('seen_day', OLD.seen_day::text, -1, OLD.seen_day IS DISTINCT FROM NEW.seen_day),
            ('seen_day', NEW.seen_day::text, 1, OLD.seen_day IS DISTINCT FROM NEW.seen_day)
        ) t(dim, key, n, changed)
        WHERE t.changed;
    RETURN NULL;
END $$;

-- Folds the deltas into one row per (dim, key); rows appended meanwhile
-- are kept (they are not in the DELETE's snapshot). One gateway at a time
-- (the others skip). Returns the number of rows folded, or -1 when skipped.
CREATE OR REPLACE FUNCTION admin_fleet_compact() RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    folded bigint;
BEGIN
    IF NOT pg_try_advisory_xact_lock(hashtext('ddns admin_fleet_compact')) THEN
        RETURN -1;
    END IF;
    WITH d AS (DELETE FROM fleet_deltas RETURNING dim, key, n),
         f AS (INSERT INTO fleet_deltas (dim, key, n)
               SELECT dim, key, sum(n) FROM d GROUP BY dim, key HAVING sum(n) <> 0)
    SELECT count(*) INTO folded FROM d;
    RETURN folded;
END $$;
