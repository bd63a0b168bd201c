-- 0008: many device requests in one statement and one transaction.
--
-- The gateway collects the update requests that arrive while its database
-- connections are busy and sends them as one call of ddns_apply_batch():
-- one round trip, one parse and plan, one commit (one WAL flush when
-- something changed) for the whole batch instead of one per request. The
-- rules per request are exactly those of ddns_apply_request() (the
-- eleven-argument gateway form of 0006/0007).
--
-- Parameters: one array per argument of ddns_apply_request(), all of the
-- same length, element i belonging to request i. p_fqdns holds, per
-- request, a text[] literal of the names it asks for ('{a.example,b.example}')
-- or NULL for every name of the device.
--
-- Returns ddns_apply_request()'s rows of every request, each with item =
-- its index in the arrays (1-based). The rows of one request are adjacent
-- and in their own order (ord); the requests come in no particular order.
--
-- The common requests take a set-based path: a keep-alive that changes
-- nothing, and a plain change of address. One statement decides them for
-- the whole batch and one statement (with data-modifying WITH clauses)
-- writes what ddns_apply_request() and its wrapper would write for each
-- (replay marker, last_seen, source, last change, agent, firmware, last
-- answer; history, outbox and names for a change) and returns their rows.
-- A request qualifies when it names every name of its device (p_fqdns
-- NULL), is not offline, its device appears once in the batch, exists under
-- that kid, is active, has a name, the timestamp is newer than the last
-- accepted one (or absent: dyndns2), and, if it changes an address, the
-- rate limit does not hold it back. Every other request (unknown device,
-- replay, rate limited, named hosts, offline, a device twice in the batch)
-- runs through ddns_apply_request() itself.
--
-- Locks: every device of the batch is locked first, in device_id order, so
-- that two batches that share devices cannot deadlock with each other, nor
-- with resync (which locks devices in device_id order too); names are
-- locked only after their device, as everywhere. The remaining requests
-- then run in device_id order (ties in array order): several requests of
-- one device in one batch run in the order they arrived, so the first
-- accepted timestamp makes a copy of it a replay, as in separate
-- transactions.
--
-- Commit mode: when no request of the batch changed a record, the batch
-- commits with synchronous_commit = off, as a single nochg does (0007);
-- when any did, the setting in force before the batch is put back, so
-- that every good is durable before it is answered. The batch must run in
-- a transaction of its own (the gateway sends it as one autocommit
-- statement). Nothing here issues a NOTIFY: the gateway wakes the
-- publishers after the commit.
CREATE FUNCTION ddns_apply_batch(p_device text[], p_kid text[], p_ts bigint[],
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
-- always the right plan here.
SET enable_seqscan = off SET enable_hashjoin = off SET enable_mergejoin = off
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
    SELECT coalesce(array_agg(q.k), '{}'), coalesce(bool_or(q.chg), false)
        INTO simple, changed
        FROM (SELECT q0.k, q0.copies, d.last_change,
                     EXISTS (SELECT 1 FROM names n WHERE n.device_id = d.device_id
                               AND ((p_ipv4[q0.k] IS NOT NULL AND n.ipv4 IS DISTINCT FROM p_ipv4[q0.k])
                                 OR (p_ipv6[q0.k] IS NOT NULL AND n.ipv6 IS DISTINCT FROM p_ipv6[q0.k])))
                         AS chg
                FROM (SELECT k, count(*) OVER (PARTITION BY p_device[k]) AS copies
                        FROM generate_subscripts(p_device, 1) AS k) q0
                JOIN devices d ON d.device_id = p_device[q0.k]
                WHERE q0.copies = 1 AND p_fqdns[q0.k] IS NULL AND NOT p_offline[q0.k]
                  AND d.kid = p_kid[q0.k] AND d.status = 'active'
                  AND (p_ts[q0.k] IS NULL OR p_ts[q0.k] > d.last_ts)
                  AND EXISTS (SELECT 1 FROM names n WHERE n.device_id = d.device_id)) q
        WHERE NOT q.chg OR p_min_interval[q.k] <= 0 OR q.last_change IS NULL
              OR q.last_change + make_interval(secs => p_min_interval[q.k]) <= now();
    IF cardinality(simple) > 0 THEN
        RETURN QUERY
        WITH t AS (
            SELECT q.k, n.name_id, n.zone, n.label || '.' || n.zone AS fqdn, n.ttl,
                   n.ipv4 AS old4, n.ipv6 AS old6,
                   (p_ipv4[q.k] IS NOT NULL AND n.ipv4 IS DISTINCT FROM p_ipv4[q.k]) AS chg4,
                   (p_ipv6[q.k] IS NOT NULL AND n.ipv6 IS DISTINCT FROM p_ipv6[q.k]) AS chg6,
                   row_number() OVER (PARTITION BY q.k ORDER BY n.name_id) AS o
                FROM unnest(simple) AS q(k) JOIN names n ON n.device_id = p_device[q.k]
        ), rec AS (
            SELECT k, name_id, zone, fqdn, ttl, 'A' AS rrtype, old4 AS old, p_ipv4[k] AS new
                FROM t WHERE chg4
            UNION ALL
            SELECT k, name_id, zone, fqdn, ttl, 'AAAA', old6, p_ipv6[k] FROM t WHERE chg6
        ), hist AS (
            INSERT INTO history (device_id, fqdn, rrtype, old_address, new_address, source)
                SELECT p_device[k], fqdn, rrtype, old, new, p_source[k] FROM rec
                ORDER BY k, name_id, rrtype
        ), outbox AS (
            INSERT INTO dns_outbox (zone, fqdn, rrtype, address, ttl)
                SELECT zone, fqdn, rrtype, new, ttl FROM rec ORDER BY k, name_id, rrtype
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
