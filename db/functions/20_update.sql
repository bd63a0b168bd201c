-- What an update request does (docs/PROTOCOL.md sections 4, 5, 10, 13):
-- the functions of migrations 0005 to 0008 that the gateway calls, kept
-- here from now on. ddns_apply_batch() (0008) applies many requests in one
-- statement; ddns_apply_request() (0006/0007) one request.

-- The names one request is about, in the order of its answer lines: every
-- name of the device in name_id order (p_fqdns NULL), or the names listed
-- (a text[] literal) in their order, with owner NULL for a name that does
-- not exist. As ddns_apply_request() splits a host name into label and zone.
CREATE OR REPLACE FUNCTION ddns_request_targets(p_device text, p_fqdns text)
RETURNS TABLE (name_id bigint, owner text, zone text, fqdn text, ttl integer,
               ipv4 inet, ipv6 inet, o bigint)
LANGUAGE sql STABLE AS $$
    SELECT n.name_id, n.device_id, n.zone, n.label || '.' || n.zone, n.ttl, n.ipv4, n.ipv6,
           row_number() OVER (ORDER BY n.name_id)
        FROM names n
        WHERE p_fqdns IS NULL AND n.device_id = p_device
    UNION ALL
    SELECT n.name_id, n.device_id, n.zone, f.fqdn, n.ttl, n.ipv4, n.ipv6, f.o
        FROM unnest(p_fqdns::text[]) WITH ORDINALITY AS f(fqdn, o)
        LEFT JOIN names n ON strpos(f.fqdn, '.') > 1
                         AND n.label = left(f.fqdn, strpos(f.fqdn, '.') - 1)
                         AND n.zone = substr(f.fqdn, strpos(f.fqdn, '.') + 1)
$$;

CREATE OR REPLACE FUNCTION ddns_apply_batch(p_device text[], p_kid text[], p_ts bigint[],
                                 p_ipv4 inet[], p_ipv6 inet[], p_source inet[],
                                 p_fqdns text[], p_offline boolean[],
                                 p_min_interval integer[],
                                 p_agent text[], p_firmware text[])
RETURNS TABLE (item integer, ord integer, result text, retry_after integer)
LANGUAGE plpgsql
-- A batch is small (the gateway sends at most 1,000 requests) and touches
-- its devices' rows only, but the planner cannot see how small: joined on
-- array elements, with table statistics that lag behind a growing fleet,
-- it would scan and hash whole tables. Nested loops over the indexes are
-- always the right plan here; and being the same plan for every batch, it
-- is made once per session (custom plans would parse, inline and plan
-- every statement again on every call).
SET enable_seqscan = off SET enable_hashjoin = off SET enable_mergejoin = off
SET plan_cache_mode = force_generic_plan
AS $$
#variable_conflict use_column
DECLARE
    nb       integer := cardinality(p_device);
    i        integer;
    r        record;
    simple   integer[];
    sync     text := current_setting('synchronous_commit');
    changed  boolean := false;
