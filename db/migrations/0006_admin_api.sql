-- 0006: the admin API of the gateway's admin listener (docs/ADMIN-API.md).
--
--   admin_tokens       bearer tokens, stored as the SHA-256 of the token only
--   admin_audit        every write through the admin API (append-only)
--   firmware_policy    the firmware policy set by operators; every gateway
--                      adds these rules to its [firmware] section and picks up
--                      changes within seconds (firmware_policy_state.version)
--   update_minutes     per-minute counts of update answers, flushed by each
--                      gateway from its counters every few seconds
--   source_failures    failed authentications per source address and minute,
--                      flushed the same way
--   devices            firmware, user agent, last answer and the day last
--                      seen of each device, recorded by ddns_apply_request
--                      (the 11-argument form)
--   fleet_deltas       the fleet's counts by status, model, firmware, key id
--                      and day last seen, kept by triggers on devices as
--                      appended deltas and compacted every minute, so that
--                      the fleet overview never scans devices
--
-- No secret of any kind, as before: a token is recorded by its hash.

CREATE TABLE admin_tokens (
    token_id     bigserial PRIMARY KEY,
    token_sha256 text NOT NULL UNIQUE CHECK (token_sha256 ~ '^[0-9a-f]{64}$'),
    scope        text NOT NULL CHECK (scope IN ('read', 'write')),
    comment      text NOT NULL DEFAULT ''
                 CHECK (length(comment) <= 200 AND comment !~ '[[:cntrl:]]'),
    created_at   timestamptz NOT NULL DEFAULT now(),
    -- "ddnsctl (database)" or the token that created it ("token 3")
    created_by   text NOT NULL,
    expires_at   timestamptz,
    revoked_at   timestamptz
);

CREATE TABLE admin_audit (
    audit_id  bigserial PRIMARY KEY,
    at        timestamptz NOT NULL DEFAULT now(),
    token_id  bigint,                 -- NULL: ddnsctl directly on the database
    actor     text NOT NULL,          -- "token 3 (alice laptop)"
    action    text NOT NULL,
    device_id text,
    detail    jsonb NOT NULL DEFAULT '{}',
    source    text NOT NULL           -- the client's address, or "database"
);
CREATE INDEX admin_audit_device_idx ON admin_audit (device_id, audit_id)
    WHERE device_id IS NOT NULL;

CREATE FUNCTION admin_audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'admin_audit is append-only';
END $$;
CREATE TRIGGER admin_audit_no_update BEFORE UPDATE OR DELETE ON admin_audit
    FOR EACH STATEMENT EXECUTE FUNCTION admin_audit_append_only();

-- One row per model with a rule: blocked, or the oldest accepted version.
CREATE TABLE firmware_policy (
    model       text PRIMARY KEY CHECK (length(model) BETWEEN 1 AND 64 AND model !~ '[,/[:space:]]'
                                        AND model = lower(model)),
    blocked     boolean NOT NULL DEFAULT false,
    min_version text CHECK (min_version ~ '^[0-9][0-9A-Za-z.+_~-]{0,31}$'),
    CHECK (blocked OR min_version IS NOT NULL)
);
CREATE TABLE firmware_policy_state (
    one        boolean PRIMARY KEY DEFAULT true CHECK (one),
    version    bigint NOT NULL,
    changed_at timestamptz NOT NULL DEFAULT now()
);
INSERT INTO firmware_policy_state (version) VALUES (0);

-- Failed authentications per source address (an IPv4 address or an IPv6
-- /64) and minute, flushed by each gateway from its per-source table with
-- the per-minute counts; kept for a day.
CREATE TABLE source_failures (
    minute   timestamptz NOT NULL,
    source   text NOT NULL,
    failures bigint NOT NULL,
    PRIMARY KEY (minute, source)
);

CREATE TABLE update_minutes (
    minute  timestamptz NOT NULL,
    gateway text NOT NULL,
    updates bigint NOT NULL DEFAULT 0,
    errors  bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (minute, gateway)
);

ALTER TABLE devices
    ADD COLUMN firmware       text,
    ADD COLUMN user_agent     text,
    ADD COLUMN last_result    text,
    ADD COLUMN last_result_at timestamptz,
    -- answers other than good/nochg since the last good/nochg
    ADD COLUMN fail_count     integer NOT NULL DEFAULT 0,
    -- the day of last_seen (registration day until first seen), written at
    -- most once a day per device: the fleet's "not seen for N days"
    ADD COLUMN seen_day       date NOT NULL DEFAULT current_date;
UPDATE devices SET seen_day = coalesce(last_seen, created_at)::date;