BEGIN
    IF cardinality(p_kid) <> nb OR cardinality(p_ts) <> nb OR cardinality(p_ipv4) <> nb
       OR cardinality(p_ipv6) <> nb OR cardinality(p_source) <> nb
       OR cardinality(p_fqdns) <> nb OR cardinality(p_offline) <> nb
       OR cardinality(p_min_interval) <> nb OR cardinality(p_agent) <> nb
       OR cardinality(p_firmware) <> nb THEN
        RAISE EXCEPTION 'ddns_apply_batch: the argument arrays differ in length';
    END IF;
    PERFORM 1 FROM devices WHERE device_id = ANY (p_device) ORDER BY device_id FOR UPDATE;

    -- the requests of the set-based path; whether any changes a record
    SELECT coalesce(array_agg(z.k), '{}'), coalesce(bool_or(z.chg), false)
        INTO simple, changed
        FROM (SELECT c.k, c.last_change,
                     bool_or((p_ipv4[c.k] IS NOT NULL AND x.ipv4 IS DISTINCT FROM p_ipv4[c.k])
                          OR (p_ipv6[c.k] IS NOT NULL AND x.ipv6 IS DISTINCT FROM p_ipv6[c.k]))
                         AS chg,
                     bool_and(x.owner IS NOT DISTINCT FROM p_device[c.k]) AS own,
                     count(DISTINCT x.name_id) = count(*) AS distinct_names
                FROM (SELECT q0.k, d.last_change
                        FROM (SELECT k, count(*) OVER (PARTITION BY p_device[k]) AS copies
                                FROM generate_subscripts(p_device, 1) AS k) q0
                        JOIN devices d ON d.device_id = p_device[q0.k]
                        WHERE q0.copies = 1 AND NOT p_offline[q0.k]
                          AND d.kid = p_kid[q0.k] AND d.status = 'active'
                          AND (p_ts[q0.k] IS NULL OR p_ts[q0.k] > d.last_ts)) c
                CROSS JOIN LATERAL ddns_request_targets(p_device[c.k], p_fqdns[c.k]) x
                GROUP BY c.k, c.last_change) z
        WHERE z.own AND z.distinct_names
          AND (NOT z.chg OR p_min_interval[z.k] <= 0 OR z.last_change IS NULL
               OR z.last_change + make_interval(secs => p_min_interval[z.k]) <= now());
    IF cardinality(simple) > 0 THEN
        RETURN QUERY
        WITH t AS (
            SELECT q.k, x.name_id, x.zone, x.fqdn, x.ttl, x.ipv4 AS old4, x.ipv6 AS old6,
                   (p_ipv4[q.k] IS NOT NULL AND x.ipv4 IS DISTINCT FROM p_ipv4[q.k]) AS chg4,
                   (p_ipv6[q.k] IS NOT NULL AND x.ipv6 IS DISTINCT FROM p_ipv6[q.k]) AS chg6,
                   x.o
                FROM unnest(simple) AS q(k)
                CROSS JOIN LATERAL ddns_request_targets(p_device[q.k], p_fqdns[q.k]) x
        ), rec AS (
            SELECT k, o, zone, fqdn, ttl, 'A' AS rrtype, old4 AS old, p_ipv4[k] AS new
                FROM t WHERE chg4
            UNION ALL
            SELECT k, o, zone, fqdn, ttl, 'AAAA', old6, p_ipv6[k] FROM t WHERE chg6
        ), hist AS (
            INSERT INTO history (device_id, fqdn, rrtype, old_address, new_address, source)
                SELECT p_device[k], fqdn, rrtype, old, new, p_source[k] FROM rec
                ORDER BY k, o, rrtype
        ), outbox AS (
            INSERT INTO dns_outbox (zone, fqdn, rrtype, address, ttl)
                SELECT zone, fqdn, rrtype, new, ttl FROM rec ORDER BY k, o, rrtype
        ), nm AS (
            UPDATE names n SET ipv4 = coalesce(p_ipv4[t.k], n.ipv4),
                               ipv6 = coalesce(p_ipv6[t.k], n.ipv6), updated_at = now()
                FROM t WHERE n.name_id = t.name_id AND (t.chg4 OR t.chg6)
        ), dev AS (
            SELECT k, CASE WHEN bool_or(chg4 OR chg6) THEN 'good' ELSE 'nochg' END AS answer
                FROM t GROUP BY k
        ), upd AS (
            -- the wrapper touches last_result_at only when something it
            -- records differs; fail_count is 0 whenever last_result is
            -- good or nochg
            UPDATE devices d
                SET last_ts = coalesce(p_ts[dev.k], d.last_ts), last_seen = now(),
                    last_source = p_source[dev.k],
                    last_change = CASE WHEN dev.answer = 'good' THEN now() ELSE d.last_change END,
                    user_agent = left(p_agent[dev.k], 200),
                    firmware = coalesce(p_firmware[dev.k], d.firmware),
                    last_result = dev.answer,
                    last_result_at = CASE
                        WHEN d.user_agent IS DISTINCT FROM left(p_agent[dev.k], 200)
                             OR d.seen_day <> current_date
                             OR (p_firmware[dev.k] IS NOT NULL
                                 AND d.firmware IS DISTINCT FROM p_firmware[dev.k])
                             OR d.last_result IS DISTINCT FROM dev.answer
                        THEN now() ELSE d.last_result_at END,
                    fail_count = 0,
                    seen_day = current_date
                FROM dev WHERE d.device_id = p_device[dev.k]
        )
        SELECT t.k, t.o::integer,
               CASE WHEN t.chg4 OR t.chg6 THEN 'good' ELSE 'nochg' END, NULL::integer
            FROM t ORDER BY t.k, t.o;
    END IF;

    FOR i IN SELECT k FROM generate_subscripts(p_device, 1) AS k
               WHERE NOT k = ANY (simple) ORDER BY p_device[k], k LOOP
        FOR r IN SELECT * FROM ddns_apply_request(p_device[i], p_kid[i], p_ts[i], p_ipv4[i],
                                                  p_ipv6[i], p_source[i], p_fqdns[i]::text[],
                                                  p_offline[i], p_min_interval[i],
                                                  p_agent[i], p_firmware[i]) LOOP
            item := i;
            ord := r.ord;
            result := r.result;
            retry_after := r.retry_after;
            changed := changed OR r.result = 'good';
            RETURN NEXT;
        END LOOP;
    END LOOP;
    -- each request that changed nothing switched the transaction to a lazy
    -- commit: one that changed a record must not commit lazily
    PERFORM set_config('synchronous_commit', CASE WHEN changed THEN sync ELSE 'off' END, true);
END $$;

-- 0006's gateway form, now over the function above without NOTIFY.
CREATE OR REPLACE FUNCTION ddns_apply_request(p_device text, p_kid text, p_ts bigint,
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
                                         p_fqdns, p_offline, p_min_interval, false) LOOP
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