-- The fleet's counts as deltas: (dimension, value, +n or -n). The sum per
-- (dim, key) is the number of devices with that value. Appending never
-- contends for a row; admin_fleet_compact() folds the rows every minute.
CREATE TABLE fleet_deltas (
    id  bigserial PRIMARY KEY,
    dim text NOT NULL CHECK (dim IN ('status', 'model', 'firmware', 'kid', 'seen_day')),
    key text NOT NULL,          -- '' for NULL (no model, no firmware reported)
    n   bigint NOT NULL
);

CREATE FUNCTION fleet_rows_delta() RETURNS trigger LANGUAGE plpgsql AS $$
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
CREATE TRIGGER devices_fleet_insert AFTER INSERT ON devices
    REFERENCING NEW TABLE AS fleet_new FOR EACH STATEMENT EXECUTE FUNCTION fleet_rows_delta();
CREATE TRIGGER devices_fleet_delete AFTER DELETE ON devices
    REFERENCING OLD TABLE AS fleet_old FOR EACH STATEMENT EXECUTE FUNCTION fleet_rows_delta();

-- One device whose counted values changed (fires only then: the update
-- path's writes of last_seen and last_ts never reach it).
CREATE FUNCTION fleet_row_delta() RETURNS trigger LANGUAGE plpgsql AS $$
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
CREATE TRIGGER devices_fleet_update AFTER UPDATE OF status, model, firmware, kid, seen_day
    ON devices FOR EACH ROW
    WHEN (OLD.status IS DISTINCT FROM NEW.status OR OLD.model IS DISTINCT FROM NEW.model
          OR OLD.firmware IS DISTINCT FROM NEW.firmware OR OLD.kid IS DISTINCT FROM NEW.kid
          OR OLD.seen_day IS DISTINCT FROM NEW.seen_day)
    EXECUTE FUNCTION fleet_row_delta();

-- The devices registered before this migration.
INSERT INTO fleet_deltas (dim, key, n)
    SELECT 'status', status, count(*) FROM devices GROUP BY status
    UNION ALL SELECT 'model', coalesce(model, ''), count(*) FROM devices GROUP BY 2
    UNION ALL SELECT 'firmware', coalesce(firmware, ''), count(*) FROM devices GROUP BY 2
    UNION ALL SELECT 'kid', kid, count(*) FROM devices GROUP BY kid
    UNION ALL SELECT 'seen_day', seen_day::text, count(*) FROM devices GROUP BY 2;

-- Folds the deltas into one row per (dim, key); rows appended meanwhile
-- are kept (they are not in the DELETE's snapshot). One gateway at a time
-- (the others skip). Returns the number of rows folded, or -1 when skipped.
CREATE FUNCTION admin_fleet_compact() RETURNS bigint LANGUAGE plpgsql AS $$
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

-- Search: a MAC's beginning (the primary key), a serial, a hostname
-- label's beginning; the failing devices. A MAC's end needs no index of its
-- own (admin_mac_suffix). Columns written on every
-- update (last_seen, names.ipv4/ipv6) get no index, so that those updates
-- stay HOT; searching by them scans.
CREATE INDEX devices_serial_idx ON devices (serial text_pattern_ops) WHERE serial IS NOT NULL;
CREATE INDEX devices_failing_idx ON devices (fail_count DESC, device_id) WHERE fail_count > 0;
-- In the C collation the primary key and UNIQUE (label, zone) serve
-- "LIKE 'prefix%'" already; other collations need pattern indexes, which
-- would only slow down registering devices in the C collation.
DO $$
BEGIN
    IF (SELECT datcollate FROM pg_database WHERE datname = current_database())
       NOT IN ('C', 'POSIX') THEN
        CREATE INDEX devices_id_pattern_idx ON devices (device_id text_pattern_ops);
        CREATE INDEX names_label_pattern_idx ON names (label text_pattern_ops);
    END IF;
END $$;

-- The native and dyndns2 update, as ddns_apply_request of 0005, which also
-- records what the device said about itself (its User-Agent and the firmware
-- version read from it) and the answer. The device row is written a second
-- time only when one of these changed, so a steady stream of nochg answers
-- costs nothing more.
CREATE FUNCTION ddns_apply_request(p_device text, p_kid text, p_ts bigint,
                                   p_ipv4 inet, p_ipv6 inet, p_source inet,
                                   p_fqdns text[], p_offline boolean,
                                   p_min_interval integer,
                                   p_agent text, p_firmware text)
RETURNS TABLE (ord integer, fqdn text, result text, ipv4 inet, ipv6 inet,
               retry_after integer)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    summary text;
    bad     text;
    anygood boolean := false;
    ok      boolean;
BEGIN
    FOR ord, fqdn, result, ipv4, ipv6, retry_after IN
        SELECT * FROM ddns_apply_request(p_device, p_kid, p_ts, p_ipv4, p_ipv6, p_source,
                                         p_fqdns, p_offline, p_min_interval) LOOP
        -- the device's answer: the first refusal, else good if any, else nochg
        IF result = 'good' THEN
            anygood := true;
        ELSIF result <> 'nochg' AND bad IS NULL THEN
            bad := CASE WHEN result = 'unknown' THEN 'badauth' ELSE result END;
        END IF;
        RETURN NEXT;
    END LOOP;
    summary := coalesce(bad, CASE WHEN anygood THEN 'good' ELSE 'nochg' END);
    ok := summary IN ('good', 'nochg');
    UPDATE devices d
        SET user_agent = left(p_agent, 200),
            firmware = coalesce(p_firmware, d.firmware),
            last_result = summary,
            last_result_at = now(),
            fail_count = CASE WHEN ok THEN 0 ELSE d.fail_count + 1 END,
            seen_day = CASE WHEN summary = 'badauth' THEN d.seen_day ELSE current_date END
        WHERE d.device_id = p_device
          AND (d.user_agent IS DISTINCT FROM left(p_agent, 200)
               OR (summary <> 'badauth' AND d.seen_day <> current_date)
               OR (p_firmware IS NOT NULL AND d.firmware IS DISTINCT FROM p_firmware)
               OR d.last_result IS DISTINCT FROM summary
               OR NOT ok);
END $$;

-- ---- reading -----------------------------------------------------------

-- "3c5ab4f09a21" -> "3C:5A:B4:F0:9A:21"
CREATE FUNCTION admin_mac(p_id text) RETURNS text LANGUAGE sql IMMUTABLE AS $$
    SELECT upper(substr(p_id, 1, 2) || ':' || substr(p_id, 3, 2) || ':' || substr(p_id, 5, 2)
                 || ':' || substr(p_id, 7, 2) || ':' || substr(p_id, 9, 2) || ':'
                 || substr(p_id, 11, 2))
$$;

-- The devices whose id ends with p_suffix (1 to 11 hex digits): "3F:9A:21"
-- of "camera 3F:9A:21". A fleet's MACs share few vendor prefixes, so the
-- distinct beginnings of the missing length are read with a skip scan of
-- the primary key (one index probe each) and the candidates looked up by
-- primary key; past 4096 beginnings (a short suffix) the table is scanned.
-- Costs no index of its own, which would slow down registering devices.
CREATE FUNCTION admin_mac_suffix(p_suffix text) RETURNS SETOF text
LANGUAGE plpgsql STABLE AS $$
DECLARE
    k      integer := 12 - length(p_suffix);
    heads  text[];
BEGIN
    IF k < 1 OR p_suffix !~ '^[0-9a-f]+$' THEN
        RETURN;
    END IF;
    WITH RECURSIVE h(x) AS (
        (SELECT left(device_id, k) FROM devices ORDER BY device_id LIMIT 1)
        UNION ALL
        SELECT (SELECT left(d.device_id, k) FROM devices d
                WHERE d.device_id > h.x || 'g' ORDER BY d.device_id LIMIT 1)
        FROM h WHERE h.x IS NOT NULL
    )
    SELECT array_agg(x) INTO heads FROM (SELECT x FROM h WHERE x IS NOT NULL LIMIT 4097) t;
    IF coalesce(array_length(heads, 1), 0) <= 4096 THEN
        RETURN QUERY SELECT d.device_id FROM devices d
            WHERE d.device_id = ANY (SELECT x || p_suffix FROM unnest(heads) x);
    ELSE
        RETURN QUERY SELECT d.device_id FROM devices d WHERE right(d.device_id, 12 - k) = p_suffix;
    END IF;
END $$;

-- One device as the list entry of GET /api/v1/devices.
CREATE FUNCTION admin_device_json(d devices) RETURNS jsonb LANGUAGE sql STABLE AS $$
    SELECT jsonb_build_object(
        'device_id', d.device_id, 'mac', admin_mac(d.device_id), 'serial', d.serial,
        'model', d.model, 'firmware', d.firmware, 'kid', d.kid, 'batch', d.batch_id,
        'status', d.status,
        'names', coalesce((SELECT jsonb_agg(n.label || '.' || n.zone ORDER BY n.name_id)
                           FROM names n WHERE n.device_id = d.device_id), '[]'),
        'ipv4', (SELECT host(n.ipv4) FROM names n WHERE n.device_id = d.device_id
                 AND n.ipv4 IS NOT NULL ORDER BY n.name_id LIMIT 1),
        'ipv6', (SELECT host(n.ipv6) FROM names n WHERE n.device_id = d.device_id
                 AND n.ipv6 IS NOT NULL ORDER BY n.name_id LIMIT 1),
        'ttl', (SELECT n.ttl FROM names n WHERE n.device_id = d.device_id
                ORDER BY n.name_id LIMIT 1),
        'first_seen', d.created_at, 'last_seen', d.last_seen,
        'last_source', host(d.last_source),
        'last_result', d.last_result, 'last_result_at', d.last_result_at,
        'fail_count', d.fail_count)
$$;

-- GET /api/v1/devices/{id}: NULL when there is no such device.
CREATE FUNCTION admin_device_detail(p_device text, p_history integer) RETURNS jsonb
LANGUAGE sql STABLE AS $$
    SELECT admin_device_json(d) || jsonb_build_object(
        'user_agent', d.user_agent,
        'history', coalesce((
            SELECT jsonb_agg(jsonb_build_object('at', h.at, 'fqdn', h.fqdn, 'ipv4', h.ipv4,
                                                'ipv6', h.ipv6, 'source', h.source)
                             ORDER BY h.at DESC, h.fqdn)
            FROM (SELECT at, fqdn, host(source) AS source,
                         host(max(new_address) FILTER (WHERE rrtype = 'A')) AS ipv4,
                         host(max(new_address) FILTER (WHERE rrtype = 'AAAA')) AS ipv6
                  FROM history WHERE device_id = d.device_id
                  GROUP BY at, fqdn, source ORDER BY at DESC LIMIT p_history) h), '[]'),
        'actions', coalesce((
            SELECT jsonb_agg(jsonb_build_object('at', a.at, 'actor', a.actor,
                                                'action', a.action, 'detail', a.detail,
                                                'source', a.source)
                             ORDER BY a.at DESC)
            FROM (SELECT at, actor, action, detail, source FROM admin_audit
                  WHERE device_id = d.device_id
                  UNION ALL
                  SELECT created_at, operator, 'provision ' || command,
                         jsonb_strip_nulls(jsonb_build_object('kid', kid,
                             'previous_kid', previous_kid, 'fqdn', fqdn,
                             'previous_fqdn', previous_fqdn)),
                         'ddns-provision'
                  FROM provision_batches WHERE device_id = d.device_id
                  ORDER BY 1 DESC LIMIT p_history) a), '[]'))
    FROM devices d WHERE d.device_id = p_device
$$;

-- GET /api/v1/fleet: the counts from fleet_deltas (no scan of devices),
-- the per-minute counts and the outbox.
CREATE FUNCTION admin_fleet(p_days integer) RETURNS jsonb LANGUAGE sql STABLE AS $$
    WITH c AS (
        SELECT dim, key, sum(n) AS n FROM fleet_deltas GROUP BY dim, key HAVING sum(n) <> 0
    ), m AS (
        SELECT s.minute, coalesce(sum(u.updates), 0) AS updates,
               coalesce(sum(u.errors), 0) AS errors
        FROM generate_series(date_trunc('minute', now()) - interval '59 minutes',
                             date_trunc('minute', now()), interval '1 minute') s(minute)
        LEFT JOIN update_minutes u ON u.minute = s.minute
        GROUP BY s.minute
    )
    SELECT jsonb_build_object(
        'devices', coalesce((SELECT sum(n) FROM c WHERE dim = 'status'), 0),
        'by_status', coalesce((SELECT jsonb_object_agg(key, n) FROM c WHERE dim = 'status'), '{}'),
        'by_model', coalesce((SELECT jsonb_object_agg(key, n) FROM c WHERE dim = 'model'), '{}'),
        'by_firmware', coalesce((SELECT jsonb_object_agg(key, n) FROM c WHERE dim = 'firmware'),
                                '{}'),
        'by_kid', coalesce((SELECT jsonb_object_agg(key, n) FROM c WHERE dim = 'kid'), '{}'),
        'per_minute', (SELECT jsonb_agg(jsonb_build_object('minute', minute, 'updates', updates,
                                                           'errors', errors) ORDER BY minute)
                       FROM m),
        'outbox', (SELECT jsonb_build_object('depth', count(*), 'oldest_age_s',
                       coalesce(round(EXTRACT(EPOCH FROM now() - min(created_at))::numeric, 3),
                                0))
                   FROM dns_outbox),
        'not_seen', jsonb_build_object('days', p_days, 'count',
                       coalesce((SELECT sum(n) FROM c WHERE dim = 'seen_day'
                                 AND key::date < current_date - p_days), 0)))
$$;

-- GET /api/v1/fleet/failing: the devices with most refusals since their
-- last good answer, and the source addresses with most failed
-- authentications in the last hour or most failing devices last seen there.
CREATE FUNCTION admin_failing(p_limit integer) RETURNS jsonb LANGUAGE sql STABLE AS $$
    WITH f AS (
        SELECT source, sum(failures) AS failures FROM source_failures
        WHERE minute >= date_trunc('minute', now()) - interval '59 minutes'
        GROUP BY source
    ), d AS (
        SELECT host(last_source) AS source, count(*) AS devices, sum(fail_count) AS refusals
        FROM devices WHERE fail_count > 0 AND last_source IS NOT NULL
        GROUP BY last_source
    ), s AS (
        SELECT coalesce(f.source, d.source) AS source, coalesce(f.failures, 0) AS auth_failures,
               coalesce(d.devices, 0) AS devices, coalesce(d.refusals, 0) AS refusals
        FROM f FULL JOIN d ON d.source = f.source
        ORDER BY coalesce(f.failures, 0) + coalesce(d.refusals, 0) DESC, 1
        LIMIT p_limit
    )
    SELECT jsonb_build_object(
        'devices', coalesce((SELECT jsonb_agg(admin_device_json(d) ORDER BY d.fail_count DESC,
                                              d.device_id)
                             FROM (SELECT * FROM devices WHERE fail_count > 0
                                   ORDER BY fail_count DESC, device_id LIMIT p_limit) d), '[]'),
        'sources', coalesce((SELECT jsonb_agg(jsonb_build_object(
                                 'source', source, 'auth_failures', auth_failures,
                                 'devices', devices, 'failures', auth_failures + refusals)
                                 ORDER BY auth_failures + refusals DESC, source)
                             FROM s), '[]'))
$$;

-- GET /api/v1/policy
CREATE FUNCTION admin_policy_json() RETURNS jsonb LANGUAGE sql STABLE AS $$
    SELECT jsonb_build_object(
        'blocked_models', coalesce((SELECT jsonb_agg(model ORDER BY model)
                                    FROM firmware_policy WHERE blocked), '[]'),
        'min_firmware', coalesce((SELECT jsonb_object_agg(model, min_version)
                                  FROM firmware_policy WHERE min_version IS NOT NULL), '{}'),
        'version', (SELECT version FROM firmware_policy_state),
        'changed_at', (SELECT changed_at FROM firmware_policy_state))
$$;

-- ---- writing -----------------------------------------------------------
-- Every function below is one transaction with its admin_audit row and
-- returns (status, body): the HTTP status and the JSON answer.

CREATE FUNCTION admin_audit_add(p_token bigint, p_actor text, p_source text, p_action text,
                                p_device text, p_detail jsonb) RETURNS void
LANGUAGE sql AS $$
    INSERT INTO admin_audit (token_id, actor, action, device_id, detail, source)
        VALUES (p_token, p_actor, p_action, p_device, coalesce(p_detail, '{}'), p_source)
$$;

-- Queues the device's current records again (after a TTL change, or on
-- demand); returns the number of records queued.
CREATE FUNCTION admin_queue_records(p_device text) RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    n integer;
BEGIN
    INSERT INTO dns_outbox (zone, fqdn, rrtype, address, ttl)
        SELECT zone, label || '.' || zone, t.rrtype, t.addr, ttl
        FROM names, LATERAL (VALUES ('A', ipv4), ('AAAA', ipv6)) t(rrtype, addr)
        WHERE device_id = p_device AND t.addr IS NOT NULL;
    GET DIAGNOSTICS n = ROW_COUNT;
    IF n > 0 THEN
        PERFORM pg_notify('ddns_outbox', '');
    END IF;
    RETURN n;
END $$;

CREATE FUNCTION admin_set_status(p_token bigint, p_actor text, p_source text, p_device text,
                                 p_revoke boolean, OUT status integer, OUT body jsonb)
LANGUAGE plpgsql AS $$
DECLARE
    cur  text;
    want text := CASE WHEN p_revoke THEN 'revoked' ELSE 'active' END;
    n    integer := 0;
BEGIN
    SELECT d.status INTO cur FROM devices d WHERE d.device_id = p_device FOR UPDATE;
    IF NOT FOUND THEN
        status := 404;
        body := jsonb_build_object('error', 'no such device', 'field', 'device_id');
        RETURN;
    END IF;
    IF cur <> want THEN
        UPDATE devices SET status = want WHERE device_id = p_device;
        IF p_revoke THEN
            INSERT INTO history (device_id, fqdn, rrtype, old_address, new_address)
                SELECT device_id, label || '.' || zone, t.rrtype, t.addr, NULL
                FROM names, LATERAL (VALUES ('A', ipv4), ('AAAA', ipv6)) t(rrtype, addr)
                WHERE device_id = p_device AND t.addr IS NOT NULL;
            INSERT INTO dns_outbox (zone, fqdn, rrtype, address, ttl)
                SELECT zone, label || '.' || zone, t.rrtype, NULL, ttl
                FROM names, LATERAL (VALUES ('A', ipv4), ('AAAA', ipv6)) t(rrtype, addr)
                WHERE device_id = p_device AND t.addr IS NOT NULL;
            GET DIAGNOSTICS n = ROW_COUNT;
            UPDATE names SET ipv4 = NULL, ipv6 = NULL, updated_at = now()
                WHERE device_id = p_device AND (ipv4 IS NOT NULL OR ipv6 IS NOT NULL);
            IF n > 0 THEN
                PERFORM pg_notify('ddns_outbox', '');
            END IF;
        END IF;
    END IF;
    PERFORM admin_audit_add(p_token, p_actor, p_source,
                            CASE WHEN p_revoke THEN 'revoke' ELSE 'restore' END, p_device,
                            jsonb_build_object('previous_status', cur, 'records_removed', n));
    status := 200;
    body := jsonb_build_object('device_id', p_device, 'status', want,
                               'previous_status', cur, 'changed', cur <> want,
                               'records_removed', n);
END $$;

CREATE FUNCTION admin_republish(p_token bigint, p_actor text, p_source text, p_device text,
                                OUT status integer, OUT body jsonb)
LANGUAGE plpgsql AS $$
DECLARE
    n integer;
BEGIN
    PERFORM 1 FROM devices WHERE device_id = p_device FOR UPDATE;
    IF NOT FOUND THEN
        status := 404;
        body := jsonb_build_object('error', 'no such device', 'field', 'device_id');
        RETURN;
    END IF;
    PERFORM 1 FROM names WHERE device_id = p_device ORDER BY name_id FOR UPDATE;
    n := admin_queue_records(p_device);
    PERFORM admin_audit_add(p_token, p_actor, p_source, 'republish', p_device,
                            jsonb_build_object('records', n));
    status := 200;
    body := jsonb_build_object('device_id', p_device, 'records_queued', n);
END $$;

CREATE FUNCTION admin_set_ttl(p_token bigint, p_actor text, p_source text, p_device text,
                              p_ttl integer, OUT status integer, OUT body jsonb)
LANGUAGE plpgsql AS $$
DECLARE
    n integer;
BEGIN
    PERFORM 1 FROM devices WHERE device_id = p_device FOR UPDATE;
    IF NOT FOUND THEN
        status := 404;
        body := jsonb_build_object('error', 'no such device', 'field', 'device_id');
        RETURN;
    END IF;
    PERFORM 1 FROM names WHERE device_id = p_device ORDER BY name_id FOR UPDATE;
    UPDATE names SET ttl = p_ttl WHERE device_id = p_device;
    n := admin_queue_records(p_device);
    PERFORM admin_audit_add(p_token, p_actor, p_source, 'ttl', p_device,
                            jsonb_build_object('ttl', p_ttl, 'records', n));
    status := 200;
    body := jsonb_build_object('device_id', p_device, 'ttl', p_ttl, 'records_queued', n);
END $$;

-- Adds a name (p_old NULL) or renames p_old ("label.zone") to p_label.p_zone.
-- The new name gets the device's current addresses (of its first name) and
-- is published; a renamed name's old records are deleted.
CREATE FUNCTION admin_name(p_token bigint, p_actor text, p_source text, p_device text,
                           p_old text, p_label text, p_zone text,
                           OUT status integer, OUT body jsonb)
LANGUAGE plpgsql AS $$
DECLARE
    n      names%ROWTYPE;
    first  names%ROWTYPE;
    owner  text;
    st     text;
    dot    integer;
BEGIN
    SELECT d.status INTO st FROM devices d WHERE d.device_id = p_device FOR UPDATE;
    IF NOT FOUND THEN
        status := 404;
        body := jsonb_build_object('error', 'no such device', 'field', 'device_id');
        RETURN;
    END IF;
    PERFORM 1 FROM names WHERE device_id = p_device ORDER BY name_id FOR UPDATE;
    IF p_zone IS NULL THEN
        -- a bare label: the zone of the device's first name
        SELECT zone INTO p_zone FROM names WHERE device_id = p_device ORDER BY name_id LIMIT 1;
        IF NOT FOUND THEN
            status := 400;
            body := jsonb_build_object('error', 'the device has no name yet: give the new name '
                                       || 'with its zone (label.zone)', 'field', 'name');
            RETURN;
        END IF;
    END IF;
    IF p_old IS NOT NULL THEN
        dot := strpos(p_old, '.');
        SELECT * INTO n FROM names
            WHERE device_id = p_device AND dot > 1 AND label = left(p_old, dot - 1)
              AND zone = substr(p_old, dot + 1);
        IF NOT FOUND THEN
            status := 404;
            body := jsonb_build_object('error', 'the device has no name ' || p_old,
                                       'field', 'name');
            RETURN;
        END IF;
    END IF;
    SELECT device_id INTO owner FROM names WHERE label = p_label AND zone = p_zone;
    IF FOUND THEN
        IF owner = p_device AND p_old IS NOT NULL AND n.label = p_label AND n.zone = p_zone THEN
            status := 200;
            body := jsonb_build_object('device_id', p_device, 'name', p_label || '.' || p_zone,
                                       'changed', false);
            RETURN;
        END IF;
        status := 409;
        body := jsonb_build_object('error', 'the name ' || p_label || '.' || p_zone
                                   || CASE WHEN owner = p_device THEN ' is already this device''s'
                                           ELSE ' belongs to another device' END,
                                   'field', 'name');
        RETURN;
    END IF;
    IF p_old IS NULL THEN
        SELECT * INTO first FROM names WHERE device_id = p_device ORDER BY name_id LIMIT 1;
        INSERT INTO names (device_id, label, zone, ipv4, ipv6, ttl, updated_at)
            VALUES (p_device, p_label, p_zone, first.ipv4, first.ipv6, first.ttl, now())
            RETURNING * INTO n;
    ELSE
        INSERT INTO dns_outbox (zone, fqdn, rrtype, address, ttl)
            SELECT n.zone, n.label || '.' || n.zone, t.rrtype, NULL, n.ttl
            FROM (VALUES ('A', n.ipv4), ('AAAA', n.ipv6)) t(rrtype, addr)
            WHERE t.addr IS NOT NULL;
        INSERT INTO history (device_id, fqdn, rrtype, old_address, new_address, source)
            SELECT p_device, n.label || '.' || n.zone, t.rrtype, t.addr, NULL, NULL
            FROM (VALUES ('A', n.ipv4), ('AAAA', n.ipv6)) t(rrtype, addr)
            WHERE t.addr IS NOT NULL;
        UPDATE names SET label = p_label, zone = p_zone, updated_at = now()
            WHERE name_id = n.name_id RETURNING * INTO n;
    END IF;
    INSERT INTO dns_outbox (zone, fqdn, rrtype, address, ttl)
        SELECT n.zone, n.label || '.' || n.zone, t.rrtype, t.addr, n.ttl
        FROM (VALUES ('A', n.ipv4), ('AAAA', n.ipv6)) t(rrtype, addr)
        WHERE t.addr IS NOT NULL;
    INSERT INTO history (device_id, fqdn, rrtype, old_address, new_address, source)
        SELECT p_device, n.label || '.' || n.zone, t.rrtype, NULL, t.addr, NULL
        FROM (VALUES ('A', n.ipv4), ('AAAA', n.ipv6)) t(rrtype, addr)
        WHERE t.addr IS NOT NULL;
    PERFORM pg_notify('ddns_outbox', '');
    PERFORM admin_audit_add(p_token, p_actor, p_source,
                            CASE WHEN p_old IS NULL THEN 'name-add' ELSE 'rename' END, p_device,
                            jsonb_strip_nulls(jsonb_build_object('name', p_label || '.' || p_zone,
                                                                 'previous_name', p_old)));
    status := CASE WHEN p_old IS NULL THEN 201 ELSE 200 END;
    body := jsonb_strip_nulls(jsonb_build_object('device_id', p_device,
                                                 'name', p_label || '.' || p_zone,
                                                 'previous_name', p_old, 'changed', true));
END $$;

-- Moves the device to key id p_kid, like 'ddns-provision reissue' without a
-- new name: the old secret is refused from the commit on.
CREATE FUNCTION admin_reissue(p_token bigint, p_actor text, p_source text, p_device text,
                              p_kid text, OUT status integer, OUT body jsonb)
LANGUAGE plpgsql AS $$
DECLARE
    old text;
BEGIN
    SELECT kid INTO old FROM devices WHERE device_id = p_device FOR UPDATE;
    IF NOT FOUND THEN
        status := 404;
        body := jsonb_build_object('error', 'no such device', 'field', 'device_id');
        RETURN;
    END IF;
    IF old <> p_kid THEN
        UPDATE devices SET kid = p_kid WHERE device_id = p_device;
    END IF;
    PERFORM admin_audit_add(p_token, p_actor, p_source, 'reissue', p_device,
                            jsonb_build_object('kid', p_kid, 'previous_kid', old));
    status := 200;
    body := jsonb_build_object('device_id', p_device, 'kid', p_kid, 'previous_kid', old,
                               'changed', old <> p_kid);
END $$;

-- Replaces the whole operator policy (PUT /api/v1/policy).
CREATE FUNCTION admin_policy_set(p_token bigint, p_actor text, p_source text,
                                 p_blocked text[], p_models text[], p_versions text[],
                                 OUT status integer, OUT body jsonb)
LANGUAGE plpgsql AS $$
DECLARE
    before jsonb := admin_policy_json();
BEGIN
    PERFORM 1 FROM firmware_policy_state FOR UPDATE;
    DELETE FROM firmware_policy;
    INSERT INTO firmware_policy (model, blocked, min_version)
        SELECT coalesce(b.model, m.model), b.model IS NOT NULL, m.version
        FROM (SELECT DISTINCT lower(x) AS model FROM unnest(p_blocked) x) b
        FULL JOIN (SELECT lower(x) AS model, v AS version
                   FROM unnest(p_models, p_versions) u(x, v)) m ON m.model = b.model;
    UPDATE firmware_policy_state SET version = version + 1, changed_at = now();
    body := admin_policy_json();
    PERFORM admin_audit_add(p_token, p_actor, p_source, 'policy', NULL,
                            jsonb_build_object('before', before - 'changed_at',
                                               'after', body - 'changed_at'));
    status := 200;
END $$;

CREATE FUNCTION admin_token_add(p_token bigint, p_actor text, p_source text, p_sha256 text,
                                p_scope text, p_expires timestamptz, p_comment text,
                                OUT status integer, OUT body jsonb)
LANGUAGE plpgsql AS $$
DECLARE
    t admin_tokens%ROWTYPE;
BEGIN
    IF p_expires IS NOT NULL AND p_expires <= now() THEN
        status := 400;
        body := jsonb_build_object('error', 'expires: ' || p_expires || ' has passed',
                                   'field', 'expires');
        RETURN;
    END IF;
    INSERT INTO admin_tokens (token_sha256, scope, comment, created_by, expires_at)
        VALUES (p_sha256, p_scope, coalesce(p_comment, ''),
                coalesce('token ' || p_token, p_actor), p_expires)
        RETURNING * INTO t;
    PERFORM admin_audit_add(p_token, p_actor, p_source, 'token-create', NULL,
                            jsonb_build_object('token_id', t.token_id, 'scope', t.scope,
                                               'expires', t.expires_at, 'comment', t.comment));
    status := 201;
    body := jsonb_build_object('token_id', t.token_id, 'scope', t.scope,
                               'expires', t.expires_at, 'comment', t.comment,
                               'created', t.created_at);
END $$;

CREATE FUNCTION admin_token_revoke(p_token bigint, p_actor text, p_source text, p_id bigint,
                                   OUT status integer, OUT body jsonb)
LANGUAGE plpgsql AS $$
DECLARE
    t admin_tokens%ROWTYPE;
BEGIN
    UPDATE admin_tokens SET revoked_at = coalesce(revoked_at, now()) WHERE token_id = p_id
        RETURNING * INTO t;
    IF NOT FOUND THEN
        status := 404;
        body := jsonb_build_object('error', 'no such token', 'field', 'token_id');
        RETURN;
    END IF;
    PERFORM admin_audit_add(p_token, p_actor, p_source, 'token-revoke', NULL,
                            jsonb_build_object('token_id', p_id));
    status := 200;
    body := jsonb_build_object('token_id', p_id, 'revoked', t.revoked_at);
END $$;

CREATE FUNCTION admin_tokens_json() RETURNS jsonb LANGUAGE sql STABLE AS $$
    SELECT jsonb_build_object('tokens', coalesce(jsonb_agg(jsonb_build_object(
        'token_id', token_id, 'scope', scope, 'comment', comment, 'created', created_at,
        'created_by', created_by, 'expires', expires_at, 'revoked', revoked_at,
        'state', CASE WHEN revoked_at IS NOT NULL THEN 'revoked'
                      WHEN expires_at <= now() THEN 'expired' ELSE 'valid' END)
        ORDER BY token_id), '[]'))
    FROM admin_tokens
$$;
